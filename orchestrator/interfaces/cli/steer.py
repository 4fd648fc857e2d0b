"""Operator commands: approve, reject, pause, resume, retry, cancel, add-task, questions,
answer. Each calls one `Operator` action and prints what it did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.agent.runtime import get_runtime
from orchestrator.domain.constants import MAX_BUDGET
from orchestrator.domain.estimates import estimate
from orchestrator.interfaces.celery_app import app
from orchestrator.interfaces.cli.app import cli, handle_errors, out, say
from orchestrator.interfaces.cli.follow import act_and_follow
from orchestrator.interfaces.shapes import questions_json
from orchestrator.interfaces.views import questions_table
from orchestrator.services.operator import Operator

ProjectId = Annotated[str, typer.Argument(help="Project id (or a unique prefix).")]


@cli.command()
@handle_errors
def approve(
    project_id: ProjectId,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Start it and return.")] = False,
) -> None:
    """Start a project that waits for approval, and watch it to the deliverable."""
    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)

    def act() -> str:
        project = rt.store.project(found, usage=False)
        Operator(rt, app).approve(found)
        cost = ""
        if project.plan is not None:
            guess = estimate(rt.settings, project.plan, rt.store.calibration())
            cost = (f" Estimated ${guess.cost_usd:.2f} live, ${guess.batch_cost_usd:.2f} "
                    "through the Batches API"
                    + (" (economy mode)." if project.economy else "."))
        out.print(f"Project {found} approved.{cost}", highlight=False)
        return found

    act_and_follow(rt, act, no_wait)


@cli.command()
@handle_errors
def reject(
    project_id: ProjectId,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the project's log).")],
) -> None:
    """End a project that waits for approval; none of its tasks runs."""
    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)
    Operator(rt, app).reject(found, reason)
    say(f"Project {found} rejected: {reason.strip()}")


@cli.command()
@handle_errors
def pause(project_id: ProjectId) -> None:
    """Pause a running project: no new task starts; running ones finish. `agency resume ID`
    carries on."""
    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)
    Operator(rt, app).pause(found)
    say(f"Project {found} paused: running tasks finish, no new one starts; carry on with: "
        f"agency resume {found}")


@cli.command()
@handle_errors
def resume(project_id: ProjectId,
           budget: Annotated[int | None, typer.Option("--budget", min=1, max=MAX_BUDGET,
                                                      help="A new token budget.")] = None,
           output: Annotated[Path | None, typer.Option(
               "--output", help="Write the project's folder under this one from now on (as "
               "AGENCY_OUTPUT_DIR does for new projects): DIR/<project id>.")] = None,
           ) -> None:
    """Carry on with a project from what the store holds: one that is paused, failed, ran out of
    budget or needs attention, or stalled because its workers died (what no live worker is
    running is queued again). A project whose folder could not be written (a full disk) gets
    its stored deliverable written out, with no model call."""
    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)

    def act() -> str:
        said = Operator(rt, app).resume(found, budget, output)
        say(f"Project {found} {said}.")
        return found

    act_and_follow(rt, act)


@cli.command()
@handle_errors
def retry(task_id: Annotated[str, typer.Argument(
        help="The failed task's id (or a unique prefix of at least 4 characters).")]) -> None:
    """Run a failed task again, then the tasks that wait on it, and follow the project."""
    rt = get_runtime()
    found = rt.store.resolve_task_id(task_id)

    def act() -> str:
        project_id = Operator(rt, app).retry(found)
        out.print(f"Task {found} queued again (project {project_id}); it failed for good, so "
                  "it starts a fresh conversation (its journal is not replayed).",
                  highlight=False)
        return project_id

    act_and_follow(rt, act)


@cli.command()
@handle_errors
def cancel(project_id: ProjectId) -> None:
    """Cancel a project: tasks not yet started will not start."""
    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)
    Operator(rt, app).cancel(found)
    out.print(f"Project {found} cancelled.", highlight=False)


@cli.command("add-task")
@handle_errors
def add_task(
    project_id: ProjectId,
    plan: Annotated[Path, typer.Option("--plan", help="A file {\"tasks\": [...]}: each task as "
                                       "in a plan file; a dependency is an index in the "
                                       "project's numbering or an existing task's id.")],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Add them and return.")] = False,
) -> None:
    """Add tasks to a running or paused project, without restarting anything."""
    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id)

    def act() -> str:
        added = Operator(rt, app).add_tasks(found, plan)
        for task in added:
            say(f"  added task {task.index} {task.title!r} ({task.agent_type.value}, "
                f"{task.status.value}), id {task.id}")
        out.print(f"Project {found}: {len(added)} task(s) added.", highlight=False)
        return found

    act_and_follow(rt, act, no_wait)


@cli.command()
@handle_errors
def questions(
    project_id: Annotated[str | None, typer.Argument(
        help="Project id (or a unique prefix); all projects when left out.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Open questions agents asked, oldest first: `agency answer TASK TEXT` answers one."""
    rt = get_runtime()
    found = rt.store.resolve_project_id(project_id) if project_id else None
    rows = rt.store.open_questions(found)
    if as_json:
        print(json.dumps(questions_json(rows), indent=2))
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
    rt = get_runtime()
    found = rt.store.resolve_task_id(task_id)
    Operator(rt, app).answer(found, text)
    say(f"Answered; task {found} carries on.")
