"""The offline model plans every project type realistically and writes per-agent output."""

from __future__ import annotations

import pytest

from agency_offline.classify import analyze, classify, plan
from agency_offline.model import OfflineProvider
from orchestrator.domain import dag
from orchestrator.domain.constants import ProjectType, Role
from orchestrator.domain.models import Analysis, Deliverable, Plan
from orchestrator.domain.prompts import (
    ORCHESTRATOR_SYSTEM,
    analysis_prompt,
    decomposition_prompt,
    integration_prompt,
)
from orchestrator.llm.base import CompletionRequest, CompletionResponse, Message, TextBlock
from orchestrator.llm.structured import ask_structured


@pytest.mark.parametrize("kind", list(ProjectType))
def test_plan_per_project_type_is_realistic(kind: ProjectType) -> None:
    p = plan(kind)
    graph = dag.validate_plan(p)
    successors = graph.successors()
    assert len(p.tasks) >= 6
    assert len({t.agent_type for t in p.tasks}) >= 4
    assert any(len(s) >= 2 for s in successors), "no fan-out"
    assert any(len(d) >= 2 for d in graph.deps), "no fan-in"
    assert dag.false_waits(graph, dag.series_parallel(graph)) == []


@pytest.mark.parametrize(("request_text", "kind"), [
    ("Build a website for a bakery", ProjectType.WEBSITE),
    ("An iOS and Android app for dog walkers", ProjectType.MOBILE_APP),
    ("Run a social media campaign for our new sneakers", ProjectType.MARKETING_CAMPAIGN),
    ("Analyze churn data and build a dashboard", ProjectType.DATA_ANALYSIS),
    ("Write a blog series about sourdough", ProjectType.CONTENT_CREATION),
    ("Plan a company offsite", ProjectType.CUSTOM),
])
def test_classify(request_text: str, kind: ProjectType) -> None:
    assert classify(request_text) is kind
    assert analyze(request_text).project_type is kind


class Recorder:
    def __init__(self, calls: list[tuple[str, int]]) -> None:
        self.calls = calls

    def admit(self) -> None:
        pass

    def record(self, request: CompletionRequest, response: CompletionResponse,
               attempt: int, turn: object = None) -> None:
        self.calls.append((response.model, response.tokens.total))

    def retrying(self, attempt: int, reason: str, delay: float) -> None:
        raise AssertionError("the offline model never fails")


def test_offline_reads_the_prompts_claude_reads() -> None:
    """No side channel: the offline model answers from the prompt text alone."""
    provider = OfflineProvider()
    calls: list[tuple[str, int]] = []
    result = ask_structured(
        provider, role=Role.ANALYZE, model="m", system=ORCHESTRATOR_SYSTEM,
        prompt=analysis_prompt("Build a website for a bakery"), schema=Analysis,
        schema_name="analysis", meter=Recorder(calls))
    assert result.project_type is ProjectType.WEBSITE
    assert len(calls) == 1 and calls[0][0] == "offline" and calls[0][1] > 0
    p = ask_structured(provider, role=Role.DECOMPOSE, model="m", system=ORCHESTRATOR_SYSTEM,
                       prompt=decomposition_prompt("Build a website for a bakery", "website",
                                                   [], {}),
                       schema=Plan, schema_name="plan")
    assert len(p.tasks) == 9
    results: list[dict[str, object]] = [{"task": 0, "title": "A", "agent": "backend_developer",
                                         "summary": "s", "files": [], "review": "pass"}]
    d = ask_structured(provider, role=Role.INTEGRATE, model="m", system=ORCHESTRATOR_SYSTEM,
                       prompt=integration_prompt("r", "website", results),
                       schema=Deliverable, schema_name="deliverable")
    assert d.key_deliverables[0].title == "Backend Developer"


def test_latency_setting_is_honoured() -> None:
    import time

    provider = OfflineProvider(latency=0.05)
    req = CompletionRequest(role=Role.ANALYZE, model="m", system=[TextBlock(text="s")],
                            messages=[Message(role="user", content=[TextBlock(
                                text=analysis_prompt("a bakery website"))])],
                            json_schema=Analysis.model_json_schema())
    started = time.monotonic()
    Analysis.model_validate_json(provider.complete(req).text)
    assert time.monotonic() - started >= 0.05


def test_latency_spread_is_fixed_per_task_and_bounded() -> None:
    def request(title: str) -> CompletionRequest:
        text = f"Your task: {title}\nDo it well."  # the title: the task prompt's first line
        return CompletionRequest(role=Role.AGENT, model="m", system=[TextBlock(text="s")],
                                 messages=[Message(role="user", content=[TextBlock(text=text)])])

    provider = OfflineProvider(latency=1.0, spread=0.5)
    delays = [provider.delay(request(f"Step {i}")) for i in range(40)]
    assert all(0.5 <= d <= 1.5 for d in delays)
    assert max(delays) - min(delays) > 0.5  # tasks differ in length
    assert provider.delay(request("Step 3")) == delays[3]  # every call of a task alike
    assert OfflineProvider(latency=1.0).delay(request("Step 3")) == 1.0
