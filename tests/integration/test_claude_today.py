"""The Claude path as the API is today, through the strict test server: the current models
by default, thinking models in tool loops, answers cut at max_tokens, no text after tool
results, every call priced as published and found by its request id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fake_anthropic import FakeAnthropic
from tests.integration.test_embedded_cli import agency, project_id_of, status

KEY = "sk-test-claude-today"

# USD per million tokens as the pricing page lists them: input, output, cache read, 5-minute
# write, 1-hour write (written here by hand, not read from the product's table).
PUBLISHED = {
    "claude-sonnet-5-5": (2.0, 10.0, 0.10, 2.50, 4.0),
    "claude-haiku-5-5": (0.10, 0.50, 0.01, 0.125, 0.20),
    "claude-opus-5-5": (4.0, 20.0, 0.20, 5.0, 8.0),
}


def published_cost(message: dict[str, Any]) -> float:
    usage = message["usage"]
    rates = PUBLISHED[message["model"]]
    one_hour = usage["cache_creation"]["ephemeral_1h_input_tokens"]
    prompt = (usage["input_tokens"] + usage["cache_read_input_tokens"]
              + usage["cache_creation_input_tokens"])
    factor = 5.0 if message["model"] == "claude-haiku-5-5" and prompt > 100_000 else 1.0
    return factor * (usage["input_tokens"] * rates[0] + usage["output_tokens"] * rates[1]
                     + usage["cache_read_input_tokens"] * rates[2]
                     + (usage["cache_creation_input_tokens"] - one_hour) * rates[3]
                     + one_hour * rates[4]) / 1_000_000


def _env(fake: FakeAnthropic, **extra: str) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.url,
            "AGENCY_MODEL_BACKOFF": "0.05", "AGENCY_ANTHROPIC_TIMEOUT": "10", **extra}


@pytest.fixture
def fake() -> Any:
    with FakeAnthropic(api_key=KEY) as server:
        yield server


def _run(fake: FakeAnthropic, tmp_path: Path, *args: str, **env: str) -> dict[str, Any]:
    result = agency(tmp_path, "run", *args, timeout=240, **_env(fake, **env))
    assert result.returncode == 0, result.stderr
    data = status(tmp_path, project_id_of(result.stdout), **_env(fake, **env))
    assert data["status"] == "completed"
    return data


def _calls(fake: FakeAnthropic, tmp_path: Path, project_id: str) -> list[dict[str, Any]]:
    result = agency(tmp_path, "calls", project_id, "--json", **_env(fake))
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_a_project_on_the_defaults_is_priced_as_published_and_every_call_is_found(
        fake: FakeAnthropic, tmp_path: Path) -> None:
    data = _run(fake, tmp_path, "Build a website for a bakery")
    assert fake.refused == []  # no request the API would refuse
    assert {m["model"] for m in fake.messages} == {"claude-sonnet-5-5", "claude-haiku-5-5"}
    # The project's cost is the published prices of the calls the server answered.
    assert data["cost_usd"] == pytest.approx(sum(published_cost(m) for m in fake.messages),
                                             abs=1e-5)
    # Every call is in the ledger under the request id and message id the server gave it.
    issued = {r["request_id"] for r in fake.requests}
    rows = _calls(fake, tmp_path, data["id"])
    answered = [r for r in rows if r["outcome"] == "answered"]
    assert sorted(r["message_id"] for r in answered) == sorted(m["id"] for m in fake.messages)
    assert all(r["request_id"] in issued for r in rows)
    # The orchestrator's model always thinks: its thinking is in the ledger.
    assert sum(r["tokens"]["thinking"] for r in rows if r["model"] == "claude-sonnet-5-5") > 0


def test_an_orchestrator_that_always_thinks_completes(fake: FakeAnthropic,
                                                      tmp_path: Path) -> None:
    _run(fake, tmp_path, "Build a website for a bakery",
         AGENCY_ORCHESTRATOR_MODEL="claude-opus-5-5")
    assert fake.refused == []
    opus = [r["body"] for r in fake.requests if r["body"]["model"] == "claude-opus-5-5"]
    assert opus and all(b.get("thinking", {}).get("type") == "adaptive" for b in opus)
    # Its tool loop (the integration) sent its signed thinking back with its tool turns.
    sent_back = [block for body in opus for m in body["messages"] if m["role"] == "assistant"
                 for block in m["content"] if block["type"] == "thinking"]
    assert sent_back and all(block["signature"] for block in sent_back)
    assert not any(b.get("tool_choice", {}).get("type") in ("any", "tool") for b in opus)


def _pages(tmp_path: Path) -> Path:
    plan = {"request": "Two pages", "tasks": [
        {"title": "Page A", "agent_type": "frontend_developer"},
        {"title": "Page B", "agent_type": "frontend_developer"}]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def test_an_answer_cut_at_max_tokens_costs_its_task_at_most_two_calls_more(
        fake: FakeAnthropic, tmp_path: Path) -> None:
    fake.faults.long_answers = {"Page A": 12_000}  # past the agents' 8,000-token cap
    _run(fake, tmp_path, "--plan", str(_pages(tmp_path)), AGENCY_REVIEWED_AGENTS="none")
    assert fake.refused == []
    cut = [m for m in fake.messages if m["stop_reason"] == "max_tokens"]
    assert cut, "the long answer must have been cut"
    turns = fake.task_calls(turns=True)
    assert turns["Page B"] < turns["Page A"] <= turns["Page B"] + 2


def test_with_two_turns_no_call_puts_text_after_tool_results(fake: FakeAnthropic,
                                                             tmp_path: Path) -> None:
    _run(fake, tmp_path, "Build a website for a bakery", AGENCY_AGENT_MAX_TURNS="2")
    assert fake.refused == []
    looped = 0
    for request in fake.requests:
        for message in request["body"]["messages"]:
            kinds = [b["type"] for b in message["content"]] if isinstance(
                message["content"], list) else ["text"]
            if "tool_result" in kinds:
                looped += 1
                first = kinds.index("tool_result")
                assert "text" not in kinds[first:], kinds
    assert looped > 0  # the agents did use their tools
