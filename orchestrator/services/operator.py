"""Every operator action, in one place: submit, approve, reject, edit a plan, pause, resume, retry,
cancel, answer a question, add tasks, set a budget, and stop a project whose workers stopped.

Actions take ids and return what they did; the CLI parses and prints. Each is a compare-and-set
in the store, recorded in the project's events with the operator's OS user; one that finds the
project in the wrong state raises BadInput saying what it is. A plan waits in
`awaiting_approval` when it was submitted with `--approve-plan`, or when its estimated cost is
above AGENCY_APPROVAL_ABOVE_USD (`orchestrator.domain.estimates`): nothing of it is sent to an
agent queue until it is approved.
"""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import Celery
from pydantic import ValidationError

from orchestrator.agent.runtime import Runtime
from orchestrator.domain import dag
from orchestrator.domain.constants import LLMKind, ProjectStatus, TaskStatus
from orchestrator.domain.deadlines import task_deadlines
from orchestrator.domain.errors import AgencyError, BadInput, PlanError
from orchestrator.domain.estimates import added_budget, budget_floor, plan_budget
from orchestrator.domain.intake import check_request, load_plan_file, pydantic_line, read_json_file
from orchestrator.domain.lifecycle import ENDED, IN_FLIGHT
from orchestrator.domain.models import Plan, PlanFile, TaskRecord
from orchestrator.services.dispatch import dispatch, send_parked, send_plan, send_resume
from orchestrator.services.integrate import write_stored
from orchestrator.services.reconciler import reconcile
from orchestrator.state.claims import Moved

RESUMABLE = (*ENDED, *IN_FLIGHT, ProjectStatus.PAUSED)


def os_user() -> str:
    """Who is acting: the OS user of this process."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "unknown"


@dataclass(frozen=True)
class Submission:
    """What `agency run` was given, checked: the request and, with `--plan`, its plan."""

    request: str
    plan: Plan | None = None
    project_type: str | None = None
    budget: int | None = None
    needs_approval: bool = False
    deadline: datetime | None = None
    economy: bool = False


def submission(request: str | None, plan_path: Path | None, budget: int | None = None,
               needs_approval: bool = False, deadline: datetime | None = None,
               economy: bool = False) -> Submission:
    """Check what a person submits (the request, or the plan file's own) before anything is
    written: a bad one raises BadInput and nothing is stored."""
    plan_file: PlanFile | None = load_plan_file(plan_path) if plan_path else None
    text = check_request(request if request is not None
                         else (plan_file.request if plan_file else None))
    plan = (Plan.model_validate(plan_file.model_dump(exclude={"request", "project_type"}))
            if plan_file else None)
    kind = plan_file.project_type.value if plan_file and plan_file.project_type else None
    return Submission(text, plan, kind, budget, needs_approval, deadline, economy)


@dataclass
class Operator:
    """The operator actions on one runtime and Celery app, acting as `user`."""

    rt: Runtime
    app: Celery
    user: str = field(default_factory=os_user)

    def check_model(self) -> bool:
        """Refuse Claude without a key; True when the offline model answers."""
        settings = self.rt.settings
        if settings.llm_kind is LLMKind.ANTHROPIC and settings.anthropic_api_key is None:
            raise BadInput("AGENCY_LLM=anthropic needs ANTHROPIC_API_KEY")
        return settings.llm_kind is LLMKind.OFFLINE

    def submit(self, sub: Submission) -> str:
        """Store a new project and send it to planning; its id."""
        project_id = str(uuid.uuid4())
        output_dir = (self.rt.settings.output_dir / project_id).resolve()
        self.rt.store.insert_project(project_id, sub.request, sub.budget, sub.project_type,
                                     str(output_dir), sub.plan,
                                     needs_approval=sub.needs_approval, deadline=sub.deadline,
                                     economy=sub.economy or self.rt.settings.economy)
        send_plan(self.rt, self.app, project_id)
        return project_id

    # Plans that wait for approval ------------------------------------------------------------

    def approve(self, project_id: str) -> None:
        """Start a waiting project: its tasks go to their queues."""
        self._decide(project_id, ProjectStatus.RUNNING, f"approved by {self.user}")
        dispatch(self.rt, self.app, project_id)

    def reject(self, project_id: str, reason: str) -> None:
        """End a waiting project without running anything."""
        reason = reason.strip()
        if not reason:
            raise BadInput("--reason must say why the plan is rejected")
        self._decide(project_id, ProjectStatus.CANCELLED, f"rejected by {self.user}: {reason}")

    def edit_plan(self, project_id: str, path: Path) -> Plan:
        """Replace a waiting plan with a plan file, validated like any plan: a bad file, a cycle,
        a dangling dependency or an unknown agent type is refused and the waiting plan stays."""
        loaded = load_plan_file(path)
        plan = Plan.model_validate(loaded.model_dump(exclude={"request", "project_type"}))
        graph = dag.validate_plan(plan)
        detail = f"plan edited by {self.user}: {len(plan.tasks)} tasks from {path.name}"
        before = self.rt.store.project(project_id, usage=False)
        # What the new plan needs (a person's --budget stands: the store keeps it).
        budget = plan_budget(plan, self.rt.store.calibration(), before.tokens_used,
                             budget_floor(before.complexity))
        replaced = self.rt.scheduler.replace_plan(project_id, plan, graph, dag.schedule(graph),
                                                  detail, budget)
        if not replaced:
            raise BadInput(f"project {project_id} is {_found(replaced)}; only a plan awaiting "
                           "approval can be edited")
        project = self.rt.store.project(project_id, usage=False)
        if project.deadline is not None:  # spread the project's deadline over the new tasks
            spread = task_deadlines(graph, project.deadline, project.created_at)
            self.rt.scheduler.set_deadlines(project_id, project.deadline, {
                t.id: spread[t.index] for t in self.rt.store.tasks(project_id)})
        return plan

    def _decide(self, project_id: str, to: ProjectStatus, detail: str) -> None:
        decided = self.rt.scheduler.decide_plan(project_id, to, detail)
        if not decided:
            raise BadInput(f"project {project_id} is {_found(decided)}, not awaiting approval")

    # A running project ---------------------------------------------------------------------

    def pause(self, project_id: str) -> None:
        """No new task of the project starts; the running ones finish (`resume` goes on)."""
        paused = self.rt.scheduler.operator_move(project_id, ProjectStatus.PAUSED,
                                                 ProjectStatus.RUNNING, f"paused by {self.user}")
        if not paused:
            raise BadInput(f"project {project_id} is {_found(paused)}; only a running project "
                           "can be paused")

    def cancel(self, project_id: str) -> None:
        """Cancel a project: tasks not yet started will not start."""
        if not self.rt.scheduler.cancel_project(project_id, self.user):
            raise BadInput(f"project {project_id} has already ended")

    def stopped(self, project_id: str) -> None:
        """The embedded workers of this process stopped (Ctrl-C): fail the project, so that
        `resume` carries on from what was completed."""
        self.rt.scheduler.move_project(project_id, ProjectStatus.FAILED,
                                       "interrupted: the embedded workers stopped")

    def set_budget(self, project_id: str, budget: int | None) -> None:
        """A new token budget (above what was used), recorded; with none, refuse to carry on a
        project whose budget is spent."""
        project = self.rt.store.project(project_id)
        if budget is not None:
            if budget <= project.tokens_used:
                raise BadInput(f"--budget {budget} is not above the {project.tokens_used} "
                               "tokens already used")
            self.rt.store.set_budget(project.id, budget)
            self.rt.store.note(project.id, None, "operator",
                               f"budget set to {budget} tokens by {self.user}")
        elif (project.status is ProjectStatus.BUDGET_EXHAUSTED
              and not self.rt.store.within_budget(project.id)):
            raise BadInput(f"the budget is spent ({project.tokens_used} of "
                           f"{project.budget_tokens} tokens): resume with --budget N, "
                           f"N > {project.tokens_used}")

    def resume(self, project_id: str, budget: int | None = None,
               output: Path | None = None) -> str:
        """Carry on from the store (after setting `budget`, and the output folder to `output`
        / the project's id); what was done, in words. A project whose folder could not be
        written gets its stored deliverable written out, with no model call."""
        project = self.rt.store.project(project_id)
        status = project.status
        if status not in RESUMABLE:
            raise BadInput(f"project {project_id} is {status.value}; there is nothing to resume")
        if output is not None and output.exists() and not output.is_dir():
            raise BadInput(f"--output {output}: not a folder")
        self.set_budget(project_id, budget)  # refused (bad input) before anything changed
        if output is not None:
            folder = (output / project_id).resolve()
            self.rt.store.set_output_dir(project_id, str(folder))
            self.rt.store.note(project_id, None, "operator",
                               f"output folder set to {folder} by {self.user}")
        if status is ProjectStatus.NEEDS_ATTENTION and project.deliverable is not None:
            written = write_stored(self.rt, project_id)
            now_is = self.rt.store.project(project_id)
            if not written and now_is.status is not ProjectStatus.COMPLETED:  # (the reconciler
                raise AgencyError(now_is.error  # may have written it a moment ago)
                                  or f"project {project_id}: its folder could not be written")
            return f"completed: its deliverable written to {now_is.output_dir}"
        if status is ProjectStatus.PAUSED:
            if not self.rt.scheduler.operator_move(project_id, ProjectStatus.RUNNING,
                                                   ProjectStatus.PAUSED,
                                                   f"resumed by {self.user}"):
                raise BadInput(f"project {project_id} is no longer paused")
            # What became ready while paused was refused by the workers: send it again (a
            # task still queued from before gets a second message, which its claim makes
            # harmless).
            dispatch(self.rt, self.app, project_id)
            send_parked(self.rt, self.app, project_id)
            return "resumed after a pause"
        if status in IN_FLIGHT:
            # Nothing to revive: what a dead worker held comes back when its lease expires.
            done = reconcile(self.rt, self.app)
            return (f"is {status.value}; the reconciler re-sent {len(done.resent)} and "
                    f"requeued {len(done.requeued)} task(s); a dead worker's task runs again "
                    f"once its lease expires (within {self.rt.settings.lease_seconds:.0f}s)")
        target, revived = self.rt.scheduler.revive(project_id)
        self.rt.store.note(project_id, None, "operator",
                           f"resumed by {self.user}: {len(revived)} failed task(s) queued again")
        if target is ProjectStatus.PENDING:
            send_plan(self.rt, self.app, project_id)
        else:
            dispatch(self.rt, self.app, project_id)
            send_parked(self.rt, self.app, project_id)
        return f"resumed; {len(revived)} failed task(s) back in the queue"

    def retry(self, task_id: str) -> str:
        """Run a failed task again, then its descendants; its project's id."""
        task = self.rt.store.task(task_id)
        self.rt.scheduler.revive(task.project_id, task_id)
        self.rt.store.note(task.project_id, task_id, "operator",
                           f"task {task.index} retried by {self.user}: a fresh conversation")
        dispatch(self.rt, self.app, task.project_id, [task_id])
        return task.project_id

    def answer(self, task_id: str, text: str) -> None:
        """Answer a task's open question: its agent carries on with the answer."""
        text = check_request(text, "answer", empty="")  # a request's rules: UTF-8, not huge
        project_id = self.rt.scheduler.answer(task_id, text, self.user)
        if project_id is None:
            raise BadInput(f"task {task_id} has no open question")
        # Its agent's next message (sent best effort: the reconciler sends it otherwise).
        send_resume(self.rt, self.app, project_id, task_id)

    def add_tasks(self, project_id: str, path: Path) -> list[TaskRecord]:
        """Add a file's tasks to a running (or paused) project without restarting anything.

        The file holds {"tasks": [...]}, each task as in a plan file; a dependency is an index
        in the project's numbering (its tasks 0 to n-1, then the file's tasks n, n+1, ... in
        order) or an existing task's id (or a unique prefix). The whole plan, old and new, must
        pass every graph rule; no new task may depend on a cancelled or failed one. The new
        tasks are sent at once; those that wait on unfinished work are released by the store
        as it completes.
        """
        project = self.rt.store.project(project_id, usage=False)
        if project.status not in (ProjectStatus.RUNNING, ProjectStatus.PAUSED) or (
                project.plan is None):
            raise BadInput(f"project {project_id} is {project.status.value}; tasks can be "
                           "added to a running or paused project")
        existing = self.rt.store.tasks(project_id)
        new = self._new_tasks(project_id, path, existing)
        try:
            plan = Plan.model_validate({"tasks": [*(t.model_dump() for t in project.plan.tasks),
                                                  *new]})
        except ValidationError as exc:
            raise PlanError(f"{path}: {pydantic_line(exc)}") from exc
        try:
            graph = dag.validate_plan(plan)
        except PlanError as exc:
            raise PlanError(f"{path}: {exc.message}") from exc
        _refuse_dead_ends(path, existing, graph, len(plan.tasks))
        added = self.rt.scheduler.add_tasks(project_id, plan, graph, dag.schedule(graph),
                                            len(existing), f"{len(new)} task(s) added by "
                                            f"{self.user} from {path.name}",
                                            added_budget(project.budget_tokens, plan,
                                                         len(existing)))
        if added is None:
            raise BadInput(f"project {project_id} is {self._status(project_id)}; tasks can be "
                           "added to a running or paused project")
        dispatch(self.rt, self.app, project_id, added)
        return [self.rt.store.task(task_id) for task_id in added]

    def _new_tasks(self, project_id: str, path: Path, existing: list[TaskRecord]
                   ) -> list[dict[str, Any]]:
        """The file's tasks, their dependencies given by id turned into indices."""
        data = read_json_file(path)
        new = data.get("tasks") if isinstance(data, dict) else None
        if not isinstance(new, list) or not new:
            raise PlanError(f"{path} must hold a JSON object with a non-empty 'tasks' list")
        ids = {t.id: t.index for t in existing}
        for n, task in enumerate(new, len(existing)):
            if not isinstance(task, dict):
                raise PlanError(f"{path}: task {n} must be an object")
            deps = task.get("dependencies", [])
            if not isinstance(deps, list):
                raise PlanError(f"{path}: task {n}: dependencies must be a list")
            task["dependencies"] = [self._dep_index(project_id, path, n, ids, d) for d in deps]
        return new

    def _dep_index(self, project_id: str, path: Path, n: int, ids: dict[str, int],
                   dep: object) -> object:
        if not isinstance(dep, str):
            return dep  # an index (or garbage the plan's validation refuses)
        found = self.rt.store.resolve_task_id(dep)
        if found not in ids:
            raise PlanError(f"{path}: task {n} depends on {dep!r}, which is not a task of "
                            f"project {project_id}")
        return ids[found]

    def _status(self, project_id: str) -> str:
        return self.rt.store.project(project_id, usage=False).status.value


def _found(moved: Moved) -> str:
    """The status a refused move found the project in, in words."""
    return moved.found.value if moved.found else "gone"


def _refuse_dead_ends(path: Path, existing: list[TaskRecord], graph: dag.Graph,
                      size: int) -> None:
    """A new task may not wait on a cancelled task, a failed one, or one that waits on a
    failure: it would wait for ever."""
    cancelled = {t.index for t in existing if t.status is TaskStatus.CANCELLED}
    stuck = {t.index for t in existing if t.status is TaskStatus.FAILED
             or (t.status is TaskStatus.BLOCKED and t.error)}
    for index in range(len(existing), size):
        bad = sorted(cancelled & set(graph.deps[index]))
        if bad:
            raise BadInput(f"{path}: task {index} depends on task {bad[0]}, which was cancelled")
        bad = sorted(stuck & set(graph.deps[index]))
        if bad:
            raise BadInput(f"{path}: task {index} depends on task {bad[0]}, which failed or "
                           "waits on a failure; retry it first (agency retry)")
