"""The `agency` command line."""

from __future__ import annotations

import dataclasses
import functools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live
from typer._click import exceptions as usage  # typer 0.29 vendors click; pinned

from orchestrator.agent.runtime import Runtime, get_runtime
from orchestrator.domain.constants import (
    MAX_BUDGET,
    MAX_LIST_LIMIT,
    TERMINAL_PROJECT_STATUSES,
    LLMKind,
    ProjectStatus,
    TaskStatus,
)
from orchestrator.domain.errors import AgencyError, BadInput
from orchestrator.domain.intake import check_request, load_plan_file
from orchestrator.domain.models import Plan, ProjectRecord, TaskRecord
from orchestrator.interfaces.pipes import PipeConsole, flush_stdout, silence_stdout
from orchestrator.interfaces.views import (
    live_view,
    progress_line,
    project_json,
    project_seconds,
    risk_line,
    risks,
    status_view,
)

cli = typer.Typer(help="Agency: one request in, one finished deliverable out.",
                  no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
db_cli = typer.Typer(help="Database maintenance.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")

out = PipeConsole(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")

POLL_SECONDS = 0.2


def _report(exc: AgencyError) -> int:
    """Print an error as one line; its exit code: 2 for bad input or configuration, else 1."""
    err.print(f"agency: error: {exc.message}", markup=False, highlight=False)
    return 2 if isinstance(exc, BadInput) else 1


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Bad input: one line and exit 2. Other Agency errors: one line and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except AgencyError as exc:
            raise typer.Exit(_report(exc)) from None
        except BrokenPipeError:  # `agency ... | head`: the reader has what it wanted
            raise typer.Exit(silence_stdout()) from None

    return wrapper


def _snapshot(rt: Runtime, project_id: str) -> tuple[ProjectRecord, list[TaskRecord]]:
    return rt.store.project(project_id), rt.store.tasks(project_id)


def _task_lines(before: dict[str, str], tasks: list[TaskRecord]) -> Iterator[str]:
    for t in tasks:
        if before.get(t.id) != t.status.value:
            before[t.id] = t.status.value
            yield f"  task {t.index} {t.title!r} ({t.agent_type.value}): {t.status.value}"


def _snapshots(rt: Runtime, project_id: str) -> Iterator[tuple[ProjectRecord, list[TaskRecord]]]:
    """The project as it moves, until it ends; warns about queues nobody serves."""
    from orchestrator.interfaces.celery_app import app
    from orchestrator.interfaces.unserved import UnservedWatch

    watch = None if rt.settings.embedded else UnservedWatch(app, _warn)
    while True:
        project, tasks = _snapshot(rt, project_id)
        if watch:
            watch.check(project, tasks)
        yield project, tasks
        if project.status in TERMINAL_PROJECT_STATUSES or project.status in (
                ProjectStatus.AWAITING_APPROVAL, ProjectStatus.PAUSED):
            return
        time.sleep(POLL_SECONDS)


def _warn(line: str) -> None:
    err.print(line, highlight=False, markup=False)


def follow(rt: Runtime, project_id: str) -> ProjectRecord:
    """Follow to the end; Ctrl-C detaches (production) or stops the project (embedded)."""
    try:
        return _follow(rt, project_id)
    except KeyboardInterrupt:
        if rt.settings.embedded:
            # The workers live in this process and stop with it: say so in the store, so
            # that `agency resume` can carry on from what was completed.
            rt.scheduler.move_project(project_id, ProjectStatus.FAILED,
                                      "interrupted: the embedded workers stopped")
            err.print(f"agency: interrupted; carry on with: agency resume {project_id}",
                      highlight=False, markup=False)
        else:
            err.print(f"agency: detached; the project goes on: agency watch {project_id}",
                      highlight=False, markup=False)
        raise typer.Exit(130) from None


def _follow(rt: Runtime, project_id: str) -> ProjectRecord:
    """Show progress until the project ends: a live table on a terminal, lines otherwise."""
    if out.is_terminal:
        with Live(console=out, refresh_per_second=8) as live:
            for project, tasks in _snapshots(rt, project_id):
                live.update(live_view(project, tasks))
        return project
    seen: dict[str, str] = {}
    last = late = ""
    for project, tasks in _snapshots(rt, project_id):
        line = progress_line(project, tasks)
        if line != last:
            out.print(line, highlight=False, markup=False)
            last = line
        found = risks(project, tasks)
        names = ",".join(sorted(found))  # print when the set changes, not its times
        if names != late:
            if found:
                out.print(risk_line(tasks, found), highlight=False, markup=False)
            late = names
        for task_line in _task_lines(seen, tasks):
            out.print(task_line, highlight=False, markup=False)
    return project


def _materialize(rt: Runtime, project: ProjectRecord) -> None:
    """Integration may have run on another machine: write the files here from the store."""
    from orchestrator.services.deliverable import write_outputs

    if project.deliverable and not (Path(project.output_dir) / "deliverable.md").exists():
        write_outputs(project, project.deliverable, rt.store.tasks(project.id))


def _refuse_no_wait_embedded(rt: Runtime, no_wait: bool) -> None:
    if no_wait and rt.settings.embedded:
        raise BadInput("--no-wait needs a broker (set AGENCY_BROKER_URL): embedded workers "
                       "stop when this command ends")


def _act_and_follow(rt: Runtime, act: Callable[[], str], no_wait: bool = False) -> None:
    """An operator action that sets a project going (`act` returns its id), with workers
    running here in embedded mode; then follow the project to its end unless `no_wait`."""
    _refuse_no_wait_embedded(rt, no_wait)
    with _workers(rt):
        project_id = act()
        if no_wait:
            return
        project = follow(rt, project_id)
    _finish(rt, rt.store.project(project.id))


def _finish(rt: Runtime, project: ProjectRecord) -> None:
    seconds = project_seconds(project)
    if project.status is ProjectStatus.PAUSED:
        out.print(f"Project {project.id} is paused: no new task starts; carry on with: "
                  f"agency resume {project.id}", highlight=False, markup=False)
        return
    if project.status is ProjectStatus.AWAITING_APPROVAL:
        out.print(f"Project {project.id} is planned and waits for approval.", highlight=False)
        out.print(f"  see the plan and its cost: agency plan {project.id}\n"
                  f"  start it:                  agency approve {project.id}\n"
                  f"  or end it:                 agency reject {project.id} --reason TEXT",
                  highlight=False, markup=False)
        return
    if project.status is ProjectStatus.COMPLETED:
        _materialize(rt, project)
        out.print(f"Project {project.id} completed in {seconds:.1f}s.", highlight=False)
        out.print(f"Deliverable: {Path(project.output_dir) / 'deliverable.md'}",
                  highlight=False, markup=False)
        return
    hint = (f"; carry on with: agency resume {project.id} --budget N"
            if project.status is ProjectStatus.BUDGET_EXHAUSTED else "")
    if project.status is ProjectStatus.NEEDS_ATTENTION:
        for task in rt.store.tasks(project.id):
            if task.status is TaskStatus.FAILED:
                err.print(f"  failed: task {task.index} {task.title!r}: {task.error}; "
                          f"agency retry {task.id[:8]}", markup=False, highlight=False)
    err.print(f"agency: error: project {project.id} {project.status.value}: "
              f"{project.error or 'no reason recorded'}{hint}", markup=False, highlight=False)
    raise typer.Exit(1)


@contextmanager
def _workers(rt: Runtime) -> Iterator[None]:
    from orchestrator.interfaces.celery_app import app, results_released

    if not rt.settings.embedded:
        from orchestrator.services.queues import check_broker

        check_broker(app)
        with results_released(app):
            yield
        return
    from orchestrator.interfaces.embedded import embedded_workers

    with embedded_workers(app, rt.settings):
        yield


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
) -> None:
    """Submit a request and watch it to the deliverable."""
    from orchestrator.domain.deadlines import parse_deadline
    from orchestrator.state.store import now as store_now

    due = parse_deadline(deadline, store_now()) if deadline is not None else None
    plan_file = load_plan_file(plan) if plan else None
    text = check_request(request if request is not None
                         else (plan_file.request if plan_file else None))
    rt = get_runtime()
    _refuse_no_wait_embedded(rt, no_wait)
    if rt.settings.llm_kind is LLMKind.ANTHROPIC and rt.settings.anthropic_api_key is None:
        raise BadInput("AGENCY_LLM=anthropic needs ANTHROPIC_API_KEY")
    if rt.settings.llm_kind is LLMKind.OFFLINE:
        err.print("Using the offline model (no ANTHROPIC_API_KEY set): answers are templated, "
                  "not written by Claude.", highlight=False)
    from orchestrator.interfaces.celery_app import app

    project_id = str(uuid.uuid4())
    output_dir = (rt.settings.output_dir / project_id).resolve()
    stored_plan = (Plan.model_validate(plan_file.model_dump(exclude={"request", "project_type"}))
                   if plan_file else None)
    with _workers(rt):
        from orchestrator.services.dispatch import send_plan

        rt.store.insert_project(project_id, text, budget,
                                plan_file.project_type.value if plan_file and
                                plan_file.project_type else None,
                                str(output_dir), stored_plan, needs_approval=approve_plan,
                                deadline=due)
        send_plan(rt, app, project_id)
        out.print(f"Project {project_id} submitted.", highlight=False)
        if no_wait:
            return
        project = follow(rt, project_id)
    _finish(rt, rt.store.project(project.id))


@cli.command()
@handle_errors
def status(project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")],
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show a project and its tasks."""
    rt = get_runtime()
    project, tasks = _snapshot(rt, rt.store.resolve_project_id(project_id))
    if as_json:
        print(json.dumps(project_json(project, tasks, rt.store.retries(project.id),
                                      rt.store.reviews(project.id)), indent=2))
        return
    out.print(status_view(project, tasks, out.width), soft_wrap=False)


@cli.command()
@handle_errors
def watch(project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")]
          ) -> None:
    """Attach to a project and follow it to the end."""
    rt = get_runtime()
    project_id = rt.store.resolve_project_id(project_id)
    with _workers(rt):
        project = follow(rt, project_id)
    _finish(rt, rt.store.project(project.id))


@cli.command("list")
@handle_errors
def list_projects(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
                  limit: Annotated[int, typer.Option(min=1, max=MAX_LIST_LIMIT)] = 50) -> None:
    """List recent projects."""
    rt = get_runtime()
    projects = rt.store.projects(limit)
    rows: list[dict[str, Any]] = [
        {"id": p.id, "status": p.status.value, "request": p.request,
         "project_type": p.project_type.value if p.project_type else None,
         "created_at": p.created_at.isoformat(), "tokens": p.tokens.model_dump(),
         "cost_usd": round(p.cost_usd, 6)} for p in projects]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        out.print(f"{row['id']}  {row['status']:<16} {row['created_at'][:19]}  "
                  f"{row['request'][:60]}", highlight=False, markup=False)


@cli.command()
@handle_errors
def search(project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")],
           query: Annotated[list[str], typer.Argument(
               help="Words to look for (any of them; quoting is optional).")],
           limit: Annotated[int, typer.Option("--limit", min=1, max=100,
                                              help="At most this many matches.")] = 5,
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Search a project's request, analysis, plan, task outputs and artifacts."""
    from orchestrator.state.knowledge import search as find

    rt = get_runtime()
    hits = find(rt.store.db, rt.store.resolve_project_id(project_id), " ".join(query), limit)
    if as_json:
        print(json.dumps([dataclasses.asdict(hit) for hit in hits], indent=2))
        return
    if not hits:
        out.print("no matches", highlight=False)
    # Positions, not scores: bm25 and ts_rank_cd scores are on different scales.
    for place, hit in enumerate(hits, 1):
        out.print(f"{place:>3}. {hit.source}", highlight=False, markup=False)
        out.print(f"     {hit.snippet}", highlight=False, markup=False)


@cli.command()
@handle_errors
def stats(project_id: Annotated[str | None, typer.Argument(
              help="One project's id (or a unique prefix); all projects without it.")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
          llm: Annotated[bool, typer.Option("--llm", help="Also ask the orchestrator model "
                                            "for optimisations.")] = False) -> None:
    """Utilisation per queue, tokens and cost, retries, review rejections, the slowest work,
    and suggestions."""
    from orchestrator.interfaces.stats import collect, optimize, slots
    from orchestrator.interfaces.views import stats_view

    rt = get_runtime()
    scope = rt.store.resolve_project_id(project_id) if project_id is not None else None
    data = collect(rt.store, scope, slots(rt.settings)).to_json()
    if llm:
        data["optimization"] = optimize(rt, data)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    out.print(stats_view(data))


@cli.command()
@handle_errors
def metrics(port: Annotated[int, typer.Option("--port", min=1, max=65535,
                                              help="Port to listen on.")] = 9808,
            address: Annotated[str, typer.Option("--address",
                                                 help="Address to bind.")] = "127.0.0.1",
            timeout: Annotated[float, typer.Option(
                min=0.05, max=60, help="Seconds to wait for workers' replies per scrape.")
            ] = 1.0) -> None:
    """Serve Prometheus metrics on /metrics: projects, tasks, tokens, cost, task durations,
    and (with a broker) each queue's depth and live workers."""
    from orchestrator.interfaces.celery_app import app
    from orchestrator.interfaces.metrics import AgencyCollector, server

    rt = get_runtime()
    # Embedded, there is no broker to ask: the queue metrics are left out.
    collector = AgencyCollector(rt.store, None if rt.settings.embedded else app, timeout)
    try:
        httpd = server(collector, address, port)
    except OSError as exc:
        raise BadInput(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from None
    out.print(f"Serving Prometheus metrics on http://{address}:{port}/metrics",
              highlight=False, markup=False)
    with httpd:
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            return


def _set_budget(rt: Runtime, project: ProjectRecord, budget: int | None) -> None:
    if budget is not None:
        if budget <= project.tokens_used:
            raise BadInput(f"--budget {budget} is not above the {project.tokens_used} tokens "
                           "already used")
        rt.store.set_budget(project.id, budget)
        from orchestrator.services.approval import operator

        rt.store.note(project.id, None, "operator",
                      f"budget set to {budget} tokens by {operator()}")
    elif project.status is ProjectStatus.BUDGET_EXHAUSTED and not rt.store.within_budget(
            project.id):
        raise BadInput(f"the budget is spent ({project.tokens_used} of {project.budget_tokens} "
                       f"tokens): resume with --budget N, N > {project.tokens_used}")


def _resume(rt: Runtime, project_id: str, budget: int | None) -> None:
    from orchestrator.interfaces.celery_app import app
    from orchestrator.services.operator import ENDED, IN_FLIGHT, resume_project

    project = rt.store.project(project_id)
    if project.status not in (*ENDED, *IN_FLIGHT, ProjectStatus.PAUSED):
        raise BadInput(f"project {project_id} is {project.status.value}; there is nothing "
                       "to resume")
    _set_budget(rt, project, budget)

    def act() -> str:
        said = resume_project(rt, app, project_id)
        out.print(f"Project {project_id} {said}.", highlight=False, markup=False)
        return project_id

    _act_and_follow(rt, act)


@cli.command()
@handle_errors
def questions(
    project_id: Annotated[str | None, typer.Argument(
        help="Project id (or a unique prefix); all projects when left out.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Open questions agents asked, oldest first: `agency answer TASK TEXT` answers one."""
    from orchestrator.interfaces.views import questions_table

    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id) if project_id else None
    rows = rt.store.open_questions(found)
    if as_json:
        print(json.dumps([{"project_id": r["project_id"], "task_id": r["task_id"],
                           "task": int(r["idx"]), "title": r["title"],
                           "question": r["question"], "assumption": r["assumption"],
                           "asked_at": str(r["asked_at"])} for r in rows], indent=2))
        return
    if not rows:
        out.print("No open questions.", highlight=False)
        return
    out.print(questions_table(rows))


@cli.command()
@handle_errors
def answer(
    task_id: Annotated[str, typer.Argument(help="The task's id (or a unique prefix).")],
    text: Annotated[str, typer.Argument(help="The answer.")],
) -> None:
    """Answer the open question of a task: its agent carries on with the answer."""
    from orchestrator.services.approval import operator

    rt = get_runtime()
    found = rt.store.resolve_task_id(task_id)
    try:
        text = check_request(text)  # the rules of a request: not empty, UTF-8, not huge
    except BadInput as exc:
        raise BadInput(exc.message.replace("the request", "the answer").replace(
            ": say what the agency should deliver", "")) from None
    if rt.scheduler.answer(found, text, operator()) is None:
        raise BadInput(f"task {found} has no open question")
    out.print(f"Answered; task {found} carries on.", highlight=False, markup=False)


@cli.command("add-task")
@handle_errors
def add_task(
    project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")],
    plan: Annotated[Path, typer.Option("--plan", help="A file {\"tasks\": [...]}: each task as "
                                       "in a plan file; a dependency is an index in the "
                                       "project's numbering or an existing task's id.")],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Add them and return.")] = False,
) -> None:
    """Add tasks to a running or paused project, without restarting anything."""
    from orchestrator.interfaces.celery_app import app
    from orchestrator.services.operator import add_tasks

    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)

    def act() -> str:
        added = add_tasks(rt, app, found, plan)
        for task in added:
            out.print(f"  added task {task.index} {task.title!r} ({task.agent_type.value}, "
                      f"{task.status.value}), id {task.id}", highlight=False, markup=False)
        out.print(f"Project {found}: {len(added)} task(s) added.", highlight=False)
        return found

    _act_and_follow(rt, act, no_wait)


@cli.command()
@handle_errors
def pause(project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")]
          ) -> None:
    """Pause a running project: no new task starts; running ones finish. `agency resume ID`
    carries on."""
    from orchestrator.services.operator import pause_project

    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)
    pause_project(rt, found)
    out.print(f"Project {found} paused: running tasks finish, no new one starts; carry on "
              f"with: agency resume {found}", highlight=False, markup=False)


@cli.command()
@handle_errors
def resume(project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")],
           budget: Annotated[int | None, typer.Option("--budget", min=1, max=MAX_BUDGET,
                                                      help="A new token budget.")] = None
           ) -> None:
    """Carry on with a project from what the store holds: one that is paused, failed, ran out of
    budget or needs attention, or stalled because its workers died (what no live worker is
    running is queued again)."""
    rt = get_runtime()
    _resume(rt, rt.store.resolve_project_id(project_id), budget)


@cli.command()
@handle_errors
def retry(task_id: Annotated[str, typer.Argument(
        help="The failed task's id (or a unique prefix of at least 4 characters).")]) -> None:
    """Run a failed task again, then the tasks that wait on it, and follow the project."""
    from orchestrator.interfaces.celery_app import app
    from orchestrator.services.operator import retry_task

    rt = get_runtime()
    task_id = rt.store.resolve_task_id(task_id)

    def act() -> str:
        project_id = retry_task(rt, app, task_id)
        out.print(f"Task {task_id} queued again (project {project_id}).", highlight=False)
        return project_id

    _act_and_follow(rt, act)


@cli.command()
@handle_errors
def cancel(project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")]
           ) -> None:
    """Cancel a project: tasks not yet started will not start."""
    from orchestrator.services.approval import operator

    rt = get_runtime()
    project_id = rt.store.resolve_project_id(project_id)
    if not rt.scheduler.cancel_project(project_id, operator()):
        raise BadInput(f"project {project_id} has already ended")
    out.print(f"Project {project_id} cancelled.", highlight=False)


# Report and graph (issue 9) ----------------------------------------------------------------


@cli.command()
@handle_errors
def report(project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")],
           open_it: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False
           ) -> None:
    """Write report.html (self-contained: graph, timeline, costs, reviews) and print its path."""
    import webbrowser

    from orchestrator.services.report import collect, write_report

    rt = get_runtime()
    project = rt.store.project(rt.store.resolve_project_id(project_id))
    _materialize(rt, project)  # the links must point at files that exist here
    path = write_report(collect(rt.store, project))
    print(path)
    if open_it and not webbrowser.open(path.resolve().as_uri()):
        err.print("agency: no browser could be started here; open the file above",
                  highlight=False, markup=False)


@cli.command("plan")
@handle_errors
def plan_command(
    project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")],
    as_mermaid: Annotated[bool, typer.Option("--mermaid", help="Print a Mermaid flowchart "
                                             "instead of the table.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    edit: Annotated[Path | None, typer.Option("--edit", help="Replace the plan, while it waits "
                                              "for approval, with this plan file.")] = None,
) -> None:
    """Show a project's plan: its tasks, their dependencies, estimated tokens and cost."""
    from orchestrator.interfaces.plan_text import mermaid
    from orchestrator.interfaces.views import plan_json, plan_table
    from orchestrator.services.approval import edit as edit_plan
    from orchestrator.services.approval import estimate

    rt = get_runtime()
    found_id = rt.store.resolve_project_id(project_id)
    if edit is not None:
        edit_plan(rt, found_id, edit)
        err.print(f"Plan of project {found_id} replaced from {edit}.", highlight=False,
                  markup=False)
    project = rt.store.project(found_id, usage=False)
    tasks = rt.store.tasks(project.id)
    if project.plan is None or not tasks:
        raise BadInput(f"project {project.id} is {project.status.value} and has no plan yet")
    if as_mermaid:
        print(mermaid(tasks), end="")
        return
    found = estimate(rt.settings, project.plan)
    if as_json:
        print(json.dumps(plan_json(project, tasks, found), indent=2))
        return
    out.print(plan_table(project, tasks, found))
    if project.status is ProjectStatus.AWAITING_APPROVAL:
        out.print(f"Waiting for approval: agency approve {project.id}  |  "
                  f"agency reject {project.id} --reason TEXT", highlight=False, markup=False)


@cli.command()
@handle_errors
def log(
    project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")],
    tools: Annotated[bool, typer.Option("--tools", help="Also every tool call of the agents.")
                     ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A project's history: operator actions (with the OS user), status changes, retries and
    reviews, oldest first."""
    from orchestrator.interfaces.views import log_table

    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)
    index = {t.id: t.index for t in rt.store.tasks(found)}
    rows = [r for r in rt.store.events(found)
            if tools or r["kind"] not in ("tool", "tool_error")]
    if as_json:
        print(json.dumps([{"at": str(r["at"]), "kind": r["kind"],
                           "task": index.get(r["task_id"]) if r["task_id"] else None,
                           "task_id": r["task_id"], "from": r["from_status"],
                           "to": r["to_status"], "detail": r["detail"]} for r in rows],
                         indent=2, default=str))
        return
    out.print(log_table(found, rows, index))


@cli.command()
@handle_errors
def approve(
    project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Start it and return.")] = False,
) -> None:
    """Start a project that waits for approval, and watch it to the deliverable."""
    from orchestrator.interfaces.celery_app import app
    from orchestrator.services.approval import approve as approve_plan

    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)

    def act() -> str:
        approve_plan(rt, app, found)
        out.print(f"Project {found} approved.", highlight=False)
        return found

    _act_and_follow(rt, act, no_wait)


@cli.command()
@handle_errors
def reject(
    project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the project's log).")],
) -> None:
    """End a project that waits for approval; none of its tasks runs."""
    from orchestrator.services.approval import reject as reject_plan

    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)
    reject_plan(rt, found, reason)
    out.print(f"Project {found} rejected: {reason.strip()}", highlight=False, markup=False)


@cli.command()
@handle_errors
def graph(project_id: Annotated[str, typer.Argument(help="Project id (or a unique prefix).")],
          canvas: Annotated[bool, typer.Option("--canvas", help="Print the Celery canvas the "
                                               "plan compiles to instead (nothing is sent).")
                            ] = False) -> None:
    """Print the plan as a Mermaid flowchart (or, with --canvas, as chains, groups and chords)."""
    from orchestrator.interfaces.plan_text import canvas_text, mermaid

    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)
    tasks = rt.store.tasks(found)
    if not canvas:
        print(mermaid(tasks), end="")
        return
    from orchestrator.interfaces.celery_app import app

    print(canvas_text(app, found, tasks), end="")


@cli.command()
@handle_errors
def workers(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
            timeout: Annotated[float, typer.Option(
                min=0.05, max=60, help="Seconds to wait for replies.")] = 0.5
            ) -> None:
    """Every queue with its live workers, their concurrency, and the queue's depth."""
    rt = get_runtime()
    if rt.settings.embedded:
        raise BadInput("no broker configured (AGENCY_BROKER_URL): in embedded mode the workers "
                       "run inside `agency run`")
    from orchestrator.interfaces.celery_app import app
    from orchestrator.services.queues import check_broker, fleet

    check_broker(app)
    queues = fleet(app, timeout)
    if as_json:
        print(json.dumps([{"queue": q.name, "depth": q.depth, "workers": [
            {"name": w.name, "concurrency": w.concurrency, "active": w.active}
            for w in q.workers]} for q in queues], indent=2))
        return
    for q in queues:
        names = ", ".join(f"{w.name} (x{w.concurrency}, {w.active} busy)" for w in q.workers)
        out.print(f"{q.name:<20} depth {q.depth:<4} {names or 'NO WORKERS'}",
                  highlight=False, markup=False)


def _check_basic_auth(auth: SecretStr | None) -> None:
    """Flower takes `user:password` pairs, comma-separated; never echo them."""
    if auth is None:
        return
    for pair in auth.get_secret_value().split(","):
        user, colon, password = pair.partition(":")
        if not (user and colon and password):
            raise BadInput("FLOWER_BASIC_AUTH must be user:password (several pairs separated "
                           "by commas); Flower refuses to start")


@cli.command()
@handle_errors
def flower(
    unauthenticated: Annotated[bool, typer.Option(
        "--unauthenticated", help="Run Flower without authentication (not recommended).")
    ] = False,
) -> None:
    """Start Flower on this agency's broker, with basic auth from FLOWER_BASIC_AUTH."""
    import os
    import sys

    rt = get_runtime()
    if rt.settings.embedded:
        raise BadInput("Flower needs a broker: set AGENCY_BROKER_URL")
    if rt.settings.flower_basic_auth is None and not unauthenticated:
        raise BadInput("Flower refuses to start open: set FLOWER_BASIC_AUTH=user:password "
                       "(or pass --unauthenticated)")
    _check_basic_auth(rt.settings.flower_basic_auth)
    # Credentials stay in the environment (FLOWER_BASIC_AUTH), never on the command line.
    import flowerconfig

    argv = [sys.executable, "-m", "celery", "-A", "workers.app", "flower",
            f"--conf={flowerconfig.__file__}",
            f"--port={rt.settings.flower_port}", f"--address={rt.settings.flower_address}"]
    os.execv(sys.executable, argv)


@db_cli.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Apply pending database migrations (they also apply automatically on first use)."""
    from orchestrator.state.store import display_url, upgrade

    url = get_runtime().settings.effective_database_url
    applied, version, created = upgrade(url)
    said = ("created, " if created else "") + (
        f"applied migrations {', '.join(map(str, applied))}" if applied
        else f"already up to date at version {version}")
    out.print(f"Database {display_url(url)}: {said}.", highlight=False, markup=False)


def main() -> None:
    """The `agency` entry point; an error raised outside a command (settings read at import
    time, say) is one line too."""
    try:
        code = cli(standalone_mode=False)
        code = flush_stdout() or code
    except AgencyError as exc:
        raise SystemExit(_report(exc)) from None
    except usage.NoArgsIsHelpError as exc:  # `agency` alone, or a group: its help
        out.print(exc.ctx.get_help() if exc.ctx else exc.format_message(), markup=False,
                  highlight=False)
        raise SystemExit(2) from None
    except usage.UsageError as exc:  # the command line itself: one line, as any bad input
        where = exc.ctx.command_path if exc.ctx else "agency"
        err.print(f"agency: error: {exc.format_message()} (see {where} -h)", markup=False,
                  highlight=False)
        raise SystemExit(2) from None
    except typer.Abort:
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)
