"""One task's attempt: claim it, let its agent work through its tools, have it reviewed, complete.

The agent works in one conversation: its prompt (the cached project prefix, its persona, its
task with its dependencies' outputs), then tool calls until it answers, bounded by
AGENCY_AGENT_MAX_TURNS and AGENCY_AGENT_MAX_TOKENS. Every turn is journaled with its ledger
row, so any new attempt of the task replays the conversation and pays only for what was never
answered. A task that waits (for a person's answer, or for its review on the reviewer's own
queue) parks: it holds no thread; the event that ends the wait sends it again, and it replays
its journal and carries on. A "revise" verdict continues the same conversation with the notes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from orchestrator.agent.batching import TaskBatcher
from orchestrator.agent.prompts import agent_system, task_prompt
from orchestrator.agent.review import checks_round, revise_prompt
from orchestrator.agent.runtime import Outbox, Runtime
from orchestrator.agent.tools import AGENT_TOOLS, ProjectTools
from orchestrator.domain.constants import ProjectStatus, Role, TaskStatus
from orchestrator.domain.errors import (
    AgencyError,
    AttemptFailed,
    HeldElsewhere,
    NotRunnable,
    Parked,
    TaskNotReady,
)
from orchestrator.domain.lifecycle import HELD, TASKS_RUN
from orchestrator.domain.models import AgentOutput, TaskRecord, Verdict
from orchestrator.llm.base import TextBlock
from orchestrator.llm.structured import Conversation, Limits
from orchestrator.state.parking import review_wait
from orchestrator.state.store import Work, conversation_key
from orchestrator.state.transitions import Claim, Completion

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def claim_task(rt: Runtime, task_id: str, worker: str) -> tuple[Claim, Work] | None:
    """Claim the task for an attempt (a ready task starts a new one; a woken one resumes its
    own), with what the work needs, read in the claim's round trip (title, inputs and deps do
    not change once planned), or say why not: None when it already completed (a
    completed task is never executed again, whatever the broker redelivers)."""
    until = rt.leases.until()
    # A ready task is claimed in the same round trip as the reads, which follow it (the
    # claim's own SQL asks for a pending task of a running project); when it did not claim,
    # what the reads say decides the rest.
    found, claim = rt.scheduler.start_with_work(task_id, worker, until)
    task, project = found.task, found.project  # the project brief shows no usage figures
    if claim is not None:
        return claim, found
    resumes = task.status in HELD  # started work goes on while its project is paused
    if project.status not in (TASKS_RUN if resumes else {ProjectStatus.RUNNING}):
        raise NotRunnable(f"project {project.id} is {project.status.value}")
    if resumes:
        claim = rt.scheduler.resume_task(task_id, worker, until)
    if claim is not None:  # resumed: what it works from is read again, after the claim
        return claim, rt.store.work_of(task_id)
    task = rt.store.task(task_id)
    if task.status is TaskStatus.COMPLETED:
        return None
    if task.status is TaskStatus.BLOCKED:
        raise TaskNotReady(f"task {task_id} still waits for {task.pending_deps} dependencies")
    if task.status in HELD and task.parked is not None:
        raise NotRunnable(f"task {task_id} is parked: it waits for {task.parked}")
    if task.status in HELD:
        raise HeldElsewhere(f"task {task_id} is {task.status.value} on {task.worker}")
    raise NotRunnable(f"task {task_id} is {task.status.value}")


def run_agent_task(rt: Runtime, task_id: str, worker: str,
                   progress: Progress | None = None) -> Completion | Parked | None:
    """Load the task and its inputs from the store, do the work, save it, complete the task;
    or park it (Parked, returned: its wait is written in the store).

    Raises NotRunnable or TaskNotReady for a message that must not run, and AttemptFailed
    (with the cause) when a claimed attempt fails; workers/base.py decides what follows.
    """
    claimed = claim_task(rt, task_id, worker)
    if claimed is None:
        log.info("task %s already completed; not run again", task_id)
        return None
    claim, found = claimed
    try:
        with rt.leases.hold(claim):
            report = progress or (lambda _: None)
            try:
                output = work(rt, claim, found, report)
            except Parked as parked:
                report(f"parked: waiting for {parked.waits_for}")
                return parked
            report("saving output")
            return rt.durably("completion", lambda: rt.scheduler.complete_task(claim, output))
    except Exception as exc:
        raise AttemptFailed(claim.project_id, claim, exc) from exc


def work(rt: Runtime, claim: Claim, found: Work, progress: Progress) -> AgentOutput:
    """The agent's answer, reviewed (and revised) when its type is reviewed or it asked, and
    its files checked in any case.

    Replayed from the journal as far as it goes; a review round with no verdict yet parks
    the task for its reviewer (Parked)."""
    outbox = Outbox(rt)
    try:
        return _work(rt, claim, found, progress, outbox)
    finally:  # tool results the conversation held for a call it did not make
        try:
            outbox.flush()
        except AgencyError as exc:
            log.warning("tool results not journaled (a new attempt runs them again): %s", exc)


def _work(rt: Runtime, claim: Claim, found: Work, progress: Progress,
          outbox: Outbox) -> AgentOutput:
    settings = rt.settings
    task, project, deps = found.task, found.project, found.dependencies
    tools = ProjectTools(rt.store, project.id, task.id, list(AGENT_TOOLS), pending=[])
    tools.asker = partial(ask_person, rt, claim, tools)
    meter = rt.meter(project.id, claim, outbox)
    conversation = Conversation(
        rt.provider, role=Role.AGENT, model=rt.model_for(Role.AGENT),
        system=agent_system(project, task.agent_type),
        prompt=[TextBlock(text=task_prompt(task, deps))], schema=AgentOutput,
        schema_name="agent_output", meter=meter, policy=rt.policy, tools=tools,
        limits=Limits(turns=settings.agent_max_turns, tokens=settings.agent_max_tokens),
        effort=rt.effort_for(Role.AGENT), cache_ttl=rt.cache_ttl(project),
        progress=rt.activity(project.id, task.id, progress),
        journal=rt.journal(project.id, claim,
                           conversation_key(task.id, task.conversation_from, "agent"),
                           notes=tools.take_notes, entries=found.journal, outbox=outbox),
        batcher=TaskBatcher(rt, project, task, claim, meter) if project.economy else None)
    progress("calling model")
    output = tools.with_assumptions(tools.with_artifacts(conversation.answer()))
    verdicts = found.verdicts
    if task.agent_type not in settings.reviewed_agents and not tools.review_notes:
        return checked(rt, claim, task, conversation, tools, output, verdicts, progress)
    for round_ in range(1, settings.review_rounds + 2):
        verdict = verdicts.get(round_)
        if verdict is None:  # its reviewer's turn: the task parks until the verdict
            draft = json.dumps({"output": output.model_dump(mode="json"),
                                "notes": tools.review_notes, "round": round_})
            rt.durably("review", partial(rt.scheduler.park, claim, TaskStatus.REVIEW,
                                         review_wait(round_), f"waits for review round "
                                         f"{round_}", draft))
            raise Parked(f"review round {round_}", review_round=round_)
        if verdict.verdict == "pass" or round_ > settings.review_rounds:
            break
        progress(f"revising after review round {round_}")
        output = tools.with_assumptions(
            tools.with_artifacts(conversation.follow_up(revise_prompt(round_, verdict))))
    return output


def checked(rt: Runtime, claim: Claim, task: TaskRecord,
            conversation: Conversation[AgentOutput], tools: ProjectTools,
            output: AgentOutput, verdicts: dict[int, Verdict], progress: Progress
            ) -> AgentOutput:
    """An unreviewed task's answer once its files pass their checks (revised, as after a
    review, while they fail and rounds are left); rounds already recorded are replayed."""
    if not rt.settings.checks or not output.artifacts:
        return output
    for round_ in range(1, rt.settings.review_rounds + 2):
        progress(f"checking files (round {round_})")
        verdict = verdicts.get(round_) or checks_round(rt, claim, task, output, round_)
        if verdict.verdict == "pass" or round_ > rt.settings.review_rounds:
            break
        output = tools.with_assumptions(
            tools.with_artifacts(conversation.follow_up(revise_prompt(round_, verdict))))
    return output


def ask_person(rt: Runtime, claim: Claim, tools: ProjectTools, question: str,
               assumption: str, tool_use_id: str) -> str:
    """The agent's question. Asked once per tool call: its task parks in needs_input (no
    thread, no lease) until `agency answer` or AGENCY_QUESTION_TIMEOUT wakes it; replayed,
    the same call reads the answer, or goes on on its assumption (kept in its output)."""
    store = rt.store
    row = rt.durably("question", partial(store.question_for_use, claim.task_id, tool_use_id))
    if row is None:
        expires = store.clock() + timedelta(seconds=rt.settings.question_timeout)
        rt.durably("question", partial(rt.scheduler.ask_parked, claim, question, assumption,
                                       tool_use_id, expires))
        raise Parked("an answer to its question")
    if row["status"] == "open":
        rt.durably("question", partial(rt.scheduler.repark_question, claim, int(row["id"])))
        raise Parked("an answer to its question")
    if row["status"] == "answered":
        return f"The person answered: {row['answer']}"
    tools.assumptions.append((question, assumption))
    return (f"No answer came within {rt.settings.question_timeout:.0f} s. Go on with "
            f"your assumption ({assumption}) and say so in your output.")
