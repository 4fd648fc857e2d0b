"""A model's answer is data: validated, repaired once with the error shown, or refused."""

from __future__ import annotations

import pytest

from orchestrator import dag
from orchestrator.constants import Role
from orchestrator.errors import InvalidAnswer
from orchestrator.llm.base import CompletionRequest, CompletionResponse
from orchestrator.llm.structured import ask_structured
from orchestrator.models import AgentOutput, Artifact, Plan, Tokens


class Scripted:
    """Answers from a script, recording what it was asked."""

    name = "scripted"

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.requests: list[CompletionRequest] = []

    def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        return CompletionResponse(text=self.answers.pop(0), model="scripted",
                                  tokens=Tokens(input=10, output=5), latency_ms=1)


GOOD = '{"summary": "s", "content": "c", "artifacts": []}'


def _ask(provider: Scripted) -> AgentOutput:
    return ask_structured(provider, role=Role.AGENT, model="m", system="s", prompt="do it",
                          schema=AgentOutput, schema_name="agent_output")


def test_valid_answer_in_a_fence_is_accepted() -> None:
    assert _ask(Scripted("```json\n" + GOOD + "\n```")).summary == "s"


def test_garbage_is_repaired_with_the_error_shown() -> None:
    provider = Scripted("Sure! Here is the JSON you asked for", GOOD)
    assert _ask(provider).content == "c"
    repair = provider.requests[1].messages
    assert repair[1] == {"role": "assistant", "content": "Sure! Here is the JSON you asked for"}
    assert "not valid" in repair[2]["content"] and "JSON" in repair[2]["content"]


def test_schema_violation_after_every_repair_round_fails_clearly() -> None:
    provider = Scripted('{"summary": 3}', '{"content": "only"}', "[]")
    with pytest.raises(InvalidAnswer, match=r"agent_output was not valid after 3 attempts: "):
        _ask(provider)
    assert len(provider.requests) == 3


def test_graph_rules_go_through_the_same_repair_loop() -> None:
    cyclic = ('{"tasks": [{"title": "a", "agent_type": "marketing", "dependencies": [1]},'
              '{"title": "b", "agent_type": "marketing", "dependencies": [0]}]}')
    fixed = '{"tasks": [{"title": "a", "agent_type": "marketing"}]}'
    provider = Scripted(cyclic, fixed)
    plan = ask_structured(provider, role=Role.DECOMPOSE, model="m", system="s", prompt="p",
                          schema=Plan, schema_name="plan", check=dag.validate_plan)
    assert len(plan.tasks) == 1
    assert "dependency cycle" in provider.requests[1].messages[-1]["content"]


@pytest.mark.parametrize("path", ["/etc/passwd", "../escape.txt", "a/../../b", "C:/x", "~/x"])
def test_a_hostile_artifact_path_does_not_cost_the_answer(path: str) -> None:
    """The answer stays valid; the writer (tests/unit/test_artifacts.py) keeps it inside."""
    assert Artifact(path=path, content="x").path == path


def test_artifact_limits() -> None:
    with pytest.raises(ValueError):
        Artifact(path="", content="x")
    with pytest.raises(ValueError):
        AgentOutput(summary="s", content="c",
                    artifacts=[Artifact(path=f"f{i}", content="") for i in range(101)])


def test_artifact_relative_path_is_kept() -> None:
    assert Artifact(path="frontend/index.html", content="").path == "frontend/index.html"
