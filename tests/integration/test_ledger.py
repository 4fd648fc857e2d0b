"""Every model call is in the ledger (answered or lost), `agency calls` shows it, and a model
without a price is refused at every entry point before any call."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.agent.runtime import Runtime
from orchestrator.domain import dag
from orchestrator.domain.constants import CallOutcome, ProjectStatus, Role
from orchestrator.domain.models import Tokens
from orchestrator.domain.pricing import cost_usd
from orchestrator.domain.settings import Settings
from orchestrator.llm.base import CompletionRequest, CompletionResponse, Message, TextBlock
from tests.conftest import REPO, agency_env, make_plan
from tests.fake_anthropic import FakeAnthropic, Faults
from tests.integration.test_embedded_cli import agency, project_id_of, status

UNPRICED = "claude-unknown-9"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(Settings(database_url=f"sqlite:///{tmp_path / 'agency.db'}"))
    yield runtime
    runtime.store.db.close()


def _task_claim(rt: Runtime) -> tuple[str, str]:
    rt.store.insert_project("p1", "Build", None, None, "/tmp/out")
    claim = rt.scheduler.claim_project("p1", ProjectStatus.PLANNING, rt.leases.until())
    assert claim is not None
    plan = make_plan({}, 1)
    graph = dag.validate_plan(plan)
    ids = rt.scheduler.save_plan(claim, plan, graph, dag.schedule(graph), "website", 1000)
    rt.scheduler.move_claimed(claim, ProjectStatus.RUNNING)
    return "p1", ids[0]


def test_the_meter_writes_an_answered_call_and_a_lost_one(rt: Runtime) -> None:
    pid, task_id = _task_claim(rt)
    claim = rt.scheduler.start_task(task_id, "w", rt.leases.until())
    assert claim is not None
    request = CompletionRequest(role=Role.AGENT, model="claude-haiku-5-5", system=[],
                                messages=[Message(role="user", content=[TextBlock(text="hi")])])
    tokens = Tokens(input=1200, output=800, thinking=300, cache_read=5000, cache_write=2000,
                    cache_write_1h=2000)
    response = CompletionResponse(content=[TextBlock(text="ok")], model="claude-haiku-5-5",
                                  tokens=tokens, latency_ms=900, stop_reason="end_turn",
                                  request_id="req_011", message_id="msg_011")
    meter = rt.meter(pid, claim)
    meter.record(request, response, 1)
    meter.lost(request, 2, "read timeout", "req_012")
    answered, lost = rt.store.calls(pid)
    assert answered.task_id == task_id and answered.task_index == 0
    assert (answered.entry.request_id, answered.entry.message_id, answered.entry.stop_reason,
            answered.entry.outcome) == ("req_011", "msg_011", "end_turn", CallOutcome.ANSWERED)
    assert answered.entry.tokens == tokens and answered.entry.latency_ms == 900
    assert answered.entry.cost_usd == pytest.approx(
        cost_usd(rt.settings.prices, "claude-haiku-5-5", tokens))
    assert (lost.entry.outcome, lost.entry.request_id, lost.entry.attempt) == (
        CallOutcome.LOST, "req_012", 2)
    assert lost.entry.tokens == Tokens() and lost.entry.cost_usd == 0
    assert lost.entry.model == "claude-haiku-5-5" and lost.entry.stop_reason is None
    notes = [e["detail"] for e in rt.store.events(pid) if e["kind"] == "lost_call"]
    assert notes == ["model call attempt 2 gave no answer (read timeout); it may have been "
                     "billed (request req_012)"]
    assert rt.store.tasks(pid)[0].tokens == tokens


def test_agency_calls_lists_the_ledger_in_order(tmp_path: Path) -> None:
    result = agency(tmp_path, "run", "Build a website for a bakery")
    assert result.returncode == 0, result.stderr
    project_id = project_id_of(result.stdout)
    listed = agency(tmp_path, "calls", project_id[:8], "--json")
    assert listed.returncode == 0, listed.stderr
    calls = json.loads(listed.stdout)
    data = status(tmp_path, project_id)
    assert [c["role"] for c in calls[:2]] == ["analyze", "decompose"]
    assert calls[-1]["role"] == "integrate" and calls[-1]["task"] is None
    assert [c["at"] for c in calls] == sorted(c["at"] for c in calls)
    by_task = {t["index"]: t for t in data["tasks"]}
    for call in calls:
        assert call["outcome"] == "answered" and call["model"] == "offline"
        assert call["stop_reason"] in ("end_turn", "tool_use")
        if call["task"] is not None:
            assert call["title"] == by_task[call["task"]]["title"]
    for key in ("input", "output", "cache_read", "cache_write", "cache_write_1h", "thinking"):
        assert sum(c["tokens"][key] for c in calls) == data["tokens"][key], key
    assert {c["task"] for c in calls} >= set(by_task)
    table = agency(tmp_path, "calls", project_id, COLUMNS="250")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == f"Project {project_id[:8]}: {len(calls)} model calls, $0.0000"
    assert lines[1].split()[:6] == ["at", "task", "role", "model", "stop", "outcome"]
    assert "#0 " in table.stdout and len(lines) == len(calls) + 2


def test_calls_of_an_unknown_project_is_one_line(tmp_path: Path) -> None:
    result = agency(tmp_path, "calls", "nope")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == ["agency: error: no project with id 'nope'"]


def test_a_timed_out_call_is_a_lost_row_of_the_ledger(tmp_path: Path) -> None:
    """The server generates (and would bill) an answer the client gave up waiting for."""
    faults = Faults(slow_seconds=4.0, task_modes={"Frontend": deque(["slow"])})
    with FakeAnthropic(api_key="sk-test-fake", faults=faults) as fake:
        env = {"AGENCY_LLM": "anthropic", "ANTHROPIC_API_KEY": "sk-test-fake",
               "ANTHROPIC_BASE_URL": fake.url, "AGENCY_MODEL_BACKOFF": "0.05",
               "AGENCY_ANTHROPIC_TIMEOUT": "2"}
        result = agency(tmp_path, "run", "Build a website for a bakery", **env)
        assert result.returncode == 0, result.stderr
        project_id = project_id_of(result.stdout)
        listed = agency(tmp_path, "calls", project_id, "--json", **env)
        assert listed.returncode == 0, listed.stderr
        issued = {r["request_id"] for r in fake.requests}
    calls = json.loads(listed.stdout)
    assert len(calls) == len(issued)  # every request the server took is one row
    lost = [c for c in calls if c["outcome"] == "lost"]
    assert [c["title"] for c in lost] == ["Frontend implementation"], lost
    # No answer, no headers: the request id of a call that timed out is unknown.
    assert lost[0]["request_id"] is None and lost[0]["message_id"] is None
    assert lost[0]["cost_usd"] == 0 and set(lost[0]["tokens"].values()) == {0}
    assert lost[0]["stop_reason"] is None and lost[0]["role"] == "agent"
    log = json.loads(agency(tmp_path, "log", project_id, "--json").stdout)
    assert [e["detail"] for e in log if e["kind"] == "lost_call"] == [
        "model call attempt 1 gave no answer (timeout); it may have been billed (request "
        "unknown)"]
    answered = [c for c in calls if c["outcome"] == "answered"]
    # The server's id of the timed-out request is the one no answered row names.
    assert len({c["request_id"] for c in answered} & issued) == len(issued) - 1
    assert all(c["message_id"] for c in answered)


def _refusal(stderr: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0] == (f"agency: error: AGENCY_AGENT_MODEL: model '{UNPRICED}' has no price; "
                        "use a model the price table knows (docs/claude.md) or give its price "
                        "in AGENCY_PRICES")


def test_an_unpriced_model_is_refused_before_any_call(tmp_path: Path) -> None:
    with FakeAnthropic() as fake:
        result = agency(tmp_path, "run", "Build a website for a bakery",
                        AGENCY_LLM="anthropic", ANTHROPIC_API_KEY="sk-test-fake",
                        ANTHROPIC_BASE_URL=fake.url, AGENCY_AGENT_MODEL=UNPRICED)
        assert result.returncode == 2
        _refusal(result.stderr)
        assert fake.requests == []
    assert not (tmp_path / "out").exists()


def test_a_price_in_agency_prices_lets_the_model_start(tmp_path: Path) -> None:
    result = agency(tmp_path, "list", "--json", AGENCY_AGENT_MODEL=UNPRICED,
                    AGENCY_PRICES=json.dumps({UNPRICED: [1, 5, 0.1, 1.25]}))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "workers", "-Q", "frontend_developer"],
    [sys.executable, "-m", "workers", "fleet"],
    [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "frontend_developer"],
], ids=["worker", "fleet", "celery"])
def test_every_worker_entry_point_refuses_an_unpriced_model(tmp_path: Path,
                                                            command: list[str]) -> None:
    env = agency_env(tmp_path, AGENCY_AGENT_MODEL=UNPRICED,
                     AGENCY_BROKER_URL="redis://127.0.0.1:9/0")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    _refusal(result.stderr)
