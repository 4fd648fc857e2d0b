"""Durable agent work (issue 18) on real worker processes: a conversation survives the process
that held it (its journaled turns are replayed, not paid for again), a question parks its task
without holding a worker thread, and reviews run on the reviewer's own queue.

Each case runs real `celery worker` processes from the Procfile's own command lines (the chaos
fleet), a private Redis and PostgreSQL, and the strict local Messages API server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg

from orchestrator.domain.constants import ORCHESTRATOR_QUEUE
from tests.fake_anthropic import task_title
from tests.integration.test_chaos import HOST, Chaos, chaos  # noqa: F401  (the fixture)
from tests.services import wait_until

PAGE = {"request": "A landing page", "tasks": [
    {"title": "Landing page", "agent_type": "frontend_developer"}]}


def rows(c: Chaos, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(c.env["AGENCY_DATABASE_URL"], autocommit=True) as conn:
        return list(conn.execute(sql, args).fetchall())


def journal(c: Chaos, conv: str) -> list[tuple[int, str, int | None]]:
    """(seq, kind, attempt) of one conversation's journal rows, in order."""
    return [(r[0], r[1], r[2]) for r in rows(
        c, "SELECT seq, kind, attempt FROM journal WHERE conv = %s ORDER BY seq", conv)]


def turns(c: Chaos, conv: str) -> int:
    return sum(1 for _, kind, _ in journal(c, conv) if kind == "turn")


def ledger(c: Chaos, task_id: str) -> dict[str, int]:
    """Answered model calls of one task, by role."""
    return {r[0]: int(r[1]) for r in rows(
        c, "SELECT role, count(*) FROM usage WHERE task_id = %s AND outcome = 'answered' "
        "GROUP BY role", task_id)}


def calls(c: Chaos, project_id: str) -> dict[str, int]:
    """Answered model calls of one project, by role (agent, review, integrate, ...)."""
    return {r[0]: int(r[1]) for r in rows(
        c, "SELECT role, count(*) FROM usage WHERE project_id = %s AND outcome = 'answered' "
        "GROUP BY role", project_id)}


def agent_requests(c: Chaos, title: str, since: int) -> list[dict[str, Any]]:
    """The agent turns of task `title` the model received after request number `since`
    (reviews and integration excluded)."""
    return [r["body"] for r in c.fake.requests[since:]
            if task_title(r["body"]) == title and schema(r["body"]) != "Verdict"]


def schema(body: dict[str, Any]) -> str:
    fmt = (body.get("output_config") or {}).get("format") or {}
    return str((fmt.get("schema") or {}).get("title", ""))


def agent_conv(task_id: str) -> str:
    return f"t/{task_id}/0/agent"


def baseline(c: Chaos, plan: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An undisturbed run of `plan`: its project id and final status."""
    project_id = c.submit(plan)
    return project_id, c.done(project_id)


def start(c: Chaos, node: str, queue: str) -> None:
    """Start `queue`'s worker again as `node` (after a SIGKILL) and wait until it answers."""
    c.wait_for_workers({c.fleet.start(queue, node)})


def total(counts: dict[str, int]) -> int:
    return sum(counts.values())



def test_a_worker_killed_mid_conversation_replays_its_answered_turns(
        chaos: Callable[..., Chaos]) -> None:  # noqa: F811
    c = chaos()
    c.up(ORCHESTRATOR_QUEUE, "frontend_developer", "qa_engineer")
    calm_id, calm = baseline(c, PAGE)
    calm_task = calm["tasks"][0]
    calm_turns = turns(c, agent_conv(calm_task["id"]))
    assert calm_turns >= 3, journal(c, agent_conv(calm_task["id"]))  # room to kill after two
    since = len(c.fake.requests)
    c.fake.faults.latency = 1.5  # each turn is in flight long enough to be killed in
    project_id = c.submit(PAGE)
    # From the store itself, not `agency status` (a CLI start per poll on a loaded machine
    # can miss a task that is in progress for only a few seconds).
    wait_until(lambda: bool(rows(c, "SELECT 1 FROM tasks WHERE project_id = %s AND idx = 0 "
                                    "AND status = 'in_progress'", project_id)),
               "task 0 in progress", 90, every=0.05)
    ((task_id,),) = rows(c, "SELECT id FROM tasks WHERE project_id = %s AND idx = 0",
                         project_id)
    conv = agent_conv(task_id)
    wait_until(lambda: turns(c, conv) >= 2, "two answered turns journaled", 60, every=0.05)
    c.fleet.kill("frontend_developer")
    before = journal(c, conv)
    assert sum(kind == "turn" for _, kind, _ in before) == 2, before  # killed mid third turn
    start(c, "frontend_developer", "frontend_developer")
    c.fake.faults.latency = 0.0
    data = c.done(project_id)
    done = data["tasks"][0]
    assert done["attempts"] == 2, done
    # At most the call in flight at the kill is paid twice: the task's ledger against the
    # undisturbed run of the same plan.
    mine, theirs = ledger(c, done["id"]), ledger(c, calm_task["id"])
    assert mine["agent"] <= theirs["agent"] + 1, (mine, theirs)
    assert total(mine) <= total(theirs) + 1, (mine, theirs)
    assert total(calls(c, project_id)) <= total(calls(c, calm_id)) + 1
    # Replayed, not asked again: the model saw the conversation's first turn once, and
    # the journal keeps the first attempt's turns as they were, under their first attempt.
    sent = agent_requests(c, "Landing page", since)
    assert len(sent) <= calm_turns + 1, len(sent)
    assert c.fake.task_calls() == {"Landing page": 2}  # one first turn per project
    after = journal(c, conv)
    assert after[:len(before)] == before, (before, after)
    assert sum(kind == "turn" for _, kind, _ in after) == calm_turns, after
    assert {a for _, kind, a in after[len(before):] if kind == "turn"} == {2}, after


def test_a_reviewer_killed_mid_review_leaves_the_agents_work_alone(
        chaos: Callable[..., Chaos]) -> None:  # noqa: F811
    c = chaos()
    c.up(ORCHESTRATOR_QUEUE, "frontend_developer", "qa_engineer")
    calm_id, calm = baseline(c, PAGE)
    theirs = ledger(c, calm["tasks"][0]["id"])
    since = len(c.fake.requests)
    c.fake.faults.latency = 0.3
    project_id = c.submit(PAGE)

    def reviewing() -> bool:
        return any(schema(r["body"]) == "Verdict" for r in c.fake.requests[since:])
    c.fake.faults.slow_schemas = {"Verdict": 15.0}  # killed long before it answers
    wait_until(reviewing, "the review at the model", 60, every=0.05)
    task = c.status(project_id)["tasks"][0]  # type: ignore[index]
    assert task["status"] == "review", task
    c.fleet.kill("qa_engineer")
    assert turns(c, f"t/{task['id']}/0/review/1") == 0  # the review was in flight
    assert turns(c, agent_conv(task["id"])) == turns(c, agent_conv(calm["tasks"][0]["id"]))
    start(c, "qa_engineer", "qa_engineer")
    c.fake.faults.slow_schemas = {}
    c.fake.faults.latency = 0.0
    data = c.done(project_id)
    done = data["tasks"][0]
    mine = ledger(c, done["id"])
    # The agent's work was not done again (it parked before the review): only the review's
    # call in flight may be repeated.
    assert mine["agent"] == theirs["agent"], (mine, theirs)
    assert theirs["review"] <= mine["review"] <= theirs["review"] + 1, (mine, theirs)
    assert total(calls(c, project_id)) <= total(calls(c, calm_id)) + 1
    assert [r["verdict"] for r in done["reviews"]] == ["pass"], done["reviews"]
    assert done["reviews"][0]["worker"].startswith("qa_engineer@")
    assert c.fake.task_calls() == {"Landing page": 2}


def test_the_orchestrator_killed_mid_integration(chaos: Callable[..., Chaos]) -> None:  # noqa: F811
    c = chaos()
    c.up(ORCHESTRATOR_QUEUE, "frontend_developer", "qa_engineer")
    calm_id, _ = baseline(c, PAGE)
    theirs = calls(c, calm_id)
    calm_turns = turns(c, f"p/{calm_id}/0/integrate")
    assert calm_turns >= 2  # a tool loop: kill after its first turn
    assert "Deliverable" in {schema(r["body"]) for r in c.fake.requests}  # integration's
    c.fake.faults.slow_schemas = {"Deliverable": 1.5}  # only integration is slow
    project_id = c.submit(PAGE)
    conv = f"p/{project_id}/0/integrate"
    wait_until(lambda: turns(c, conv) >= 1, "integration's first turn journaled", 60,
               every=0.05)
    c.fleet.kill(ORCHESTRATOR_QUEUE)
    assert turns(c, conv) == 1  # killed mid second turn
    start(c, ORCHESTRATOR_QUEUE, ORCHESTRATOR_QUEUE)
    c.fake.faults.slow_schemas = {}
    data = c.done(project_id)
    mine = calls(c, project_id)
    assert theirs["integrate"] <= mine["integrate"] <= theirs["integrate"] + 1, (mine, theirs)
    assert total(mine) <= total(theirs) + 1, (mine, theirs)
    assert turns(c, conv) == calm_turns
    assert data["error"] is None


TONE = ("Which tone should the copy take?", "friendly and plain")
TWO_COPIES = {"request": "Two pieces of copy", "tasks": [
    {"title": "Tone of voice", "agent_type": "content_writer"},
    {"title": "Opening hours copy", "agent_type": "content_writer"}]}
LATER = {"request": "One more piece", "tasks": [
    {"title": "Menu copy", "agent_type": "content_writer"}]}


def questions(c: Chaos, project_id: str) -> list[dict[str, Any]]:
    listed = c.agency("questions", project_id[:8], "--json")
    assert listed.returncode == 0, listed.stderr
    found: list[dict[str, Any]] = json.loads(listed.stdout)
    return found


def tool_results(c: Chaos, title: str) -> list[str]:
    """What the agent of `title` was told in tool results, over every turn it sent."""
    return [str(b.get("content")) for r in c.fake.requests if task_title(r["body"]) == title
            for m in r["body"].get("messages", []) if isinstance(m.get("content"), list)
            for b in m["content"] if b.get("type") == "tool_result"]


def single_threaded(c: Chaos, queue: str) -> None:
    """The queue's worker runs one task at a time (`-c 1`)."""
    c.fleet.commands[queue] += " -c 1"


def test_a_waiting_question_holds_no_worker_thread(chaos: Callable[..., Chaos]) -> None:  # noqa: F811
    c = chaos()
    single_threaded(c, "content_writer")
    c.fake.faults.questions = {"Tone of voice": TONE}
    c.up(ORCHESTRATOR_QUEUE, "content_writer", "qa_engineer")
    project_id = c.submit(TWO_COPIES)
    wait_until(lambda: bool(questions(c, project_id)), "the question asked", 60, every=0.2)
    [question] = questions(c, project_id)
    asking = c.status(project_id)["tasks"][0]  # type: ignore[index]
    assert question["task_id"] == asking["id"] and asking["status"] == "needs_input", asking
    assert asking["waiting_for"] == "an answer (agency answer)", asking
    # The one thread of the queue is free while the question waits: the other task of the
    # project, and a task of a project submitted after the question, run to completion.
    data = c.wait(project_id, lambda d: d["tasks"][1]["status"] == "completed")
    assert data["tasks"][0]["status"] == "needs_input", data["tasks"][0]
    later = c.done(c.submit(LATER))
    assert later["tasks"][0]["worker"] == asking["worker"]  # the same, single-threaded, worker
    assert questions(c, project_id) == [question]  # still open meanwhile
    assert c.status(project_id)["status"] == "running"  # type: ignore[index]
    answered = c.agency("answer", asking["id"][:8], "Warm, short sentences")
    assert answered.returncode == 0, answered.stderr
    data = c.done(project_id)
    assert questions(c, project_id) == []
    assert any("Warm, short sentences" in r for r in tool_results(c, "Tone of voice"))
    # Resumed by replay: the model was asked the task's first turn (the one that asked) once.
    assert c.fake.task_calls()["Tone of voice"] == 1, c.fake.task_calls()
    assert data["tasks"][0]["attempts"] == 1, data["tasks"][0]


def test_an_unanswered_question_expires_and_the_task_goes_on_its_assumption(
        chaos: Callable[..., Chaos]) -> None:  # noqa: F811
    c = chaos(AGENCY_QUESTION_TIMEOUT="2")
    single_threaded(c, "content_writer")
    c.fake.faults.questions = {"Tone of voice": TONE}
    c.up(ORCHESTRATOR_QUEUE, "content_writer", "qa_engineer")
    project_id = c.submit({"request": "Copy", "tasks": TWO_COPIES["tasks"][:1]})
    wait_until(lambda: bool(questions(c, project_id)), "the question asked", 60, every=0.2)
    data = c.done(project_id, timeout=60)
    [(status, answer, asked, ended)] = rows(
        c, "SELECT status, answer, asked_at, answered_at FROM questions WHERE project_id = %s",
        project_id)
    assert status == "expired" and answer is None, (status, answer)
    assert (ended - asked).total_seconds() >= 2  # not before its time
    told = tool_results(c, "Tone of voice")
    assert any("No answer came within 2 s" in r and TONE[1] in r for r in told), told
    assert c.fake.task_calls()["Tone of voice"] == 1
    assert data["tasks"][0]["status"] == "completed"


def test_work_products_are_reviewed_on_the_qa_engineer_worker(
        chaos: Callable[..., Chaos]) -> None:  # noqa: F811
    c = chaos()
    c.up(ORCHESTRATOR_QUEUE, "frontend_developer", "marketing")
    reviewer = c.fleet.start("qa_engineer", "qa-reviewer")
    c.wait_for_workers({reviewer})
    plan = {"request": "Research, then a page", "tasks": [
        {"title": "Market research", "agent_type": "marketing"},
        {"title": "Landing page", "agent_type": "frontend_developer", "dependencies": [0]}]}
    data = c.done(c.submit(plan))
    research, page = data["tasks"]
    assert [r["worker"] for r in page["reviews"]] == [reviewer], page["reviews"]
    assert [r["reviewer"] for r in page["reviews"]] == ["qa_engineer"]
    assert [r["worker"] for r in research["reviews"]] == [f"orchestrator@{HOST}"], research
    assert research["worker"] == f"marketing@{HOST}" and page["worker"] != reviewer
