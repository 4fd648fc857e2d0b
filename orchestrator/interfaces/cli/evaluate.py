"""`agency eval`: run a suite of requests, one project each, to the end, and report how each
went (services/evaluation.py measures and labels; this parses, runs and prints)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator.agent.runtime import Runtime, get_runtime, runtime_on
from orchestrator.domain.settings import get_settings
from orchestrator.interfaces.celery_app import app
from orchestrator.interfaces.cli.app import cli, handle_errors, out, warn
from orchestrator.interfaces.cli.follow import follow, workers
from orchestrator.interfaces.views import project_seconds, shown
from orchestrator.services.evaluation import (
    Caps,
    Comparison,
    Facts,
    Report,
    RunChange,
    RunResult,
    Suite,
    SuiteRequest,
    Summary,
    build_report,
    compare,
    fresh_settings,
    load_baseline,
    load_suite,
    measure,
    model_of,
)
from orchestrator.services.operator import Operator, Submission
from orchestrator.state.store import display_url


@contextmanager
def evaluation_runtime() -> Iterator[tuple[Runtime, str]]:
    """The runtime the runs use, and where their state is: a fresh temporary store (removed
    after) when the runs are embedded and no database is configured, else the configured one."""
    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="agency-eval-") as folder:
        own = fresh_settings(settings, Path(folder))
        if own is None:
            yield get_runtime(), display_url(settings.effective_database_url)
            return
        with runtime_on(own) as rt:
            yield rt, "a fresh temporary SQLite store, removed after"


def run_one(rt: Runtime, operator: Operator, item: SuiteRequest, caps: Caps) -> RunResult:
    """Submit one request, follow its project to its end quietly, and measure it."""
    project_id = operator.submit(Submission(request=item.request))
    project = rt.store.project(follow(rt, project_id, quiet=True).id)
    facts = Facts(project=project, tasks=rt.store.tasks(project.id),
                  reviews=rt.store.reviews(project.id), calls=rt.store.calls(project.id),
                  events=rt.store.events(project.id))
    return measure(item, facts, caps, project_seconds(project))


def run_suite(rt: Runtime, operator: Operator, suite: Suite) -> list[RunResult]:
    """Every request of the suite in turn, with a line of progress on stderr for each."""
    caps, runs, n = Caps.of(rt.settings), [], len(suite.requests)
    with workers(rt):
        for place, item in enumerate(suite.requests, 1):
            warn(f"[{place}/{n}] {item.id}: {item.request}")
            run = run_one(rt, operator, item, caps)
            warn(f"[{place}/{n}] {item.id}: {run.status} in {run.seconds:.1f}s, checks "
                 f"{run.checks.passed}/{run.checks.total}, {run.model_calls} model calls, "
                 f"labels: {', '.join(run.labels) or 'none'}")
            runs.append(run)
    return runs


def signed(value: float, unit: str = "", places: int = 0) -> str:
    """A change as `(+2)`, `(-$0.0100)` or `(±0)`."""
    if round(value, places or 6) == 0:
        return "(±0)"
    shown = f"{abs(value):.{places}f}"
    sign = "+" if value > 0 else "-"
    return f"({sign}{'$' if unit == '$' else ''}{shown}{unit if unit != '$' else ''})"


def _cells(part: RunResult | Summary, change: dict[str, float] | None) -> list[str]:
    """Checks, rounds, cost, time and calls, each with its change when there is a baseline."""
    def with_change(text: str, key: str, unit: str = "", places: int = 0) -> str:
        return f"{text} {signed(change[key], unit, places)}" if change else text

    checks = with_change(f"{part.checks.passed}/{part.checks.total}", "checks_passed")
    if change and change["checks_total"]:
        checks += f" total {signed(change['checks_total'])}"
    return [checks, with_change(str(part.review_rounds), "review_rounds"),
            with_change(f"${part.cost_usd:.4f}", "cost_usd", "$", 4),
            with_change(f"{part.seconds:.1f}s", "seconds", "s", 1),
            with_change(str(part.model_calls), "model_calls")]


def _status(run: RunResult, change: RunChange | None) -> str:
    if change is None:
        return run.status
    if change.baseline_id is None:
        return f"{run.status} (new)"
    return run.status if change.status_before == run.status else (
        f"{run.status} (was {change.status_before})")


def _labels(run: RunResult, change: RunChange | None) -> str:
    shown = ", ".join(run.labels) or "none"
    if change and (change.labels_added or change.labels_removed):
        moved = [f"+{x}" for x in change.labels_added] + [f"-{x}" for x in change.labels_removed]
        shown += f" ({', '.join(moved)})"
    return shown


COLUMNS = ("id", "type", "status", "checks", "rounds", "cost", "time", "calls", "labels")


def _rows(report: Report, comparison: Comparison | None) -> list[list[str]]:
    """A row per request and the summary row last, in COLUMNS."""
    changes = {c.id: c for c in comparison.runs} if comparison else {}
    rows = []
    for run in report.runs:
        change = changes.get(run.id)
        kind = run.planned_type.value if run.planned_type else "-"
        if run.type_matched is False and run.project_type:
            kind += f" (expected {run.project_type.value})"
        rows.append([run.id, kind, _status(run, change),
                     *_cells(run, change.change if change else None), _labels(run, change)])
    s = report.summary
    found = ", ".join(f"{k} {n}" for k, n in s.labels.items() if n) or "none"
    if comparison:
        found += "".join(f" ({k} {signed(n)})" for k, n in comparison.labels.items() if n)
    completed = f"{s.completed}/{s.runs} completed"
    if comparison:
        completed += f" {signed(comparison.summary['completed'])}"
    rows.append(["summary", f"{s.types_matched}/{s.types_expected} types as expected",
                 completed, *_cells(s, comparison.summary if comparison else None), found])
    return rows


def _table(title: str, rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=None,
                  pad_edge=False)
    for n, column in enumerate(COLUMNS):
        table.add_column(column, justify="right" if 3 <= n <= 7 else "left",
                         no_wrap=column != "labels")
    for row in rows[:-1]:
        table.add_row(*map(Text, row))
    table.add_section()
    table.add_row(*map(Text, rows[-1]), style="bold")
    return table


def _lines(title: str, rows: list[list[str]]) -> Group:
    """The rows as lines, for a console too narrow for the table."""
    return Group(shown(title, style="bold"), *(shown(
        f"{row[0]}: {row[1]}, {row[2]}, " + ", ".join(
            f"{name} {cell}" for name, cell in zip(COLUMNS[3:], row[3:], strict=True)))
        for row in rows))


def eval_table(report: Report, comparison: Comparison | None, width: int) -> RenderableType:
    """`agency eval` for people: a row per request, a summary row, and why each label fired;
    lines instead of the table when it does not fit `width` columns."""
    title = (f"Suite {report.suite!r}: {len(report.runs)} requests, "
             f"{report.model['provider']} model ({report.model['measures']}); "
             f"state: {report.state}")
    rows = _rows(report, comparison)
    table = _table(title, rows)
    fits = Console(width=10_000).measure(table).maximum <= width
    s = report.summary
    means = shown(f"per request: {s.mean_review_rounds:.2f} rounds, ${s.mean_cost_usd:.4f}, "
                 f"{s.mean_seconds:.1f}s, {s.mean_model_calls:.1f} model calls")
    reasons = [shown(f"{run.id}: {label}: {'; '.join(why)}")
               for run in report.runs for label, why in run.why.items()]
    return Group(table if fits else _lines(title, rows), means, *reasons)


@cli.command("eval")
@handle_errors
def eval_command(
    suite: Annotated[Path | None, typer.Option(
        "--suite", help="A suite file (JSON, or YAML by its suffix): {\"name\": ..., "
        "\"requests\": [{\"id\": ..., \"request\": ..., \"project_type\": ...}]}. Default: "
        "the suite that ships with Agency (eight requests, every project type).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document (progress "
                                          "goes to stderr).")] = False,
    baseline: Annotated[Path | None, typer.Option(
        "--baseline", help="An earlier `agency eval --json` output: show the change per "
        "request (matched by id, else by request text) and in the summary.")] = None,
) -> None:
    """Run a suite of requests, one project each, to the end; report per request and in sum
    the status, checks passed, review rounds, cost, time, model calls and failure labels."""
    chosen = load_suite(suite)  # bad input is refused before anything runs
    before = load_baseline(baseline) if baseline is not None else None
    with evaluation_runtime() as (rt, state):
        operator = Operator(rt, app)
        model = model_of(rt.settings, operator.check_model())
        warn(f"agency eval: suite {chosen.name!r}, {len(chosen.requests)} requests, "
             f"{model['provider']} model: this measures {model['measures']}; state: {state}")
        runs = run_suite(rt, operator, chosen)
    found = build_report(chosen, model, state, runs)
    comparison = compare(found, before) if before else None
    if as_json:
        data = found.model_dump(mode="json")
        if before is not None and comparison is not None:
            data["baseline"] = {"file": str(baseline), "suite": before.suite,
                                **comparison.model_dump(mode="json")}
        print(json.dumps(data, indent=2))
        return
    out.print(eval_table(found, comparison, out.width), soft_wrap=False)
