"""Economy mode through the strict test server: agents' turns with slack go through the
Message Batches API (half price), their tasks parked while each batch runs, and the project's
cost is the published prices with batched calls at half."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_anthropic import FakeAnthropic
from tests.integration.test_claude_today import _calls, _env, published_cost
from tests.integration.test_embedded_cli import agency, project_id_of, status

KEY = "sk-test-claude-today"


@pytest.fixture
def fake() -> FakeAnthropic:
    with FakeAnthropic(api_key=KEY) as server:
        server.batch_seconds = 0.3
        yield server  # type: ignore[misc]


def test_economy_with_a_week_of_slack_batches_the_agents_and_prices_them_at_half(
        fake: FakeAnthropic, tmp_path: Path) -> None:
    env = _env(fake, AGENCY_RECONCILE_INTERVAL="0.3")
    result = agency(tmp_path, "run", "--economy", "--deadline", "7d",
                    "Build a website for a bakery", timeout=300, **env)
    assert result.returncode == 0, result.stderr
    data = status(tmp_path, project_id_of(result.stdout), **env)
    assert data["status"] == "completed"
    assert fake.refused == []
    rows = _calls(fake, tmp_path, data["id"])
    agents = [r for r in rows if r["role"] == "agent" and r["outcome"] == "answered"]
    batched = [r for r in agents if r["batch"]]
    assert agents and len(batched) >= 0.9 * len(agents), (len(batched), len(agents))
    print(f"economy: {len(batched)} of {len(agents)} agent calls batched")
    assert fake.batches  # they went through the batch endpoints, not /v1/messages
    in_batches = {res["message"]["id"] for b in fake.batches.values()
                  for res in b.results.values() if res["type"] == "succeeded"}
    assert {r["message_id"] for r in batched} <= in_batches
    # Priced as published, batched calls at half.
    expected = sum(published_cost(m) * (0.5 if m["id"] in in_batches else 1.0)
                   for m in fake.messages)
    assert data["cost_usd"] == pytest.approx(expected, abs=1e-5)


def test_without_slack_an_economy_project_runs_live(fake: FakeAnthropic, tmp_path: Path) -> None:
    env = _env(fake, AGENCY_RECONCILE_INTERVAL="0.3", AGENCY_BATCH_TURNAROUND="86400")
    result = agency(tmp_path, "run", "--economy", "--deadline", "2h", "Write a blog post",
                    timeout=300, **env)
    assert result.returncode == 0, result.stderr
    data = status(tmp_path, project_id_of(result.stdout), **env)
    assert data["status"] == "completed"
    assert not fake.batches
    assert not any(r["batch"] for r in _calls(fake, tmp_path, data["id"]))
