"""Project and task statuses, and every legal move between them: the one place a move is written.

The scheduler's compare-and-set lists and the SQL guards derive from these tables (or a test checks
them against these tables); a move that is not here is a programming error (`IllegalMove`), which
the scheduler raises before it asks the database, and the database raises too: its
`lifecycle_moves` rows (migration 0011, checked against these tables by a test) feed a trigger
that refuses any other change of status, as procrastinate's SQL functions do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from orchestrator.domain.errors import IllegalMove


class TaskStatus(StrEnum):
    """A task's life: blocked (waiting on dependencies) -> pending -> in_progress -> completed."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    REVIEW = "review"
    # Its agent asked a person a question (`agency questions`) and waits for `agency answer`.
    NEEDS_INPUT = "needs_input"
    COMPLETED = "completed"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"


class ProjectStatus(StrEnum):
    PENDING = "pending"
    PLANNING = "planning"
    RUNNING = "running"
    INTEGRATING = "integrating"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BUDGET_EXHAUSTED = "budget_exhausted"
    # A task failed for good: what does not depend on it ran to the end; a person decides.
    NEEDS_ATTENTION = "needs_attention"
    # Planned, waiting for a person: `agency approve` starts it, `agency reject` ends it.
    AWAITING_APPROVAL = "awaiting_approval"
    # `agency pause`: no new task starts, running ones finish; `agency resume` carries on.
    PAUSED = "paused"


class QuestionStatus(StrEnum):
    """A question an agent asked a person (`agency questions`)."""

    OPEN = "open"
    ANSWERED = "answered"
    EXPIRED = "expired"  # nobody answered in time: the agent went on with its assumption


class By(StrEnum):
    """Who or what makes a move."""

    CLAIM = "claim"  # an attempt takes the work (and its fencing token)
    HOLD = "hold"  # the attempt that holds a task moves it within its hold (review, a question)
    FINISH = "finish"  # the attempt that holds the work ends it: done, failed, given back
    WORK = "work"  # the work goes on around it: released, integrated, stuck, budget spent
    EXPIRY = "expiry"  # a lease ran out: the work goes back to be sent again
    PERSON = "person"  # a person decides on live work: pause, carry on, approve, reject
    RESUME = "resume"  # a person carries on with ended work (`agency resume`, `agency retry`)
    CANCEL = "cancel"  # `agency cancel`


S = TypeVar("S", ProjectStatus, TaskStatus, QuestionStatus)


@dataclass(frozen=True)
class Move(Generic[S]):
    """One legal move: from `source` to `target`, made by `by`, because `why`."""

    source: S
    target: S
    by: By
    why: str


P, T, Q = ProjectStatus, TaskStatus, QuestionStatus


def _moves(sources: tuple[S, ...], target: S, by: By, why: str) -> tuple[Move[S], ...]:
    return tuple(Move(source, target, by, why) for source in sources)


PROJECT_MOVES: tuple[Move[ProjectStatus], ...] = (
    Move(P.PLANNING, P.PENDING, By.EXPIRY, "the planning attempt's lease ran out: planned again"),
    *_moves((P.BUDGET_EXHAUSTED, P.FAILED), P.PENDING, By.RESUME,
            "resumed before a plan was saved: planned again"),
    Move(P.PENDING, P.PLANNING, By.CLAIM, "a planning attempt takes it"),
    Move(P.PLANNING, P.RUNNING, By.FINISH, "planned, no approval needed"),
    Move(P.AWAITING_APPROVAL, P.RUNNING, By.PERSON, "approved (agency approve)"),
    Move(P.PAUSED, P.RUNNING, By.PERSON, "carried on after a pause (agency resume)"),
    *_moves((P.BUDGET_EXHAUSTED, P.FAILED, P.NEEDS_ATTENTION), P.RUNNING, By.RESUME,
            "resumed: its failed tasks queued again (agency resume, agency retry)"),
    Move(P.RUNNING, P.PAUSED, By.PERSON, "paused (agency pause)"),
    Move(P.RUNNING, P.INTEGRATING, By.WORK, "its last task completed"),
    *_moves((P.BUDGET_EXHAUSTED, P.FAILED), P.INTEGRATING, By.RESUME,
            "carried on with every task completed: integrated again"),
    Move(P.INTEGRATING, P.INTEGRATING, By.CLAIM, "an integration attempt takes it"),
    Move(P.INTEGRATING, P.INTEGRATING, By.EXPIRY,
         "the integration attempt's lease ran out: sent again"),
    Move(P.INTEGRATING, P.COMPLETED, By.FINISH, "integrated: the deliverable is saved"),
    Move(P.INTEGRATING, P.NEEDS_ATTENTION, By.FINISH,
         "integrated, but the output folder could not be written (a full disk)"),
    # By.RESUME: until it is written the project has ended (a person may act); the reconciler
    # carries on for them once there is room.
    Move(P.NEEDS_ATTENTION, P.COMPLETED, By.RESUME,
         "its stored deliverable written out (agency resume, or the reconciler once there is "
         "room)"),
    *_moves((P.PLANNING, P.INTEGRATING), P.FAILED, By.FINISH,
            "planning or integration failed for good"),
    *_moves((P.PENDING, P.RUNNING), P.FAILED, By.WORK, "the embedded workers stopped"),
    *_moves((P.PENDING, P.PLANNING, P.RUNNING, P.INTEGRATING, P.BUDGET_EXHAUSTED, P.FAILED,
             P.NEEDS_ATTENTION, P.AWAITING_APPROVAL, P.PAUSED), P.CANCELLED, By.CANCEL,
            "cancelled (agency cancel)"),
    Move(P.AWAITING_APPROVAL, P.CANCELLED, By.PERSON, "its plan rejected (agency reject)"),
    Move(P.PLANNING, P.AWAITING_APPROVAL, By.FINISH, "planned; the plan waits for a person"),
    Move(P.PLANNING, P.BUDGET_EXHAUSTED, By.FINISH, "the token budget is spent planning"),
    Move(P.INTEGRATING, P.BUDGET_EXHAUSTED, By.FINISH, "the token budget is spent integrating"),
    *_moves((P.RUNNING, P.PAUSED), P.BUDGET_EXHAUSTED, By.WORK,
            "the token budget is spent by a task"),
    *_moves((P.RUNNING, P.PAUSED), P.NEEDS_ATTENTION, By.WORK,
            "a task failed for good and nothing else can progress"),
)

# The statuses an attempt may hold its task in; every one of them can end the attempt.
_HOLDING = (T.IN_PROGRESS, T.REVIEW, T.NEEDS_INPUT)

TASK_MOVES: tuple[Move[TaskStatus], ...] = (
    Move(T.BLOCKED, T.PENDING, By.WORK, "its last dependency completed"),
    Move(T.FAILED, T.PENDING, By.RESUME, "retried (agency resume, agency retry)"),
    Move(T.PENDING, T.IN_PROGRESS, By.CLAIM, "a worker's attempt takes it"),
    Move(T.IN_PROGRESS, T.REVIEW, By.HOLD, "its output goes to review"),
    Move(T.REVIEW, T.IN_PROGRESS, By.HOLD, "revised after a review"),
    Move(T.IN_PROGRESS, T.NEEDS_INPUT, By.HOLD, "its agent asks a person a question"),
    Move(T.NEEDS_INPUT, T.IN_PROGRESS, By.HOLD, "answered, or nobody answered in time"),
    # Not made today, but the fence of an attempt's own moves admits any status it holds.
    Move(T.REVIEW, T.NEEDS_INPUT, By.HOLD, "its agent asks a person while in review"),
    Move(T.NEEDS_INPUT, T.REVIEW, By.HOLD, "answered, straight back to review"),
    # The fence admits any status the attempt holds the task in (a write retried after a lost
    # reply finds its own move done), so an attempt's end is legal from each of them.
    *_moves(_HOLDING, T.COMPLETED, By.FINISH, "its attempt completed it"),
    *_moves(_HOLDING, T.FAILED, By.FINISH, "its attempt failed for good"),
    *_moves(_HOLDING, T.PENDING, By.FINISH,
            "its attempt gave it back: a transient failure, or the budget is spent"),
    *_moves(_HOLDING, T.PENDING, By.EXPIRY, "its attempt's lease ran out: queued again"),
    *_moves(_HOLDING, T.CANCELLED, By.FINISH,
            "its project was cancelled: the attempt stopped before its next model call"),
    *_moves((T.PENDING, T.BLOCKED), T.CANCELLED, By.CANCEL,
            "its project was cancelled before it started"),
)

QUESTION_MOVES: tuple[Move[QuestionStatus], ...] = (
    Move(Q.OPEN, Q.ANSWERED, By.PERSON, "a person answered (agency answer)"),
    Move(Q.OPEN, Q.EXPIRED, By.EXPIRY, "nobody answered in time"),
)

# What a new row starts as.
PROJECT_BIRTH = frozenset({P.PENDING})
TASK_BIRTH = frozenset({T.BLOCKED, T.PENDING})  # blocked while it waits on dependencies
QUESTION_BIRTH = frozenset({Q.OPEN})


def is_legal(moves: tuple[Move[S], ...], source: S, target: S) -> bool:
    return any(m.source is source and m.target is target for m in moves)


def sources(moves: tuple[Move[S], ...], target: S, *by: By) -> frozenset[S]:
    """The statuses a move to `target` (made by any of `by`; by anything when none) comes from."""
    return frozenset(m.source for m in moves if m.target is target and (not by or m.by in by))


def require(moves: tuple[Move[S], ...], source: S, target: S) -> None:
    """IllegalMove unless `source` -> `target` is in the table."""
    if not is_legal(moves, source, target):
        raise IllegalMove(f"{source.value} -> {target.value} is not a legal move "
                          f"of a {type(source).__name__.removesuffix('Status').lower()}")


def require_into(moves: tuple[Move[S], ...], target: S, *by: By) -> frozenset[S]:
    """The sources of `target` (by any of `by`); IllegalMove when there are none."""
    found = sources(moves, target, *by)
    if not found:
        made = f" made by {'/'.join(b.value for b in by)}" if by else ""
        raise IllegalMove(f"no legal move{made} leads to {target.value}")
    return found


def _terminal(moves: tuple[Move[S], ...], statuses: type[S]) -> frozenset[S]:
    """Ended: every way out, if any, is a person's resume, retry or cancel."""
    return frozenset(s for s in statuses if all(m.by in (By.RESUME, By.CANCEL)
                                                for m in moves if m.source is s))


def _ordered(statuses: frozenset[ProjectStatus]) -> tuple[ProjectStatus, ...]:
    return tuple(s for s in ProjectStatus if s in statuses)


# Projects -----------------------------------------------------------------------------------

# Which statuses a project's compare-and-set may move it to each status from: every legal move
# but a claim's or an expiry's onto the status it is in (those are not a change of status).
PROJECT_FROM: dict[ProjectStatus, frozenset[ProjectStatus]] = {
    target: frozenset(m.source for m in PROJECT_MOVES if m.target is target
                      and m.source is not target)
    for target in ProjectStatus}
TERMINAL_PROJECT_STATUSES = _terminal(PROJECT_MOVES, ProjectStatus)
# Ended, but a person can carry on (`agency resume`).
RESUMABLE = frozenset(m.source for m in PROJECT_MOVES if m.by is By.RESUME)
# Live, but nothing moves it on until a person says so (approve, carry on after a pause).
WAITS_FOR_PERSON = sources(PROJECT_MOVES, P.RUNNING, By.PERSON)
# Neither ended nor waiting for a person: the system moves it on by itself.
IN_FLIGHT_STATUSES = frozenset(ProjectStatus) - TERMINAL_PROJECT_STATUSES - WAITS_FOR_PERSON
# Its tasks run (or finish, when paused): so a task's failure may leave it needing attention;
# tasks can be added to it, and a retried task runs again without moving the project.
TASKS_RUN = sources(PROJECT_MOVES, P.NEEDS_ATTENTION, By.WORK)
# A new task starts only here (a pause stops new starts).
TASKS_START = TASKS_RUN - WAITS_FOR_PERSON
# The plan may be edited, approved or rejected by a person.
PLAN_WAITS = frozenset(m.source for m in PROJECT_MOVES
                       if m.by is By.PERSON and m.target is P.CANCELLED)
# The lease expiries, as (from, to), in the table's order.
PROJECT_EXPIRIES = tuple((m.source, m.target) for m in PROJECT_MOVES if m.by is By.EXPIRY)

# operator's names: what `agency resume` revives, and what it leaves to the reconciler.
ENDED = _ordered(RESUMABLE)
IN_FLIGHT = _ordered(IN_FLIGHT_STATUSES)

# Tasks --------------------------------------------------------------------------------------

# The statuses an attempt holds its task in: working on it, having it reviewed, or waiting for a
# person's answer. Every write of an attempt is fenced on them (scheduler and store alike).
HELD = frozenset(m.target for m in TASK_MOVES if m.by in (By.CLAIM, By.HOLD))
HELD_STATUSES = sorted(s.value for s in HELD)
# Ready, or held by an attempt: it can still make progress (so can a blocked task whose
# dependencies have not failed).
LIVE_TASKS = sources(TASK_MOVES, T.IN_PROGRESS, By.CLAIM) | HELD
# Not started: what a cancellation cancels and what dispatch sends.
NOT_STARTED = sources(TASK_MOVES, T.CANCELLED, By.CANCEL)
TERMINAL_TASK_STATUSES = _terminal(TASK_MOVES, TaskStatus)
