"""A project's report: one self-contained HTML page (inline CSS and SVG, nothing fetched).

Rendering is pure (data in, HTML out); every string a model or a person wrote goes through
`html.escape`. The graph and the timeline are SVG drawn by our own code (report_svg.py), so
the page opens offline and the same in every browser. `collect` and `write_report` are the
only functions that do I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from orchestrator.domain.constants import ProjectStatus, TaskStatus
from orchestrator.domain.models import (
    CheckResult,
    ProjectRecord,
    ReviewRecord,
    TaskRecord,
    Tokens,
)
from orchestrator.services.deliverable import SAID, task_filename
from orchestrator.services.report_svg import (
    CRITICAL,
    MEASURED,
    Phase,
    cut,
    duration,
    esc,
    gantt_svg,
    graph_svg,
    measured_chain,
    seconds,
    stamp,
)
from orchestrator.state.artifacts import ARTIFACTS, place_artifacts

if TYPE_CHECKING:
    from orchestrator.state.store import Store

REPORT_FILE = "report.html"


@dataclass(frozen=True)
class Retry:
    """A retry event: which task (None: the project's own calls), when, and why."""

    task_id: str | None
    at: datetime | None
    reason: str


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, read from the store at one moment."""

    project: ProjectRecord
    tasks: Sequence[TaskRecord]
    retries: Sequence[Retry] = ()
    reviews: dict[str, list[ReviewRecord]] = field(default_factory=dict)
    phases: Sequence[Phase] = ()
    screenshots: Mapping[str, bytes] = field(default_factory=dict)  # by artifact path
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        return _when(datetime.fromisoformat(value))
    return None


def collect(store: Store, project: ProjectRecord) -> ReportData:
    """The report's data for `project` (passed in, so a caller may show it as it will stand)."""
    retries = [Retry(task_id, _when(row["at"]), str(row["detail"] or ""))
               for task_id, rows in store.retries(project.id).items() for row in rows]
    retries.sort(key=lambda r: r.at or datetime.min.replace(tzinfo=UTC))
    return ReportData(project=project, tasks=store.tasks(project.id), retries=retries,
                      reviews=store.reviews(project.id), phases=phases(store.events(project.id)),
                      screenshots=store.screenshots(project.id))


_PHASES = {ProjectStatus.PLANNING.value: "planning",
           ProjectStatus.INTEGRATING.value: "integration"}


def phases(events: Iterable[Mapping[str, Any]]) -> list[Phase]:
    """The orchestrator's planning and integration spans, from the project's status events."""
    found: list[Phase] = []
    current: tuple[str, datetime] | None = None
    for row in events:
        at, status = _when(row["at"]), row["to_status"]
        if row["task_id"] is not None or not status or at is None:
            continue
        name = _PHASES.get(str(status))
        if current and current[0] == name:
            continue  # another attempt at the same phase
        if current:
            found.append(Phase(current[0], current[1], at))
        current = (name, at) if name else None
    if current:
        found.append(Phase(current[0], current[1], None))
    return found


def write_report(data: ReportData) -> Path:
    """Write report.html into the project's output folder; return its path."""
    root = Path(data.project.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / REPORT_FILE
    path.write_text(render_report(data), encoding="utf-8")
    return path


# Tables -------------------------------------------------------------------------------------


def _table(table_id: str, head: Iterable[str], rows: Iterable[Iterable[str]],
           numeric_from: int = 99) -> str:
    """A table of already-escaped cells; columns from `numeric_from` are right-aligned."""
    th = "".join(f'<th{" class=num" if n >= numeric_from else ""}>{h}</th>'
                 for n, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if n >= numeric_from else ""}>{c}</td>'
                                    for n, c in enumerate(row)) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _token_cells(tokens: Tokens, cost: float) -> list[str]:
    return [f"{tokens.input:,}", f"{tokens.output:,}", f"{tokens.thinking:,}",
            f"{tokens.cache_read:,}", f"{tokens.cache_write:,}", f"{tokens.total:,}",
            f"${cost:.4f}"]


# Thinking is part of output, as the API counts it; shown apart, not added twice to the total.
_TOKEN_HEAD = ["input", "output", "of it thinking", "cache read", "cache write", "total",
               "cost"]


def _add(a: Tokens, b: Tokens, sign: int = 1) -> Tokens:
    return Tokens(**{name: getattr(a, name) + sign * getattr(b, name)
                     for name in Tokens.model_fields})


def cost_by_agent(data: ReportData) -> str:
    """Tokens and cost per agent type; the orchestrator's own calls are the remainder."""
    per: dict[str, tuple[int, int, Tokens, float]] = {}
    for t in data.tasks:
        n, calls, tokens, cost = per.get(t.agent_type.value, (0, 0, Tokens(), 0.0))
        per[t.agent_type.value] = (n + 1, calls + t.model_calls, _add(tokens, t.tokens),
                                   cost + t.cost_usd)
    rows = [[esc(agent), str(n), str(calls), *_token_cells(tokens, cost)]
            for agent, (n, calls, tokens, cost) in sorted(per.items())]
    spent = Tokens()
    for _, _, tokens, _ in per.values():
        spent = _add(spent, tokens)
    rest = _add(data.project.tokens, spent, -1)
    rest_cost = data.project.cost_usd - sum(c for *_, c in per.values())
    if rest.total > 0 or rest_cost > 1e-9:
        rows.append(["orchestrator (analysis, planning, integration)", "\u2014", "\u2014",
                     *_token_cells(rest, max(rest_cost, 0.0))])
    rows.append(["<strong>project</strong>", str(len(data.tasks)),
                 str(sum(t.model_calls for t in data.tasks)),
                 *_token_cells(data.project.tokens, data.project.cost_usd)])
    return _table("cost-by-agent", ["agent", "tasks", "model calls", *_TOKEN_HEAD], rows, 1)


def cost_by_task(data: ReportData) -> str:
    rows = [[str(t.index), esc(t.title), esc(t.agent_type.value), esc(t.status.value),
             esc(t.worker or "\u2014"), str(t.attempts), seconds(duration(t)),
             str(t.model_calls), *_token_cells(t.tokens, t.cost_usd)] for t in data.tasks]
    return _table("cost-by-task", ["#", "task", "agent", "status", "worker", "attempts",
                                   "ran", "model calls", *_TOKEN_HEAD], rows, 5)


def failures(data: ReportData) -> str:
    """Every failed task with its error."""
    rows = [[esc(f"{t.index}. {t.title}"), esc(t.agent_type.value), str(t.attempts),
             esc(t.error or "no reason recorded")]
            for t in data.tasks if t.status is TaskStatus.FAILED]
    if not rows:
        return ""
    return "<h3>Failed tasks</h3>" + _table("failures", ["task", "agent", "attempts", "error"],
                                            rows)


def retries_table(data: ReportData) -> str:
    if not data.retries:
        return '<p class="empty">No retries.</p>'
    title = {t.id: f"{t.index}. {t.title}" for t in data.tasks}
    rows = [[esc(title.get(r.task_id or "", "project (orchestrator calls)")), stamp(r.at),
             esc(r.reason)] for r in data.retries]
    return _table("retries", ["task", "at", "reason"], rows)


def reviews_table(data: ReportData) -> str:
    rows = []
    for task in data.tasks:
        for r in data.reviews.get(task.id, []):
            unmet = "; ".join(f"{c.criterion}: {c.note}" if c.note else c.criterion
                              for c in r.notes if not c.met)
            rows.append([esc(f"{task.index}. {task.title}"), esc(r.reviewer),
                         f'<span class="verdict-{esc(r.verdict)}">{esc(r.verdict)}</span>',
                         str(r.round), str(r.attempt), esc(unmet or "\u2014")])
    if not rows:
        return '<p class="empty">No reviews recorded.</p>'
    return _table("reviews", ["task", "reviewer", "verdict", "round", "attempt",
                              "unmet criteria"], rows)


def _href(relative: str) -> str:
    return esc(quote(relative))


# Deliverables -------------------------------------------------------------------------------


def summary_section(data: ReportData) -> str:
    deliverable = data.project.deliverable
    if deliverable is None:
        note = ("The deliverable is written when every task has completed and the "
                "orchestrator has integrated them.")
        return f'<p class="empty">{note}</p>'
    return f'<p class="summary">{esc(deliverable.executive_summary)}</p>'


def key_deliverables(data: ReportData) -> str:
    deliverable = data.project.deliverable
    if deliverable is None:
        return ""
    parts = ["<h3>Key deliverables</h3>"]
    for section in deliverable.key_deliverables:
        items = "".join(f"<li>{esc(i)}</li>" for i in section.items)
        parts.append(f"<h4>{esc(section.title)}</h4><ul>{items}</ul>")
    return "".join(parts)


def files_section(data: ReportData) -> str:
    """Links to deliverable.md, each task's output and every artifact, relative to the page."""
    written = data.project.deliverable is not None
    parts = []
    if written:
        parts.append('<p><a href="deliverable.md">deliverable.md</a> \u00b7 '
                     '<a href="deliverable.json">deliverable.json</a></p>')
    else:
        parts.append('<p class="empty">These files are written at integration; until then '
                     "they are listed without links.</p>")
    outputs = []
    for t in data.tasks:
        name = f"tasks/{task_filename(t)}"
        link = f'<a href="{_href(name)}">{esc(name)}</a>' if written else esc(name)
        outputs.append(f"<li>{link} \u2014 {t.index}. {esc(t.title)} "
                       f"({esc(t.agent_type.value)})</li>")
    parts.append(f'<h3>Task outputs</h3><ul id="task-outputs">{"".join(outputs)}</ul>')
    items = []
    checks: dict[str, list[CheckResult]] = {}
    for rounds in data.reviews.values():
        for c in rounds[-1].checks:
            checks.setdefault(c.path, []).append(c)
    for placed in place_artifacts(list(data.tasks)):
        target = (ARTIFACTS / placed.path).as_posix()
        link = f'<a class="artifact" href="{_href(target)}">{esc(target)}</a>' if written \
            else esc(target)
        renamed = f" (proposed as <code>{esc(placed.proposed)}</code>)" if placed.renamed else ""
        path = placed.path.as_posix()
        items.append(f"<li>{link}{renamed} \u2014 from {esc(placed.task)}"
                     f"{checks_html(checks.get(path, []))}{shot_html(path, data)}</li>")
    parts.append('<h3>Artifacts</h3>' + (f'<ul id="artifacts">{"".join(items)}</ul>' if items
                                        else '<p class="empty">No artifacts yet.</p>'))
    return "".join(parts)


_CHECK_CLASS = {True: "passed", False: "failed", None: "unchecked"}


def checks_html(checks: Sequence[CheckResult]) -> str:
    """An artifact's checks as its task's last round found them."""
    if not checks:
        return ""
    rows = "".join(f'<li class="check {_CHECK_CLASS[c.ok]}"><b>{esc(SAID[c.ok])}</b> '
                   f"{esc(c.check)}: {esc(c.detail)}</li>" for c in checks)
    return f'<ul class="checks">{rows}</ul>'


def shot_html(path: str, data: ReportData) -> str:
    """The page's screenshot, inline (the report fetches nothing)."""
    png = data.screenshots.get(path)
    if png is None:
        return ""
    src = "data:image/png;base64," + base64.b64encode(png).decode()
    return (f'<img class="screenshot" src="{src}" alt="Screenshot of {esc(path)} as its check '
            f'loaded it" width="512">')


# The page -----------------------------------------------------------------------------------

_STATUS_COLOURS = {
    TaskStatus.COMPLETED: "#cfe9d4", TaskStatus.IN_PROGRESS: "#cfe1f7",
    TaskStatus.REVIEW: "#e3d7f5", TaskStatus.PENDING: "#eceff3",
    TaskStatus.NEEDS_INPUT: "#f7e3c6",
    TaskStatus.BLOCKED: "#f3efe2", TaskStatus.FAILED: "#f7cfcf",
    TaskStatus.CANCELLED: "#dcdcdc",
}


def _css() -> str:
    fills = "".join(f".status-{s.value} rect, .swatch.status-{s.value} {{fill:{c};"
                    f"background:{c}}}" for s, c in _STATUS_COLOURS.items())
    return (
        "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328;"
        "margin:0;background:#f6f7f9}main{max-width:1240px;margin:0 auto;padding:24px}"
        "section{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:16px 20px;"
        "margin:16px 0}h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:0 0 12px}"
        "h3{font-size:15px;margin:16px 0 6px}h4{font-size:14px;margin:10px 0 4px}"
        ".meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:4px 16px}"
        ".meta dt{color:#656d76;font-size:12px}.meta dd{margin:0 0 6px;font-weight:600}"
        ".badge{display:inline-block;padding:1px 8px;border-radius:10px;background:#eceff3}"
        ".badge.completed{background:#cfe9d4}.badge.failed,.badge.needs_attention"
        "{background:#f7cfcf}.badge.running,.badge.integrating{background:#cfe1f7}"
        "table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid "
        "#e5e8eb;padding:4px 6px;text-align:left;vertical-align:top}th{color:#656d76;"
        "font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}"
        ".scroll{overflow-x:auto}.empty{color:#656d76;font-style:italic}"
        ".checks{margin:2px 0 8px;padding-left:18px;font-size:13px}.check.passed b{color:#1a7f37}"
        ".check.failed b{color:#cf222e}.check.unchecked b{color:#656d76}"
        ".screenshot{display:block;border:1px solid #d8dee4;margin:4px 0 10px;max-width:100%}"
        "svg text{font:12px system-ui,sans-serif;fill:#1f2328}svg .agent{fill:#656d76}"
        "svg .state{fill:#656d76;font-size:11px}.node .box{stroke:#8c959f;stroke-width:1}"
        f".node.critical .box{{stroke:{CRITICAL};stroke-width:3}}"
        f".measured-ring{{fill:none!important;stroke:{MEASURED};stroke-width:1.5;"
        "stroke-dasharray:4 3}"
        ".edge{fill:none;stroke:#8c959f;stroke-width:1.4}"
        f".edge.critical{{stroke:{CRITICAL};stroke-width:2.6}}.arrowhead{{fill:#8c959f}}"
        f".arrowhead.critical{{fill:{CRITICAL}}}"
        ".row-bg{fill:#f6f8fa!important;fill-opacity:.6}.phase rect{fill:#fff3bf}"
        "svg#dependency-graph{max-width:100%;height:auto}"
        ".worker{font-weight:600}.axis line{stroke:#d8dee4}"
        ".axis text{fill:#656d76;font-size:11px;text-anchor:middle}"
        ".bar rect{stroke:#8c959f}"
        f".bar.critical rect{{stroke:{CRITICAL};stroke-width:2}}"
        ".bar.running rect{stroke-dasharray:4 2}.bar text{font-size:11px}"
        f".finish line{{stroke:{CRITICAL};stroke-dasharray:3 3}}"
        ".legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:12px;color:#444;margin:8px 0}"
        ".swatch{display:inline-block;width:12px;height:12px;border:1px solid #8c959f;"
        "border-radius:2px;vertical-align:-2px;margin-right:4px}"
        f".swatch.critical{{border:3px solid {CRITICAL};width:8px;height:8px}}"
        f".swatch.measured{{border:1.5px dashed {MEASURED};background:none}}"
        ".verdict-pass{color:#1a7f37;font-weight:600}.verdict-revise{color:#bc4c00;"
        "font-weight:600}.summary{font-size:15px}code{font-size:12px}" + fills)


def _legend(data: ReportData) -> str:
    statuses = sorted({t.status for t in data.tasks}, key=list(TaskStatus).index)
    swatches = "".join(f'<span><span class="swatch status-{s.value}"></span>{s.value}</span>'
                       for s in statuses)
    chain, took = measured_chain(data.tasks)
    index = {t.id: t.index for t in data.tasks}
    measured = (" \u2192 ".join(str(index[i]) for i in chain)
                + f" ({seconds(took)} of run time)") if chain else "none yet"
    return (f'<div class="legend">{swatches}'
            '<span><span class="swatch critical"></span>critical path as planned (the '
            "planner's longest chain by estimated tokens; the tasks' on_critical_path flag)"
            '</span><span><span class="swatch measured"></span>longest chain by measured run '
            f"time: {esc(measured)}</span></div>")


def _meta(data: ReportData) -> str:
    p = data.project
    kind = p.project_type.value if p.project_type else "\u2014"
    items = [("Status", f'<span class="badge {esc(p.status.value)}">{esc(p.status.value)}</span>'),
             ("Project id", f"<code>{esc(p.id)}</code>"), ("Type", esc(kind)),
             ("Complexity", esc(p.complexity.value if p.complexity else "\u2014")),
             ("Created", stamp(p.created_at)), ("Finished", stamp(p.finished_at)),
             ("Tasks", str(len(data.tasks))),
             ("Tokens", f"{p.tokens.total:,} ({p.tokens_used:,} toward the budget of "
                        f"{p.budget_tokens:,})" if p.budget_tokens else f"{p.tokens.total:,}"),
             ("Cost", f"${p.cost_usd:.4f}")]
    cells = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in items)
    error = f'<p class="error"><strong>Error:</strong> {esc(p.error)}</p>' if p.error else ""
    return f'<dl class="meta">{cells}</dl>{error}'


def _timeline(data: ReportData) -> str:
    p = data.project
    note = ('<p class="legend">Seconds from the project\'s creation; one row per worker (bars '
            "stack when its threads or processes overlap), the orchestrator's planning and "
            "integration above them. Outlined in orange: on the planned critical path; dashed "
            "bar: still running; dashed line: the project finished.</p>")
    return note + gantt_svg(data.tasks, p.created_at, p.finished_at, data.generated_at,
                            data.phases)


def _section(section_id: str, title: str, body: str, scroll: bool = False) -> str:
    inner = f'<div class="scroll">{body}</div>' if scroll else body
    return f'<section id="{section_id}"><h2>{title}</h2>{inner}</section>'


def render_report(data: ReportData) -> str:
    """The whole report page as a string."""
    p = data.project
    request = (f'<p class="request">{esc(p.request)}</p>' if len(p.request) > 160 else "")
    body = [
        f'<header><h1>{esc(cut(p.request, 160))}</h1>{request}{_meta(data)}</header>',
        _section("summary", "Executive summary", summary_section(data)),
        _section("graph", "Dependency graph", _legend(data) + graph_svg(data.tasks), True),
        _section("timeline", "Timeline", _timeline(data), True),
        _section("files", "Deliverables", key_deliverables(data) + files_section(data)),
        _section("costs", "Tokens and cost", "<h3>Per agent type</h3>" + cost_by_agent(data)
                 + "<h3>Per task</h3>" + cost_by_task(data), True),
        _section("retries", "Retries and failures", retries_table(data) + failures(data),
                 True),
        _section("reviews", "Reviews", reviews_table(data), True),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Agency report: {esc(cut(p.request, 80))}</title>"
            f"<style>{_css()}</style></head><body><main>{''.join(body)}"
            f'<footer class="empty">Generated {stamp(data.generated_at)} by '
            "<code>agency report</code>.</footer></main></body></html>\n")
