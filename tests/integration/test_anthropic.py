"""The Anthropic path through the real SDK, against a local Messages API server."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.agent.prompts import handbook
from orchestrator.domain.catalog import DEFAULT_PRICES
from orchestrator.domain.constants import Role
from orchestrator.domain.errors import InvalidAnswer, ModelRefused, TransientModelError
from orchestrator.domain.models import Analysis, Tokens
from orchestrator.domain.pricing import cost_usd
from orchestrator.domain.prompts import ORCHESTRATOR_SYSTEM, analysis_prompt
from orchestrator.domain.settings import Settings
from orchestrator.llm.anthropic import AnthropicProvider
from orchestrator.llm.base import CompletionRequest, CompletionResponse, TextBlock
from orchestrator.llm.structured import Conversation, RetryPolicy, ask_structured
from tests.fake_anthropic import FakeAnthropic, Faults
from tests.integration.test_embedded_cli import agency, assert_exact_order, project_id_of, status

KEY = "sk-test-SENTINEL-7f3a"


class Meter:
    def __init__(self) -> None:
        self.recorded: list[CompletionResponse] = []
        self.retries: list[tuple[int, str, float]] = []
        self.lost_calls: list[tuple[int, str]] = []

    def admit(self) -> None:
        pass

    def record(self, request: CompletionRequest, response: CompletionResponse,
               attempt: int, turn: object = None) -> None:
        self.recorded.append(response)

    def lost(self, request: CompletionRequest, attempt: int, reason: str,
             request_id: str | None) -> None:
        self.lost_calls.append((attempt, reason))

    def retrying(self, attempt: int, reason: str, delay: float) -> None:
        self.retries.append((attempt, reason, delay))


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=KEY) as server:
        yield server


def _provider(fake: FakeAnthropic, timeout: float = 5.0, key: str = KEY) -> AnthropicProvider:
    settings = Settings(ANTHROPIC_API_KEY=key, ANTHROPIC_BASE_URL=fake.url,
                        anthropic_timeout=timeout)
    return AnthropicProvider(settings)


def _analyze(fake: FakeAnthropic, meter: Meter, **kw: Any) -> Analysis:
    return ask_structured(
        _provider(fake, **kw), role=Role.ANALYZE, model="claude-sonnet-4-6",
        system=ORCHESTRATOR_SYSTEM, prompt=analysis_prompt("Build a website for a bakery"),
        schema=Analysis, schema_name="analysis", meter=meter,
        policy=RetryPolicy(attempts=3, backoff=0.01, max_backoff=1.0))


def _ask(fake: FakeAnthropic, meter: Meter, system: list[TextBlock], model: str) -> Analysis:
    return Conversation(
        _provider(fake), role=Role.ANALYZE, model=model, system=system,
        prompt=[TextBlock(text=analysis_prompt("Build a website for a bakery"))],
        schema=Analysis, schema_name="analysis", meter=meter).answer()


def test_structured_output_and_a_cached_prefix(fake: FakeAnthropic) -> None:
    meter = Meter()
    system = [TextBlock(text=handbook(), cache=True), TextBlock(text=ORCHESTRATOR_SYSTEM)]
    assert _ask(fake, meter, system, "claude-haiku-4-5").project_type.value == "website"
    assert _ask(fake, meter, system, "claude-haiku-4-5").complexity.value == "simple"
    body = fake.requests[0]["body"]
    assert body["output_config"]["format"]["type"] == "json_schema"
    assert body["output_config"]["format"]["schema"]["title"] == "Analysis"
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in body["system"][1]
    assert "temperature" not in body and body["model"] == "claude-haiku-4-5"
    first, second = (r.tokens for r in meter.recorded)
    assert first.cache_write >= 4096 and first.cache_read == 0  # Haiku 4.5's minimum
    assert second.cache_read == first.cache_write and second.cache_write == 0
    assert [r.tokens.input for r in meter.recorded] == [u["input_tokens"] for u in fake.usage]


def test_a_short_prefix_is_not_cached_even_when_marked(fake: FakeAnthropic) -> None:
    """The old 150-token agent prompts: the real API caches nothing below the minimum."""
    meter = Meter()
    system = [TextBlock(text=ORCHESTRATOR_SYSTEM, cache=True)]
    for _ in range(2):
        _ask(fake, meter, system, "claude-sonnet-4-6")
    assert all(r.tokens.cache_read == r.tokens.cache_write == 0 for r in meter.recorded)
    assert meter.recorded[1].tokens.input == meter.recorded[0].tokens.input > 0


def test_broken_json_is_repaired_with_the_error_shown(fake: FakeAnthropic) -> None:
    fake.script = deque(["broken_json", "ok"])
    meter = Meter()
    assert _analyze(fake, meter).project_type.value == "website"
    repair = fake.requests[1]["body"]["messages"]
    assert [m["role"] for m in repair] == ["user", "assistant", "user"]
    assert repair[1]["content"][0]["text"].startswith("Here is the JSON")
    assert "not valid" in repair[2]["content"][0]["text"]
    assert len(meter.recorded) == 2  # both calls are in the ledger


def test_schema_violation_after_every_repair_round_fails_clearly(fake: FakeAnthropic) -> None:
    fake.script = deque(["schema_violation"] * 3)
    with pytest.raises(InvalidAnswer, match="analysis was not valid after 3 attempts"):
        _analyze(fake, Meter())


def test_429_honours_retry_after(fake: FakeAnthropic) -> None:
    fake.faults.retry_after = 0.3
    fake.script = deque(["rate_limit", "ok"])
    meter = Meter()
    _analyze(fake, meter)
    assert len(meter.retries) == 1
    _, reason, delay = meter.retries[0]
    assert reason.startswith("HTTP 429: Number of requests exceeded") and delay == 0.3


@pytest.mark.parametrize(("mode", "status"), [("overloaded", 529), ("server_error", 500)])
def test_overloaded_and_server_errors_are_retried(fake: FakeAnthropic, mode: str,
                                                  status: int) -> None:
    fake.script = deque([mode, mode, "ok"])
    meter = Meter()
    assert _analyze(fake, meter).project_type.value == "website"
    assert [r[1].split(":")[0] for r in meter.retries] == [f"HTTP {status}"] * 2


def test_slow_answer_times_out_and_is_retried(fake: FakeAnthropic) -> None:
    fake.faults.slow_seconds = 1.5
    fake.script = deque(["slow", "ok"])
    meter = Meter()
    assert _analyze(fake, meter, timeout=0.5).project_type.value == "website"
    assert meter.retries[0][1] == "timeout"
    # The timed-out generation may have been billed: it is on record as a lost call.
    assert meter.lost_calls == [(1, "timeout")]


def test_persistent_outage_gives_up_with_a_transient_error(fake: FakeAnthropic) -> None:
    fake.script = deque(["overloaded"] * 3)
    with pytest.raises(TransientModelError, match="unavailable after 3 attempts: HTTP 529"):
        _analyze(fake, Meter())


def test_401_is_not_retried_and_carries_the_api_message(fake: FakeAnthropic) -> None:
    meter = Meter()
    with pytest.raises(ModelRefused, match="HTTP 401: invalid API key"):
        _analyze(fake, meter, key="sk-wrong")
    assert meter.retries == [] and len(fake.requests) == 1


def test_refusal_is_not_retried(fake: FakeAnthropic) -> None:
    fake.script = deque(["refusal"])
    with pytest.raises(ModelRefused, match="refused"):
        _analyze(fake, Meter())
    assert len(fake.requests) == 1


def _env(fake: FakeAnthropic, **extra: str) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.url,
            "AGENCY_MODEL_BACKOFF": "0.05", "AGENCY_ANTHROPIC_TIMEOUT": "5", **extra}


def test_project_through_anthropic_ledger_matches_server(fake: FakeAnthropic,
                                                         tmp_path: Path) -> None:
    result = agency(tmp_path, "run", "Build a website for a bakery", **_env(fake))
    assert result.returncode == 0, result.stderr
    assert "offline" not in result.stderr
    data = status(tmp_path, project_id_of(result.stdout), **_env(fake))
    assert data["status"] == "completed"
    server = fake.totals()
    tokens = {"input": server["input_tokens"], "output": server["output_tokens"],
              "cache_read": server["cache_read_input_tokens"],
              "cache_write": server["cache_creation_input_tokens"]}
    assert {k: data["tokens"][k] for k in tokens} == tokens
    assert data["tokens"]["cache_read"] > 0
    assert sum(t["tokens"]["input"] + t["tokens"]["output"] for t in data["tasks"]) < (
        tokens["input"] + tokens["output"])
    models = {r["body"]["model"] for r in fake.requests}
    assert models == {"claude-sonnet-5-5", "claude-haiku-5-5"}
    # Every answer the server gave is one ledger row, with its request and message ids, its
    # stop reason, and the published price of what the server said it used.
    listed = agency(tmp_path, "calls", data["id"], "--json", **_env(fake))
    assert listed.returncode == 0, listed.stderr
    calls = json.loads(listed.stdout)
    answered = {m["id"]: m for m in fake.messages}
    assert sorted(c["message_id"] for c in calls) == sorted(answered)
    issued = {r["request_id"] for r in fake.requests}
    assert all(c["request_id"] in issued for c in calls)
    assert len({c["request_id"] for c in calls}) == len(calls)
    published = 0.0
    for call in calls:
        message = answered[call["message_id"]]
        usage = message["usage"]
        assert call["stop_reason"] == message["stop_reason"] and call["outcome"] == "answered"
        assert call["model"] == message["model"]
        assert call["tokens"]["thinking"] == usage["output_tokens_details"]["thinking_tokens"]
        assert call["tokens"]["cache_write_1h"] == (
            usage["cache_creation"]["ephemeral_1h_input_tokens"])
        published += cost_usd(DEFAULT_PRICES, message["model"], Tokens(
            input=usage["input_tokens"], output=usage["output_tokens"],
            cache_read=usage["cache_read_input_tokens"],
            cache_write=usage["cache_creation_input_tokens"],
            cache_write_1h=usage["cache_creation"]["ephemeral_1h_input_tokens"]))
    assert data["tokens"]["thinking"] == sum(c["tokens"]["thinking"] for c in calls) > 0
    assert data["cost_usd"] == pytest.approx(published, abs=5e-7) and published > 0  # 6 places


def test_projects_complete_through_rate_limits_and_broken_json(tmp_path: Path) -> None:
    # Three invalid answers in a row fail a task for good: at 5% that is rare enough here.
    faults = Faults(rate_limit=0.1, overloaded=0.1, broken_json=0.05, retry_after=0.05)
    with FakeAnthropic(api_key=KEY, faults=faults, seed=42) as fake:
        for request in ("Build a website for a bakery", "Write a blog series about sourdough"):
            result = agency(tmp_path, "run", request, **_env(fake))
            assert result.returncode == 0, result.stderr
            data = status(tmp_path, project_id_of(result.stdout), **_env(fake))
            assert data["status"] == "completed"
        modes = fake.modes
    assert modes.count("rate_limit") + modes.count("overloaded") >= 0.1 * len(modes)
    assert modes.count("broken_json") >= 0.02 * len(modes)
    retried = [t for t in data["tasks"] if t["retries"]] + ([data] if data["retries"] else [])
    assert retried, "faults were injected, so some retries must be visible"


def test_budget_stops_the_project_and_resume_finishes_it(fake: FakeAnthropic,
                                                         tmp_path: Path) -> None:
    plan = {"request": "Six parallel pages", "tasks": [
        {"title": "Brief", "agent_type": "project_manager"},
        *({"title": f"Page {i}", "agent_type": "frontend_developer", "dependencies": [0]}
          for i in range(6)),
        {"title": "Check", "agent_type": "qa_engineer", "dependencies": list(range(1, 7))}]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    budget = 3000
    result = agency(tmp_path, "run", "--plan", str(path), "--budget", str(budget),
                    **_env(fake))
    assert result.returncode == 1
    assert "budget_exhausted" in result.stderr and "agency resume" in result.stderr
    project_id = project_id_of(result.stdout)
    data = status(tmp_path, project_id, **_env(fake))
    assert data["status"] == "budget_exhausted"
    assert any(t["status"] != "completed" for t in data["tasks"])
    calls = [sum(u.values()) for u in fake.usage]
    # AGENCY_EMBEDDED_CONCURRENCY's default: at most that many calls in flight
    workers = Settings.model_fields["embedded_concurrency"].default
    assert budget <= data["tokens_used"] <= budget + workers * max(calls)
    assert data["tokens_used"] == sum(data["tokens"].values())
    resumed = agency(tmp_path, "resume", project_id, "--budget", "1000000", **_env(fake))
    assert resumed.returncode == 0, resumed.stderr
    final = status(tmp_path, project_id, **_env(fake))
    assert final["status"] == "completed"
    assert all(t["status"] == "completed" for t in final["tasks"])
    refused = agency(tmp_path, "resume", project_id, **_env(fake))
    assert refused.returncode == 2 and "nothing to resume" in refused.stderr


def test_a_model_that_answers_garbage_fails_the_project_clearly(fake: FakeAnthropic,
                                                                 tmp_path: Path) -> None:
    fake.faults.broken_json = 1.0
    result = agency(tmp_path, "run", "Build a website for a bakery", **_env(fake))
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "failed" in line and "analysis was not valid after 3 attempts" in line
    data = status(tmp_path, project_id_of(result.stdout), **_env(fake))
    assert data["status"] == "failed" and data["tasks"] == []
    assert len(fake.requests) == 3  # one answer and two repair rounds, then it fails for good
    assert data["retries"] == []  # an invalid answer after repair is not retried


def test_anthropic_without_a_key_is_bad_input(tmp_path: Path) -> None:
    result = agency(tmp_path, "run", "Build a website", AGENCY_LLM="anthropic")
    assert result.returncode == 2
    assert result.stderr.strip() == "agency: error: AGENCY_LLM=anthropic needs ANTHROPIC_API_KEY"


def test_refused_task_needs_attention_and_retry_finishes_it(fake: FakeAnthropic,
                                                            tmp_path: Path) -> None:
    plan = {"request": "Two steps", "tasks": [
        {"title": "Research", "agent_type": "marketing"},
        {"title": "Write", "agent_type": "content_writer", "dependencies": [0]}]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    fake.faults.task_modes = {"Write": deque(["refusal"])}
    result = agency(tmp_path, "run", "--plan", str(path), **_env(fake))
    assert result.returncode == 1 and "refused" in result.stderr
    project_id = project_id_of(result.stdout)
    data = status(tmp_path, project_id, **_env(fake))
    assert data["status"] == "needs_attention"
    failed = data["tasks"][1]
    assert failed["status"] == "failed" and "refused" in failed["error"]
    assert f"agency retry {failed['id'][:8]}" in data["error"]
    research_calls = fake.task_calls()["Research"]
    retried = agency(tmp_path, "retry", failed["id"][:8], **_env(fake))
    assert retried.returncode == 0, retried.stderr
    final = status(tmp_path, project_id, **_env(fake))
    assert final["status"] == "completed" and final["error"] is None
    assert [t["attempts"] for t in final["tasks"]] == [1, 2]  # completed work never re-runs
    assert fake.task_calls()["Research"] == research_calls  # not asked again
    again = agency(tmp_path, "retry", failed["id"], **_env(fake))
    assert again.returncode == 2 and "only failed tasks are retried" in again.stderr


def test_no_task_waits_for_a_task_it_does_not_depend_on(fake: FakeAnthropic,
                                                         tmp_path: Path) -> None:
    """An "N" graph (not series-parallel): Checklist needs only Brief, not Slow research."""
    plan = {"request": "A page", "tasks": [
        {"title": "Slow research", "agent_type": "marketing"},
        {"title": "Brief", "agent_type": "project_manager"},
        {"title": "Page", "agent_type": "frontend_developer", "dependencies": [0, 1]},
        {"title": "Checklist", "agent_type": "qa_engineer", "dependencies": [1]}]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    fake.faults.slow_tasks = {"Slow research": 2.0}
    result = agency(tmp_path, "run", "--plan", str(path), **_env(fake))
    assert result.returncode == 0, result.stderr
    data = status(tmp_path, project_id_of(result.stdout), **_env(fake))
    slow, _, page, checklist = data["tasks"]
    from datetime import datetime

    def at(task: dict[str, Any], key: str) -> datetime:
        return datetime.fromisoformat(task[key])

    assert at(checklist, "finished_at") < at(slow, "finished_at")  # it did not wait
    assert at(page, "started_at") >= at(slow, "finished_at")  # and Page did
    assert_exact_order(data)


def test_no_database_connection_is_held_while_a_call_waits(tmp_path: Path, pg_url: str) -> None:
    """Eight agents on two PostgreSQL connections: all eight calls are in flight at once, which
    they could not be if any of them held a connection while it waited on the model. (Two,
    not one: the watching CLI and the reconciler share the pool, and on a loaded machine one
    connection queued a read past the pool's 5 s wait.)"""
    from bench import shapes

    plan = tmp_path / "fan.json"
    plan.write_text(json.dumps(shapes.plan("fan", [[] for _ in range(8)])))
    with FakeAnthropic(faults=Faults(latency=1.5)) as fake:
        done = agency(tmp_path, "run", "--plan", str(plan), **{
            "ANTHROPIC_API_KEY": fake.api_key, "ANTHROPIC_BASE_URL": fake.url,
            "AGENCY_DATABASE_URL": pg_url, "AGENCY_DB_POOL_SIZE": "2",
            "AGENCY_EMBEDDED_CONCURRENCY": "8", "AGENCY_REVIEWED_AGENTS": "none",
            "AGENCY_AGENT_MAX_TURNS": "1"})
        assert done.returncode == 0, done.stderr
        assert fake.peak_in_flight == 8
        assert len(fake.task_calls()) == 8


def test_an_unanswered_question_goes_on_with_its_assumption(fake: FakeAnthropic,
                                                            tmp_path: Path) -> None:
    fake.faults.questions = {"Sitemap": ("Which pages must the site have?",
                                         "home, menu and contact pages")}
    result = agency(tmp_path, "run", "Build a website for a bakery",
                    **_env(fake, AGENCY_QUESTION_TIMEOUT="1", AGENCY_REVIEWED_AGENTS="none"))
    assert result.returncode == 0, result.stderr
    project_id = project_id_of(result.stdout)
    # The task's output keeps the question and the assumption it went on with.
    found = agency(tmp_path, "search", project_id, "assumed", "--json", **_env(fake))
    assert found.returncode == 0, found.stderr
    hits = [h for h in json.loads(found.stdout) if h["kind"] == "output"]
    assert any("home, menu and contact pages" in h["snippet"] for h in hits), hits
    log = agency(tmp_path, "log", project_id, "--json", **_env(fake))
    kinds = [(e["kind"], e["to"]) for e in json.loads(log.stdout)]
    assert ("question", "needs_input") in kinds
