"""The lifecycle table: what it allows, what is derived from it, and the SQL checked against it."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from orchestrator.domain import lifecycle
from orchestrator.domain.errors import IllegalMove
from orchestrator.domain.lifecycle import (
    PROJECT_MOVES,
    QUESTION_MOVES,
    TASK_MOVES,
    By,
    Move,
    ProjectStatus,
    QuestionStatus,
    TaskStatus,
)
from orchestrator.state.connector import queries
from orchestrator.state.store import Store
from orchestrator.state.transitions import (
    CANCEL_TASKS,
    PROJECT_FROM,
    RELEASE,
    REVIVE,
    START,
    Claim,
    ProjectClaim,
    Scheduler,
)

P, T, Q = ProjectStatus, TaskStatus, QuestionStatus


def _reachable(moves: tuple[Move[Any], ...], births: frozenset[Any]) -> set[Any]:
    seen, todo = set(births), list(births)
    while todo:
        status = todo.pop()
        for m in moves:
            if m.source is status and m.target not in seen:
                seen.add(m.target)
                todo.append(m.target)
    return seen


@pytest.mark.parametrize(("moves", "births", "statuses"), [
    (PROJECT_MOVES, lifecycle.PROJECT_BIRTH, ProjectStatus),
    (TASK_MOVES, lifecycle.TASK_BIRTH, TaskStatus),
    (QUESTION_MOVES, lifecycle.QUESTION_BIRTH, QuestionStatus),
])
def test_every_status_is_reachable_from_birth(moves: tuple[Move[Any], ...],
                                               births: frozenset[Any],
                                               statuses: type[Any]) -> None:
    assert _reachable(moves, births) == set(statuses)


def test_no_move_is_written_twice_by_the_same_hand() -> None:
    for moves in (PROJECT_MOVES, TASK_MOVES, QUESTION_MOVES):
        keys = [(m.source, m.target, m.by) for m in moves]
        assert len(keys) == len(set(keys))


def test_terminal_statuses_have_no_way_out_but_a_person_resuming_or_cancelling() -> None:
    assert set(lifecycle.TERMINAL_PROJECT_STATUSES) == {P.COMPLETED, P.FAILED, P.CANCELLED,
                                                   P.BUDGET_EXHAUSTED, P.NEEDS_ATTENTION}
    assert set(lifecycle.TERMINAL_TASK_STATUSES) == {T.COMPLETED, T.FAILED, T.CANCELLED}
    for moves, terminal in ((PROJECT_MOVES, lifecycle.TERMINAL_PROJECT_STATUSES),
                            (TASK_MOVES, lifecycle.TERMINAL_TASK_STATUSES)):
        out = [m for m in moves if m.source in terminal]
        assert out and all(m.by in (By.RESUME, By.CANCEL) for m in out)
    # Completed and cancelled are final: nothing, not even a person, moves them on.
    assert not [m for m in PROJECT_MOVES if m.source in (P.COMPLETED, P.CANCELLED)]
    assert not [m for m in TASK_MOVES if m.source in (T.COMPLETED, T.CANCELLED)]
    # What resumes is exactly what `agency resume` revives.
    assert {m.source for m in PROJECT_MOVES if m.by is By.RESUME} == {
        P.FAILED, P.BUDGET_EXHAUSTED, P.NEEDS_ATTENTION}
    assert {m.source for m in TASK_MOVES if m.by is By.RESUME} == {T.FAILED}


# What the code used before the table, written out by hand: the derived sets must equal it.
_PROJECT_FROM_BEFORE = {
    P.PENDING: {P.PLANNING, P.BUDGET_EXHAUSTED, P.FAILED},
    P.PLANNING: {P.PENDING},
    P.RUNNING: {P.PLANNING, P.BUDGET_EXHAUSTED, P.FAILED, P.NEEDS_ATTENTION,
                P.AWAITING_APPROVAL, P.PAUSED},
    P.PAUSED: {P.RUNNING},
    P.INTEGRATING: {P.RUNNING, P.BUDGET_EXHAUSTED, P.FAILED},
    P.COMPLETED: {P.INTEGRATING, P.NEEDS_ATTENTION},  # a stored deliverable written out
    P.FAILED: {P.PENDING, P.PLANNING, P.RUNNING, P.INTEGRATING},
    P.CANCELLED: {P.PENDING, P.PLANNING, P.RUNNING, P.INTEGRATING, P.BUDGET_EXHAUSTED,
                  P.FAILED, P.NEEDS_ATTENTION, P.AWAITING_APPROVAL, P.PAUSED},
    P.AWAITING_APPROVAL: {P.PLANNING},
    P.BUDGET_EXHAUSTED: {P.PLANNING, P.RUNNING, P.INTEGRATING, P.PAUSED},
    P.NEEDS_ATTENTION: {P.RUNNING, P.PAUSED, P.INTEGRATING},  # ... its folder unwritten
}


def test_derived_sets_equal_what_the_code_used_before() -> None:
    assert PROJECT_FROM == _PROJECT_FROM_BEFORE
    assert lifecycle.HELD_STATUSES == ["in_progress", "needs_input", "review"]
    assert set(lifecycle.LIVE_TASKS) == {T.PENDING, T.IN_PROGRESS, T.REVIEW, T.NEEDS_INPUT}
    assert lifecycle.ENDED == (P.FAILED, P.BUDGET_EXHAUSTED, P.NEEDS_ATTENTION)
    assert lifecycle.IN_FLIGHT == (P.PENDING, P.PLANNING, P.RUNNING, P.INTEGRATING)
    assert set(lifecycle.TASKS_RUN) == {P.RUNNING, P.PAUSED}
    assert set(lifecycle.TASKS_START) == {P.RUNNING}
    assert set(lifecycle.PLAN_WAITS) == {P.AWAITING_APPROVAL}
    assert set(lifecycle.NOT_STARTED) == {T.PENDING, T.BLOCKED}
    assert lifecycle.PROJECT_EXPIRIES == ((P.PLANNING, P.PENDING),
                                          (P.INTEGRATING, P.INTEGRATING))
    assert lifecycle.sources(PROJECT_MOVES, P.PLANNING, By.CLAIM) == {P.PENDING}
    assert lifecycle.sources(PROJECT_MOVES, P.INTEGRATING, By.CLAIM) == {P.INTEGRATING}
    assert (START.to, START.allowed) == (T.IN_PROGRESS, {T.PENDING})
    cancel_to, cancel_from = CANCEL_TASKS
    assert (cancel_to, cancel_from) == (T.CANCELLED, {T.PENDING, T.BLOCKED})
    assert (RELEASE.to, RELEASE.allowed) == (T.PENDING, {T.BLOCKED})
    assert (REVIVE.to, REVIVE.allowed) == (T.PENDING, {T.FAILED})


def test_the_old_names_still_import_from_constants() -> None:
    from orchestrator.domain import constants

    assert constants.TERMINAL_PROJECT_STATUSES is lifecycle.TERMINAL_PROJECT_STATUSES
    assert constants.HELD_STATUSES is lifecycle.HELD_STATUSES
    assert constants.ProjectStatus is ProjectStatus and constants.TaskStatus is TaskStatus


def test_an_illegal_move_raises() -> None:
    lifecycle.require(PROJECT_MOVES, P.RUNNING, P.PAUSED)
    with pytest.raises(IllegalMove, match="completed -> running is not a legal move of a "
                                          "project"):
        lifecycle.require(PROJECT_MOVES, P.COMPLETED, P.RUNNING)
    with pytest.raises(IllegalMove, match="blocked -> in_progress"):
        lifecycle.require(TASK_MOVES, T.BLOCKED, T.IN_PROGRESS)
    with pytest.raises(IllegalMove, match="no legal move made by claim leads to running"):
        lifecycle.require_into(PROJECT_MOVES, P.RUNNING, By.CLAIM)


class _Untouchable:
    """A database that fails the test when anything uses it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the database was touched ({name}) before the move was checked")


@pytest.mark.parametrize("move", [
    lambda s: s.operator_move("p", P.PAUSED, P.COMPLETED, "pause a completed project"),
    lambda s: s.operator_move("p", P.RUNNING, P.CANCELLED, "resume a cancelled project"),
    lambda s: s.decide_plan("p", P.PAUSED, "approve into a pause"),
    lambda s: s.claim_project("p", P.RUNNING, datetime.now(UTC)),
    lambda s: s.move_claimed(ProjectClaim("p", P.PLANNING, 1), P.COMPLETED),
    lambda s: s.move_claimed(ProjectClaim("p", P.INTEGRATING, 1), P.RUNNING),
    lambda s: s.hold_as(Claim("p", "t", 1), T.COMPLETED),
    lambda s: s.hold_as(Claim("p", "t", 1), T.BLOCKED),
])
def test_the_scheduler_refuses_an_illegal_move_before_touching_the_database(
        move: Callable[[Scheduler], object]) -> None:
    store = cast(Store, type("FakeStore", (), {"db": _Untouchable()})())
    with pytest.raises(IllegalMove):
        move(Scheduler(store))


# The SQL ------------------------------------------------------------------------------------

_TABLES = {"projects": ProjectStatus, "tasks": TaskStatus, "questions": QuestionStatus}
_ALIAS = re.compile(r"\b(projects|tasks|questions)\s+(?:AS\s+)?([a-z])\b(?!\.)")
_GUARD = re.compile(r"(?:\b([a-z])\.)?\bstatus\s*(=|<>|!=)\s*'(\w+)'")
_SET = re.compile(r"\bSET\s+status\s*=\s*'(\w+)'")
_MAIN = re.compile(r"^\s*(?:WITH\b.*?\)\s*)?(?:UPDATE|INSERT INTO|SELECT\b.*?\bFROM)\s+(\w+)",
                   re.DOTALL)


def _statements() -> dict[str, str]:
    """The named queries, without their comments."""
    return {name: "\n".join(line.split("--", 1)[0] for line in body.splitlines())
            for name, body in queries().items()}


def _literal_guards() -> list[tuple[str, str, str]]:
    """(query, table, status) of every status literal a query compares with."""
    found = []
    for name, sql in _statements().items():
        aliases = {alias: table for table, alias in _ALIAS.findall(sql)}
        main = _MAIN.match(sql)
        for alias, _op, value in _GUARD.findall(_SET.sub("SET", sql)):  # not what it sets
            table = aliases[alias] if alias else (main.group(1) if main else "?")
            found.append((name, table, value))
    return found


def _held_and_answered_out(status: TaskStatus) -> bool:
    """A task waiting for a person's answer: an attempt holds it, and the answer moves it on."""
    return status in lifecycle.HELD and any(
        m.source is status and m.by is By.HOLD and m.target is T.IN_PROGRESS
        for m in TASK_MOVES)


# Every literal status a query compares with, and the rule of the table it stands for.
_EXPECTED: dict[tuple[str, str, str], Callable[[], bool]] = {
    ("answer_question", "tasks", "needs_input"):
        lambda: _held_and_answered_out(T.NEEDS_INPUT),
    ("open_questions", "tasks", "needs_input"): lambda: _held_and_answered_out(T.NEEDS_INPUT),
    ("answer_question", "questions", "open"):
        lambda: lifecycle.is_legal(QUESTION_MOVES, Q.OPEN, Q.ANSWERED),
    ("expire_question", "questions", "open"):
        lambda: lifecycle.is_legal(QUESTION_MOVES, Q.OPEN, Q.EXPIRED),
    ("open_questions", "questions", "open"): lambda: Q.OPEN in lifecycle.QUESTION_BIRTH,
    # Open questions past their time: the reconciler expires them (open -> expired).
    ("due_questions", "questions", "open"):
        lambda: lifecycle.is_legal(QUESTION_MOVES, Q.OPEN, Q.EXPIRED),
}


def test_every_status_literal_in_a_guard_is_a_status_the_table_knows() -> None:
    found = _literal_guards()
    assert found, "the parser found no guard at all"
    for query, table, value in found:
        assert table in _TABLES, f"{query}: a status guard on an unknown table {table}"
        assert value in {s.value for s in _TABLES[table]}, f"{query}: {value!r} is no status"
        rule = _EXPECTED.get((query, table, value))
        assert rule is not None, (f"{query} compares {table}.status with {value!r}: bind it "
                                  "from the lifecycle table, or say here which rule it is")
        assert rule(), f"{query}: {table}.status = {value!r} is not what the table says"
    assert set(_EXPECTED) == set(found)  # no stale expectation


def test_a_status_is_set_from_a_literal_only_as_a_legal_move() -> None:
    """Projects and tasks are moved only by bound statuses (which the scheduler takes from the
    table); a question's literal move must be in the table, from its own guard."""
    for name, sql in _statements().items():
        for value in _SET.findall(sql):
            main = _MAIN.match(sql)
            assert main is not None and main.group(1) == "questions", (
                f"{name} sets a {main.group(1) if main else '?'} status from a literal")
            guards = [v for q, table, v in _literal_guards() if q == name and table ==
                      "questions"]
            assert guards, f"{name} sets {value!r} without a guard"
            for source in guards:
                assert lifecycle.is_legal(QUESTION_MOVES, Q(source), Q(value)), (name, source)
    assert "'open'" in queries()["insert_question"]  # born open
    assert Q.OPEN in lifecycle.QUESTION_BIRTH


def test_the_parser_sees_a_literal_it_must_refuse() -> None:
    """The checks above can fail: a literal guard no rule covers is found."""
    sql = "UPDATE tasks SET status = :to_status WHERE id = :id AND status = 'pending'"
    assert _GUARD.findall(sql) == [("", "=", "pending")]
    main = _MAIN.match(sql)
    assert main is not None and main.group(1) == "tasks"
    assert ("start_task", "tasks", "pending") not in _EXPECTED
