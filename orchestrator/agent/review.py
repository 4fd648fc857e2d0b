"""Reviews: a task's output is checked before its dependents start.

Work products (code, data, copy) are reviewed by the QA engineer; plans, research and QA's own
work by the orchestrator. Settings say which agent types are reviewed; an agent may also ask
for a review with `request_review`. The verdict is structured: pass, or revise with a note per
acceptance criterion. "Revise" sends the work back to its agent with the notes, at most
`AGENCY_REVIEW_ROUNDS` times; when the last revised output is still not passed, the task
completes with it, and its open notes stay on record (status, the deliverable).

Before the reviewing model reads the work, its files are run (orchestrator/checks) in a
temporary copy of the project's artifacts: the model sees the results, and a failed check
makes the verdict "revise" with the checker's detail as the note, whatever the model said.
After the last round, failing checks stay on record as open. A task whose type is not reviewed
still has its files checked, by the checks alone, on its own worker (no model call, no hop).

A review is its own message on the reviewer's queue (`qa_engineer` for work products,
`orchestrator` otherwise), so review load reaches the reviewer's pool: the agent's task parks
in `review` while it runs, under the reviewer's lease, and the review's own conversation is
journaled like any other.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.agent.prompts import reviewer_system
from orchestrator.agent.runtime import Runtime
from orchestrator.agent.tools import READ_ONLY_TOOLS, ProjectTools
from orchestrator.checks import Checked, check_files
from orchestrator.checks import Limits as CheckLimits
from orchestrator.domain import prompt_labels as L
from orchestrator.domain.constants import AgentType, Role
from orchestrator.domain.errors import AttemptFailed, CallCapReached, NotRunnable
from orchestrator.domain.models import (
    AgentOutput,
    CheckResult,
    CriterionCheck,
    ProjectRecord,
    TaskRecord,
    Verdict,
)
from orchestrator.llm.base import TextBlock
from orchestrator.llm.structured import Conversation, Limits
from orchestrator.state.artifacts import place_artifacts, write_artifact
from orchestrator.state.store import conversation_key
from orchestrator.state.transitions import Claim, Completion

log = logging.getLogger(__name__)

WORK_PRODUCTS = frozenset({
    AgentType.FRONTEND_DEVELOPER, AgentType.BACKEND_DEVELOPER, AgentType.MOBILE_DEVELOPER,
    AgentType.DEVOPS_ENGINEER, AgentType.DATA_ANALYST, AgentType.CONTENT_WRITER})
ORCHESTRATOR = "orchestrator"
REVIEWERS = (AgentType.QA_ENGINEER.value, ORCHESTRATOR)  # the queues reviews run on
CHECKS = "checks"  # the reviewer of a round with no reviewing model
REVIEW_TURNS = 3
ARTIFACT_EXCERPT = 1500


def reviewer_for(agent: AgentType) -> str:
    return AgentType.QA_ENGINEER.value if agent in WORK_PRODUCTS else ORCHESTRATOR


def consistent(verdict: Verdict) -> None:
    """A verdict must agree with its own notes."""
    unmet = [c.criterion for c in verdict.criteria if not c.met]
    if verdict.verdict == "pass" and unmet:
        raise ValueError(f"verdict is pass but criterion {unmet[0]!r} is not met")
    if verdict.verdict == "revise" and not unmet:
        raise ValueError("verdict is revise but every criterion is met: name what to change")


def check_draft(rt: Runtime, task: TaskRecord, output: AgentOutput) -> Checked:
    """Run the draft's files where integration will put them: the project's completed work and
    this draft, placed together in a temporary directory (so links between files resolve)."""
    if not rt.settings.checks or not output.artifacts:
        return Checked([])
    tasks = [t.model_copy(update={"output": output}) if t.id == task.id else t
             for t in rt.store.tasks(task.project_id)]
    placed = place_artifacts([t for t in tasks if t.id == task.id or t.output is not None])
    settings = rt.settings
    limits = CheckLimits(seconds=settings.check_seconds, memory_mb=settings.check_memory_mb,
                    processes=settings.check_processes, chromium=settings.chromium)
    with tempfile.TemporaryDirectory(prefix="agency-checks-") as tmp:
        root = Path(tmp)
        for artifact in placed:
            write_artifact(root, artifact.path, artifact.content)
        return check_files(root, [a.path.as_posix() for a in placed if a.task_id == task.id],
                           limits)


def check_line(result: CheckResult) -> str:
    """One check as the reviewer (and the agent, in a revise note) reads it."""
    said = {True: "passed", False: "FAILED", None: "not checked"}[result.ok]
    return f"{L.BULLET}{result.check} of {result.path}: {said}: {result.detail}"


def check_criterion(result: CheckResult) -> str:
    return f"check {result.check} of {result.path}"


def gate(verdict: Verdict, checked: Checked) -> Verdict:
    """The checks decide: any failed check makes the verdict "revise", with its detail."""
    failed = checked.failed
    if not failed:
        return verdict
    said = (f"The reviewer passed it, but {len(failed)} of {len(checked.results)} checks "
            f"failed." if verdict.verdict == "pass" else
            f"{verdict.summary} {len(failed)} of {len(checked.results)} checks failed.".strip())
    return Verdict(verdict="revise", summary=said, criteria=[
        *verdict.criteria, *(CriterionCheck(criterion=check_criterion(r), met=False,
                                            note=r.detail) for r in failed)])


def checks_verdict(checked: Checked) -> Verdict:
    """The verdict of a round with no reviewing model: the checks alone."""
    ran = [r for r in checked.results if r.ok is not None]
    passed = Verdict(verdict="pass", criteria=[], summary=f"{len(ran)} checks passed"
                     f"{'' if len(ran) == len(checked.results) else ', the rest not checked'}.")
    return gate(passed, checked)


def review_prompt(task: TaskRecord, output: AgentOutput, notes: list[str],
                  checks: list[CheckResult] | None = None) -> str:
    lines = [L.REVIEW_HEAD.format(index=task.index, title=task.title,
                                  agent_type=task.agent_type.value),
             L.DESCRIPTION + task.description,
             L.DELIVERABLES + L.LIST_SEPARATOR.join(task.deliverables),
             L.CRITERIA + L.LIST_SEPARATOR.join(task.acceptance_criteria)]
    lines += [L.AGENT_ASKS + n for n in notes]
    if checks:
        lines += ["", L.CHECKS_HEAD, *map(check_line, checks)]
    lines += ["", L.UNDER_REVIEW, L.SUMMARY + output.summary, "", output.content]
    for artifact in output.artifacts:
        body = artifact.content
        cut = f"\n[... {len(body) - ARTIFACT_EXCERPT} more characters]" if len(
            body) > ARTIFACT_EXCERPT else ""
        lines += ["", L.FILE_HEAD.format(path=artifact.path), body[:ARTIFACT_EXCERPT] + cut]
    return "\n".join(lines)


def revise_prompt(round_: int, verdict: Verdict) -> str:
    """The reviewer's notes, sent back to the agent in its own conversation."""
    notes = [f"{L.BULLET}{c.criterion}: {c.note or 'not met'}" for c in verdict.criteria
             if not c.met]
    head = L.REVISE_HEAD.format(round=round_)
    return "\n".join([f"{head} {verdict.summary}".rstrip(), *notes, "",
                      "Revise your work: address every note, keep what passed, and answer with "
                      "the complete revised JSON object."])


def review(rt: Runtime, claim: Claim, project: ProjectRecord, task: TaskRecord,
           output: AgentOutput, round_: int, notes: list[str], worker: str | None = None
           ) -> tuple[Verdict, bool]:
    """One review round: the checks, then the reviewing model (journaled); the verdict,
    gated by the checks, recorded (fenced) by the worker that ran it. Also says whether this
    round is the last: when no model call is left, the checks alone decide and the work
    stands as it is (CallCapReached is logged)."""
    capped = False
    reviewer = reviewer_for(task.agent_type)
    checked = check_draft(rt, task, output)
    try:
        verdict = gate(model_verdict(rt, claim, project, task, output, round_, notes,
                                     checked), checked)
    except CallCapReached as exc:  # the work stands; no calls are left to review it
        log.warning("task %s: %s; its checks alone decide", task.id, exc)
        rt.store.note(project.id, task.id, "review", f"round {round_} not held: {exc}")
        verdict, capped = checks_verdict(checked), True
    rt.durably("verdict", lambda: rt.scheduler.record_review(
        claim, round_, reviewer, verdict, worker, checked.results, checked.screenshots))
    return verdict, capped


def checks_round(rt: Runtime, claim: Claim, task: TaskRecord, output: AgentOutput,
                 round_: int) -> Verdict:
    """A round of checks alone (a task whose type is not reviewed), on the agent's worker."""
    checked = check_draft(rt, task, output)
    verdict = checks_verdict(checked)
    rt.durably("verdict", lambda: rt.scheduler.record_review(
        claim, round_, CHECKS, verdict, None, checked.results, checked.screenshots))
    return verdict


def model_verdict(rt: Runtime, claim: Claim, project: ProjectRecord, task: TaskRecord,
                  output: AgentOutput, round_: int, notes: list[str], checked: Checked
                  ) -> Verdict:
    reviewer = reviewer_for(task.agent_type)
    role = Role.AGENT if reviewer != ORCHESTRATOR else Role.INTEGRATE  # picks the model
    conversation = Conversation(
        rt.provider, role=Role.REVIEW, model=rt.model_for(role),
        system=reviewer_system(project, reviewer),
        prompt=[TextBlock(text=review_prompt(task, output, notes, checked.results))],
        schema=Verdict, schema_name="verdict", check=consistent,
        meter=rt.meter(project.id, claim), policy=rt.policy, max_tokens=4000,
        tools=ProjectTools(rt.store, project.id, task.id, list(READ_ONLY_TOOLS)),
        limits=Limits(turns=REVIEW_TURNS, tokens=rt.settings.agent_max_tokens),
        effort=rt.effort_for(Role.REVIEW), cache_ttl=rt.cache_ttl(project),
        journal=rt.journal(project.id, claim,
                           conversation_key(task.id, task.conversation_from, f"review/{round_}")))
    return conversation.answer()


@dataclass(frozen=True)
class Reviewed:
    """What a review message did: completed the task (`completion`), or sent it back to its
    agent (`revise`); neither when the task was not waiting for this review."""

    completion: Completion | None = None
    revise: bool = False


def run_review(rt: Runtime, task_id: str, round_: int, worker: str) -> Reviewed:
    """A review message: take the task's review round under this worker's lease, review the
    draft, record the verdict; a pass (or the last round) completes the task, a "revise"
    wakes its agent. Raises NotRunnable for a review nobody waits for, and AttemptFailed (with
    the cause) when the review fails."""
    taken = rt.scheduler.take_review(task_id, round_, rt.leases.until())
    if taken is None:
        task = rt.store.task(task_id)
        raise NotRunnable(f"task {task_id} ({task.status.value}) does not wait for review "
                          f"round {round_}")
    claim, draft, _ = taken
    task = rt.store.task(task_id)
    project = rt.store.project(task.project_id, usage=False)
    saved = json.loads(draft or "{}")
    output = AgentOutput.model_validate(saved["output"])
    notes = [str(n) for n in saved.get("notes", [])]
    last = round_ > rt.settings.review_rounds
    try:
        with rt.leases.hold(claim):
            verdict, capped = review(rt, claim, project, task, output, round_, notes, worker)
            if verdict.verdict == "pass" or last or capped:
                return Reviewed(completion=rt.durably(
                    "completion", lambda: rt.scheduler.complete_task(claim, output)))
    except Exception as exc:
        raise AttemptFailed(claim.project_id, claim, exc) from exc
    # Woken after the lease is let go, so no renewal races the wake.
    rt.durably("revision", lambda: rt.scheduler.wake(
        claim, f"review round {round_}: revise ({worker})"))
    return Reviewed(revise=True)
