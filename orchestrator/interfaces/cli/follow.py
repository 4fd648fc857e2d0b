"""Following a project to its end: workers running here in embedded mode, progress on the
terminal, and one closing word (where the deliverable is, or what to do next)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.live import Live

from orchestrator.agent.runtime import Runtime
from orchestrator.domain.constants import TERMINAL_PROJECT_STATUSES, ProjectStatus, TaskStatus
from orchestrator.domain.errors import AgencyError, BadInput
from orchestrator.domain.models import ProjectRecord, TaskRecord
from orchestrator.interfaces.celery_app import app, results_released
from orchestrator.interfaces.cli.app import out, say, warn
from orchestrator.interfaces.embedded import embedded_workers
from orchestrator.interfaces.unserved import UnservedWatch
from orchestrator.interfaces.views import (
    checks_summary,
    live_view,
    progress_line,
    project_seconds,
    risk_line,
    risks,
)
from orchestrator.services.deliverable import UnwrittenOutputs, write_outputs
from orchestrator.services.operator import Operator
from orchestrator.services.queues import check_broker

POLL_SECONDS = 0.2
# Where a followed project stops being followed: it ended, or it waits for a person.
STOPS = frozenset({*TERMINAL_PROJECT_STATUSES, ProjectStatus.AWAITING_APPROVAL,
                   ProjectStatus.PAUSED})


def snapshot(rt: Runtime, project_id: str) -> tuple[ProjectRecord, list[TaskRecord]]:
    return rt.store.project(project_id), rt.store.tasks(project_id)


def _task_lines(before: dict[str, str], tasks: list[TaskRecord]) -> Iterator[str]:
    for t in tasks:
        if before.get(t.id) != t.status.value:
            before[t.id] = t.status.value
            yield f"  task {t.index} {t.title!r} ({t.agent_type.value}): {t.status.value}"


def _snapshots(rt: Runtime, project_id: str) -> Iterator[tuple[ProjectRecord, list[TaskRecord]]]:
    """The project as it moves, until it stops; warns about queues nobody serves."""
    watch = None if rt.settings.embedded else UnservedWatch(app, warn)
    while True:
        project, tasks = snapshot(rt, project_id)
        if watch:
            watch.check(project, tasks)
        yield project, tasks
        if project.status in STOPS:
            return
        time.sleep(POLL_SECONDS)


def follow(rt: Runtime, project_id: str, quiet: bool = False) -> ProjectRecord:
    """Follow to the end (`quiet`: printing nothing); Ctrl-C detaches (production) or stops
    the project (embedded)."""
    try:
        return _settle(rt, project_id) if quiet else _follow(rt, project_id)
    except KeyboardInterrupt:
        if rt.settings.embedded:
            # The workers live in this process and stop with it: say so in the store, so
            # that `agency resume` can carry on from what was completed.
            Operator(rt, app).stopped(project_id)
            warn(f"agency: interrupted; carry on with: agency resume {project_id}")
        else:
            warn(f"agency: detached; the project goes on: agency watch {project_id}")
        raise typer.Exit(130) from None


def _settle(rt: Runtime, project_id: str) -> ProjectRecord:
    """The project once it stopped, having shown nothing but warnings (on stderr)."""
    *_, (project, _) = _snapshots(rt, project_id)
    return project


def _follow(rt: Runtime, project_id: str) -> ProjectRecord:
    """Show progress until the project stops: a live table on a terminal, lines otherwise."""
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
            say(line)
            last = line
        found = risks(project, tasks)
        names = ",".join(sorted(found))  # print when the set changes, not its times
        if names != late:
            if found:
                say(risk_line(tasks, found))
            late = names
        for task_line in _task_lines(seen, tasks):
            say(task_line)
    return project


def materialize(rt: Runtime, project: ProjectRecord) -> None:
    """Integration may have run on another machine: write the files here from the store."""
    if (project.status is ProjectStatus.COMPLETED and project.deliverable
            and not (Path(project.output_dir) / "deliverable.md").exists()):
        try:
            write_outputs(project, project.deliverable, rt.store.tasks(project.id),
                          rt.store.reviews(project.id), rt.store.screenshots(project.id))
        except UnwrittenOutputs as exc:
            raise AgencyError(f"project {project.id} is completed, but its folder "
                              f"{exc.describe()}; free some space and run this again") from exc


def refuse_no_wait_embedded(rt: Runtime, no_wait: bool) -> None:
    if no_wait and rt.settings.embedded:
        raise BadInput("--no-wait needs a broker (set AGENCY_BROKER_URL): embedded workers "
                       "stop when this command ends")


@contextmanager
def workers(rt: Runtime) -> Iterator[None]:
    """The broker checked (production), or workers running in this process (embedded)."""
    if not rt.settings.embedded:
        check_broker(app)
        with results_released(app):
            yield
        return
    with embedded_workers(app, rt.settings):
        yield


def act_and_follow(rt: Runtime, act: Callable[[], str], no_wait: bool = False) -> None:
    """An action that sets a project going (`act` returns its id), with workers running here
    in embedded mode; then follow the project to its end unless `no_wait`."""
    refuse_no_wait_embedded(rt, no_wait)
    with workers(rt):
        project_id = act()
        if no_wait:
            return
        project = follow(rt, project_id)
    finish(rt, rt.store.project(project.id))


def finish(rt: Runtime, project: ProjectRecord) -> None:
    """The closing word on a followed project; exit 1 when it did not complete."""
    seconds = project_seconds(project)
    if project.status is ProjectStatus.PAUSED:
        say(f"Project {project.id} is paused: no new task starts; carry on with: "
            f"agency resume {project.id}")
        return
    if project.status is ProjectStatus.AWAITING_APPROVAL:
        say(f"Project {project.id} is planned and waits for approval.")
        say(f"  see the plan and its cost: agency plan {project.id}\n"
            f"  start it:                  agency approve {project.id}\n"
            f"  or end it:                 agency reject {project.id} --reason TEXT")
        return
    if project.status is ProjectStatus.COMPLETED:
        materialize(rt, project)
        say(f"Project {project.id} completed in {seconds:.1f}s.")
        checked = checks_summary(rt.store.tasks(project.id), rt.store.reviews(project.id))
        if checked:
            say(f"{checked[0].upper()}{checked[1:]}.")
        # The last line says where the deliverable is (README: scripts read it).
        say(f"Deliverable: {Path(project.output_dir) / 'deliverable.md'}")
        return
    hint = (f"; carry on with: agency resume {project.id} --budget N, N above the "
            f"{project.tokens_used:,} used (agency plan {project.id} shows what the tasks are "
            "expected to spend)" if project.status is ProjectStatus.BUDGET_EXHAUSTED else "")
    if project.status is ProjectStatus.NEEDS_ATTENTION:
        for task in rt.store.tasks(project.id):
            if task.status is TaskStatus.FAILED:
                warn(f"  failed: task {task.index} {task.title!r}: {task.error}; "
                     f"agency retry {task.id[:8]}")
    warn(f"agency: error: project {project.id} {project.status.value}: "
         f"{project.error or 'no reason recorded'}{hint}")
    raise typer.Exit(1)
