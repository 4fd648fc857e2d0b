"""One task's attempt: claim it, let its agent work through its tools, review, complete.

The agent works in one conversation: its prompt (the cached project prefix, its persona, its
task with its dependencies' outputs), then tool calls until it answers, bounded by
AGENCY_AGENT_MAX_TURNS and AGENCY_AGENT_MAX_TOKENS. A reviewed task then goes to `review`; a
"revise" verdict continues the same conversation with the notes. Every turn is a ledger row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from orchestrator.agent.prompts import agent_system, task_prompt
from orchestrator.agent.review import review, revise_prompt
from orchestrator.agent.runtime import Runtime
from orchestrator.agent.tools import AGENT_TOOLS, ProjectTools
from orchestrator.domain.constants import ProjectStatus, Role, TaskStatus
from orchestrator.domain.errors import (
    AttemptFailed,
    CallCapReached,
    HeldElsewhere,
    NotRunnable,
    TaskNotReady,
)
from orchestrator.domain.lifecycle import HELD
from orchestrator.domain.models import AgentOutput, ProjectRecord, TaskRecord
from orchestrator.llm.base import TextBlock
from orchestrator.llm.structured import Conversation, Limits
from orchestrator.state.transitions import Claim, Completion

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def claim_task(rt: Runtime, task_id: str, worker: str
               ) -> tuple[Claim, TaskRecord, ProjectRecord] | None:
    """Claim the task for an attempt, with what the work needs (title, inputs and deps do not
    change once planned), or say why not: None when it already completed (a completed task is
    never executed again, whatever the broker redelivers)."""
    task = rt.store.task(task_id)
    project = rt.store.project(task.project_id, usage=False)  # the project brief shows no figures
    if project.status is not ProjectStatus.RUNNING:
        raise NotRunnable(f"project {project.id} is {project.status.value}")
    claim = rt.scheduler.start_task(task_id, worker, rt.leases.until())
    if claim is not None:
        return claim, task, project
    task = rt.store.task(task_id)
    if task.status is TaskStatus.COMPLETED:
        return None
    if task.status is TaskStatus.BLOCKED:
        raise TaskNotReady(f"task {task_id} still waits for {task.pending_deps} dependencies")
    if task.status in HELD:
        raise HeldElsewhere(f"task {task_id} is {task.status.value} on {task.worker}")
    raise NotRunnable(f"task {task_id} is {task.status.value}")


def run_agent_task(rt: Runtime, task_id: str, worker: str,
                   progress: Progress | None = None) -> Completion | None:
    """Load the task and its inputs from the store, do the work, save it, complete the task.

    Raises NotRunnable or TaskNotReady for a message that must not run, and AttemptFailed
    (with the cause) when a claimed attempt fails; workers/base.py decides what follows.
    """
    claimed = claim_task(rt, task_id, worker)
    if claimed is None:
        log.info("task %s already completed; not run again", task_id)
        return None
    claim, task, project = claimed
    try:
        with rt.leases.hold(claim):
            report = progress or (lambda _: None)
            output = work(rt, claim, project, task, report)
            report("saving output")
            return rt.durably("completion", lambda: rt.scheduler.complete_task(claim, output))
    except Exception as exc:
        raise AttemptFailed(claim.project_id, claim, exc) from exc


def work(rt: Runtime, claim: Claim, project: ProjectRecord, task: TaskRecord,
         progress: Progress) -> AgentOutput:
    """The agent's answer, reviewed (and revised) when its type is reviewed or it asked."""
    settings = rt.settings
    deps = rt.store.dependencies(task)
    tools = ProjectTools(rt.store, project.id, task.id, list(AGENT_TOOLS))
    tools.asker = partial(ask_person, rt, claim, tools, progress)
    conversation = Conversation(
        rt.provider, role=Role.AGENT, model=rt.model_for(Role.AGENT),
        system=agent_system(project, task.agent_type),
        prompt=[TextBlock(text=task_prompt(task, deps))], schema=AgentOutput,
        schema_name="agent_output", meter=rt.meter(project.id, claim), policy=rt.policy,
        tools=tools, limits=Limits(turns=settings.agent_max_turns,
                                   tokens=settings.agent_max_tokens),
        effort=rt.effort_for(Role.AGENT), cache_ttl=rt.cache_ttl(project),
        progress=rt.activity(project.id, task.id, progress))
    progress("calling model")
    output = tools.with_assumptions(tools.with_artifacts(conversation.answer()))
    if task.agent_type not in settings.reviewed_agents and not tools.review_notes:
        return output
    for round_ in range(1, settings.review_rounds + 2):
        progress(f"review round {round_}")
        try:
            verdict = review(rt, claim, project, task, output, round_, tools.review_notes)
        except CallCapReached as exc:  # the work stands; no calls are left to check it
            log.warning("task %s: %s; its output goes on unreviewed", task.id, exc)
            rt.store.note(project.id, task.id, "review", f"round {round_} not held: {exc}")
            break
        if verdict.verdict == "pass" or round_ > settings.review_rounds:
            break
        step = f"revising after review round {round_}"
        rt.durably("revision", partial(rt.scheduler.hold_as, claim, TaskStatus.IN_PROGRESS, step))
        progress(step)
        output = tools.with_assumptions(
            tools.with_artifacts(conversation.follow_up(revise_prompt(round_, verdict))))
    return output


POLL_SECONDS = 1.0


def ask_person(rt: Runtime, claim: Claim, tools: ProjectTools, progress: Progress,
               question: str, assumption: str) -> str:
    """The agent's question: its task waits in needs_input (its lease still renewed, no
    database connection held) until `agency answer` or AGENCY_QUESTION_TIMEOUT; then the
    attempt takes its task back and the agent reads the answer, or goes on on its
    assumption (kept in its output)."""
    asked = rt.durably("question", lambda: rt.scheduler.ask(claim, question, assumption))
    progress("waiting for an answer")
    deadline = time.monotonic() + rt.settings.question_timeout
    while True:
        row = rt.durably("question", partial(rt.store.question, asked))
        if row["status"] == "answered":
            result = f"The person answered: {row['answer']}"
            step = "question answered"
            break
        if time.monotonic() >= deadline and rt.scheduler.expire_question(asked):
            tools.assumptions.append((question, assumption))
            result = (f"No answer came within {rt.settings.question_timeout:.0f} s. Go on with "
                      f"your assumption ({assumption}) and say so in your output.")
            step = "no answer: going on with the assumption"
            break
        time.sleep(POLL_SECONDS)
    rt.durably("resume", partial(rt.scheduler.hold_as, claim, TaskStatus.IN_PROGRESS, step))
    progress("calling model")
    return result
