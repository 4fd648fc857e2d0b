"""A model's answer is data: validated, repaired once with the error shown, or refused."""

from __future__ import annotations

import pytest

from orchestrator.domain import dag
from orchestrator.domain.constants import Role
from orchestrator.domain.errors import InvalidAnswer
from orchestrator.domain.models import AgentOutput, Artifact, Plan, Tokens
from orchestrator.domain.prompt_labels import LAST_TURN
from orchestrator.llm.base import (
    CompletionRequest,
    CompletionResponse,
    Content,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)
from orchestrator.llm.structured import Conversation, Limits, ask_structured


class Scripted:
    """Answers from a script, recording what it was asked."""

    name = "scripted"

    def __init__(self, *answers: str | list[Content]) -> None:
        self.answers = list(answers)
        self.requests: list[CompletionRequest] = []

    def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        answer = self.answers.pop(0)
        content = [TextBlock(text=answer)] if isinstance(answer, str) else answer
        return CompletionResponse(content=content, model="scripted",
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
    assert repair[1].role == "assistant"
    assert repair[1].text == "Sure! Here is the JSON you asked for"
    assert "not valid" in repair[2].text and "JSON" in repair[2].text


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
    assert "dependency cycle" in provider.requests[1].messages[-1].text


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


class Echo:
    """A tool box with one tool that echoes its input."""

    def __init__(self) -> None:
        self.tools = [Tool(name="echo", description="echo", input_schema={"type": "object"})]
        self.calls: list[dict[str, object]] = []

    def run(self, call: ToolUseBlock) -> ToolResultBlock:
        self.calls.append(call.input)
        return ToolResultBlock(tool_use_id=call.id, content=f"echo {call.input}")


def _use(n: int) -> list[Content]:
    return [ToolUseBlock(id=f"t{n}", name="echo", input={"n": n})]


def _converse(provider: Scripted, tools: Echo, turns: int) -> Conversation[AgentOutput]:
    return Conversation(provider, role=Role.AGENT, model="m",
                        system=[TextBlock(text="s", cache=True)],
                        prompt=[TextBlock(text="do it")], schema=AgentOutput,
                        schema_name="agent_output", tools=tools, limits=Limits(turns=turns))


def test_tool_calls_are_run_and_their_results_sent_back() -> None:
    provider, tools = Scripted(_use(1), _use(2), GOOD), Echo()
    assert _converse(provider, tools, 5).answer().summary == "s"
    assert tools.calls == [{"n": 1}, {"n": 2}]
    last = provider.requests[-1]
    assert [m.role for m in last.messages] == ["user", "assistant", "user", "assistant", "user"]
    result = last.messages[-1].content[0]
    assert isinstance(result, ToolResultBlock) and result.content == "echo {'n': 2}"
    # The growing conversation has cache breakpoints at the end of its last two user
    # messages, and only there.
    marked = [(i, j) for i, m in enumerate(last.messages) for j, b in enumerate(m.content)
              if getattr(b, "cache", False)]
    assert result.cache and marked == [(2, 0), (4, 0)]
    assert all(r.tool_choice == "auto" for r in provider.requests)


def test_the_last_turn_must_answer() -> None:
    provider, tools = Scripted(_use(1), GOOD), Echo()
    _converse(provider, tools, 2).answer()
    # The tools and tool_choice stay as they were (changing either would miss the cached
    # conversation); the last turn is told to answer.
    assert [r.tool_choice for r in provider.requests] == ["auto", "auto"]
    assert provider.requests[-1].tools == tools.tools
    assert provider.requests[-1].messages[-1].content[-1] == TextBlock(text=LAST_TURN,
                                                                       cache=True)
    assert LAST_TURN not in provider.requests[0].messages[-1].text


def test_tool_calls_past_the_limit_are_not_run_and_count_as_repairs() -> None:
    provider, tools = Scripted(_use(1), _use(2), _use(3), _use(4)), Echo()
    with pytest.raises(InvalidAnswer, match="tools called after the turn limit"):
        _converse(provider, tools, 1).answer()
    assert tools.calls == []


def test_follow_up_continues_the_conversation() -> None:
    provider, tools = Scripted(GOOD, '{"summary": "t", "content": "c2"}'), Echo()
    conversation = _converse(provider, tools, 3)
    conversation.answer()
    assert conversation.follow_up("revise: more detail").summary == "t"
    assert provider.requests[-1].messages[-1].text == "revise: more detail"
    assert len(provider.requests[-1].messages) == 3


def test_empty_text_blocks_are_not_sent_back() -> None:
    """The API refuses an empty text block in a request."""
    provider = Scripted([TextBlock(text=" "), *_use(1)], GOOD)
    _converse(provider, Echo(), 5).answer()
    sent = provider.requests[-1].messages[1].content
    assert [type(b).__name__ for b in sent] == ["ToolUseBlock"]
