"""Commands that submit a project and look at projects: run, status, watch, list, search,
plan, graph, report, log, calls."""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.agent.runtime import get_runtime
from orchestrator.domain.constants import MAX_BUDGET, MAX_LIST_LIMIT, ProjectStatus
from orchestrator.domain.deadlines import parse_deadline
from orchestrator.domain.errors import BadInput
from orchestrator.domain.estimates import estimate
from orchestrator.interfaces.celery_app import app
from orchestrator.interfaces.cli.app import cli, err, handle_errors, out, say, warn
from orchestrator.interfaces.cli.follow import (
    finish,
    follow,
    materialize,
    refuse_no_wait_embedded,
    snapshot,
    workers,
)
from orchestrator.interfaces.plan_text import canvas_text, mermaid
from orchestrator.interfaces.shapes import (
    calls_json,
    hits_json,
    log_json,
    plan_json,
    projects_json,
)
from orchestrator.interfaces.views import (
    calls_table,
    log_table,
    plan_table,
    project_json,
    status_view,
)
from orchestrator.services.operator import Operator, submission
from orchestrator.services.report import collect, write_report
from orchestrator.state.knowledge import search as find
from orchestrator.state.store import now as store_now

ProjectId = Annotated[str, typer.Argument(help="Project id (or a unique prefix).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


@cli.command()
@handle_errors
def run(
    request: Annotated[str | None, typer.Argument(help="What the agency should deliver.")] = None,
    plan: Annotated[Path | None, typer.Option("--plan", help="Run this plan file (skips "
                                              "decomposition).")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Print the id and return.")] = False,
    budget: Annotated[int | None, typer.Option("--budget", min=1, max=MAX_BUDGET,
                                               help="Token budget for the project.")] = None,
    approve_plan: Annotated[bool, typer.Option(
        "--approve-plan", help="Stop after planning until `agency approve ID`.")] = False,
    deadline: Annotated[str | None, typer.Option(
        "--deadline", help="When it must be done: a time (2026-12-01T17:00, UTC unless "
        "it says) or a duration from now (90m, 6h, 2d). Default: from the analysis's "
        "estimated hours.")] = None,
    economy: Annotated[bool, typer.Option(
        "--economy", help="Send agents' turns that have slack before their deadlines through "
        "the Message Batches API (half price, slower; AGENCY_ECONOMY for every project).")
    ] = False,
) -> None:
    """Submit a request and watch it to the deliverable."""
    due = parse_deadline(deadline, store_now()) if deadline is not None else None
    sub = submission(request, plan, budget, approve_plan, due, economy)
    rt = get_runtime()
    refuse_no_wait_embedded(rt, no_wait)
    operator = Operator(rt, app)
    if operator.check_model():
        err.print("Using the offline model (no ANTHROPIC_API_KEY set): answers are templated, "
                  "not written by Claude.", highlight=False)
    with workers(rt):
        project_id = operator.submit(sub)
        out.print(f"Project {project_id} submitted.", highlight=False)
        if no_wait:
            return
        project = follow(rt, project_id)
    finish(rt, rt.store.project(project.id))


@cli.command()
@handle_errors
def status(project_id: ProjectId, as_json: AsJson = False) -> None:
    """Show a project and its tasks."""
    rt = get_runtime()
    project, tasks = snapshot(rt, rt.store.resolve_project_id(project_id))
    if as_json:
        _print_json(project_json(project, tasks, rt.store.retries(project.id),
                                 rt.store.reviews(project.id)))
        return
    out.print(status_view(project, tasks, out.width, rt.store.reviews(project.id)),
              soft_wrap=False)


@cli.command()
@handle_errors
def watch(project_id: ProjectId) -> None:
    """Attach to a project and follow it to the end."""
    rt = get_runtime()
    project_id = rt.store.resolve_project_id(project_id)
    with workers(rt):
        project = follow(rt, project_id)
    finish(rt, rt.store.project(project.id))


@cli.command("list")
@handle_errors
def list_projects(as_json: AsJson = False,
                  limit: Annotated[int, typer.Option(min=1, max=MAX_LIST_LIMIT)] = 50) -> None:
    """List recent projects."""
    rows = projects_json(get_runtime().store.projects(limit))
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        say(f"{row['id']}  {row['status']:<16} {row['created_at'][:19]}  {row['request'][:60]}")


@cli.command()
@handle_errors
def search(project_id: ProjectId,
           query: Annotated[list[str], typer.Argument(
               help="Words to look for (any of them; quoting is optional).")],
           limit: Annotated[int, typer.Option("--limit", min=1, max=100,
                                              help="At most this many matches.")] = 5,
           as_json: AsJson = False) -> None:
    """Search a project's request, analysis, plan, task outputs and artifacts."""
    rt = get_runtime()
    hits = find(rt.store.db, rt.store.resolve_project_id(project_id), " ".join(query), limit)
    if as_json:
        _print_json(hits_json(hits))
        return
    if not hits:
        out.print("no matches", highlight=False)
    # Positions, not scores: bm25 and ts_rank_cd scores are on different scales.
    for place, hit in enumerate(hits, 1):
        say(f"{place:>3}. {hit.source}")
        say(f"     {hit.snippet}")


@cli.command()
@handle_errors
def report(project_id: ProjectId,
           open_it: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False
           ) -> None:
    """Write report.html (self-contained: graph, timeline, costs, reviews) and print its path."""
    rt = get_runtime()
    project = rt.store.project(rt.store.resolve_project_id(project_id))
    materialize(rt, project)  # the links must point at files that exist here
    path = write_report(collect(rt.store, project))
    print(path)
    if open_it and not webbrowser.open(path.resolve().as_uri()):
        warn("agency: no browser could be started here; open the file above")


@cli.command("plan")
@handle_errors
def plan_command(
    project_id: ProjectId,
    as_mermaid: Annotated[bool, typer.Option("--mermaid", help="Print a Mermaid flowchart "
                                             "instead of the table.")] = False,
    as_json: AsJson = False,
    edit: Annotated[Path | None, typer.Option("--edit", help="Replace the plan, while it waits "
                                              "for approval, with this plan file.")] = None,
) -> None:
    """Show a project's plan: its tasks, their dependencies, estimated tokens and cost."""
    rt = get_runtime()
    found_id = rt.store.resolve_project_id(project_id)
    if edit is not None:
        Operator(rt, app).edit_plan(found_id, edit)
        warn(f"Plan of project {found_id} replaced from {edit}.")
    project = rt.store.project(found_id, usage=False)
    tasks = rt.store.tasks(project.id)
    if project.plan is None or not tasks:
        raise BadInput(f"project {project.id} is {project.status.value} and has no plan yet")
    if as_mermaid:
        print(mermaid(tasks), end="")
        return
    found = estimate(rt.settings, project.plan, rt.store.calibration())
    if as_json:
        _print_json(plan_json(project, tasks, found))
        return
    out.print(plan_table(project, tasks, found))
    if project.status is ProjectStatus.AWAITING_APPROVAL:
        say(f"Waiting for approval: agency approve {project.id}  |  "
            f"agency reject {project.id} --reason TEXT")


@cli.command()
@handle_errors
def log(
    project_id: ProjectId,
    tools: Annotated[bool, typer.Option("--tools", help="Also every tool call of the agents.")
                     ] = False,
    as_json: AsJson = False,
) -> None:
    """A project's history: operator actions (with the OS user), status changes, retries and
    reviews, oldest first."""
    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)
    index = {t.id: t.index for t in rt.store.tasks(found)}
    rows = [r for r in rt.store.events(found)
            if tools or r["kind"] not in ("tool", "tool_error")]
    if as_json:
        _print_json(log_json(rows, index))
        return
    out.print(log_table(found, rows, index))


@cli.command()
@handle_errors
def calls(project_id: ProjectId, as_json: AsJson = False) -> None:
    """A project's model calls, oldest first: task, role, model, stop reason, outcome, tokens,
    cost and the request id to give support."""
    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)
    ledger = rt.store.calls(found)
    if as_json:
        _print_json(calls_json(ledger))
        return
    out.print(calls_table(found, ledger))


@cli.command()
@handle_errors
def graph(project_id: ProjectId,
          canvas: Annotated[bool, typer.Option("--canvas", help="Print the Celery canvas the "
                                               "plan compiles to instead (nothing is sent).")
                            ] = False) -> None:
    """Print the plan as a Mermaid flowchart (or, with --canvas, as chains, groups and chords)."""
    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)
    tasks = rt.store.tasks(found)
    print(canvas_text(app, found, tasks) if canvas else mermaid(tasks), end="")
