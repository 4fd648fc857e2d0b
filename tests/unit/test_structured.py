"""A model's answer is data: validated, repaired once with the error shown, or refused."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.domain import dag
from orchestrator.domain.constants import Role
from orchestrator.domain.errors import ContextOverflow, InvalidAnswer
from orchestrator.domain.models import AgentOutput, Artifact, Plan, Tokens
from orchestrator.domain.prompt_labels import LAST_TURN
from orchestrator.llm.base import (
    CompletionRequest,
    CompletionResponse,
    Content,
    Message,
    TextBlock,
    ThinkingBlock,
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

    def complete(self, request: CompletionRequest, progress: object = None) -> CompletionResponse:
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
    # The note travels inside the last tool result: text after tool results reads, to the
    # API, as the end of the turn (an empty answer).
    last = provider.requests[-1].messages[-1]
    assert [type(b).__name__ for b in last.content] == ["ToolResultBlock"]
    assert isinstance(last.content[0], ToolResultBlock)
    assert last.content[0].content.endswith(LAST_TURN)
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


class Stopping(Scripted):
    """Answers (content, stop reason) pairs; an exception in the script is raised."""

    def __init__(self, *answers: tuple[str | list[Content], str] | Exception) -> None:
        super().__init__()
        self.script = list(answers)

    def complete(self, request: CompletionRequest, progress: object = None) -> CompletionResponse:
        self.requests.append(request)
        answer = self.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        content, stop = answer
        blocks = [TextBlock(text=content)] if isinstance(content, str) else content
        return CompletionResponse(content=blocks, model="scripted", stop_reason=stop,
                                  tokens=Tokens(input=10, output=5), latency_ms=1,
                                  request_id=f"req_{len(self.requests)}")


def _grows(requests: list[CompletionRequest]) -> bool:
    """Every request's messages start with everything the one before sent, unchanged (cache
    markers aside): the conversation is append-only."""
    def plain(r: CompletionRequest) -> list[Message]:
        return [m.model_copy(update={"content": [b.model_copy(update={"cache": False})
                                                 if hasattr(b, "cache") else b
                                                 for b in m.content]}) for m in r.messages]
    return all(plain(b)[:len(plain(a))] == plain(a) for a, b in itertools.pairwise(requests))


def test_an_answer_cut_at_max_tokens_is_asked_again_with_more_room() -> None:
    half = GOOD[: len(GOOD) // 2]
    provider = Stopping((half, "max_tokens"), (GOOD, "end_turn"))
    conversation = _converse(provider, Echo(), 3)
    assert conversation.answer().summary == "s"
    first, second = provider.requests
    assert second.max_tokens == 2 * first.max_tokens
    assert second.messages == first.messages  # the cut answer is not kept
    assert len(provider.requests) == 2


def test_a_tool_call_cut_at_max_tokens_is_never_run() -> None:
    provider, tools = Stopping((_use(1), "max_tokens"), (GOOD, "end_turn")), Echo()
    _converse(provider, tools, 3).answer()
    assert tools.calls == []


def test_an_answer_cut_again_and_again_fails_clearly_after_two_more_calls() -> None:
    provider = Stopping(*[("{", "max_tokens")] * 5)
    with pytest.raises(InvalidAnswer, match=r"cut at max_tokens .* 3 times \(request req_3\)"):
        _converse(provider, Echo(), 5).answer()
    assert len(provider.requests) == 3


def test_an_empty_end_turn_is_asked_to_go_on_not_repaired() -> None:
    provider = Stopping(([], "end_turn"), (GOOD, "end_turn"))
    assert _converse(provider, Echo(), 3).answer().summary == "s"
    last = provider.requests[-1].messages
    assert last[-1].role == "user" and "not valid" not in last[-1].text
    assert _grows(provider.requests)


def test_thinking_blocks_go_back_exactly_as_they_came() -> None:
    thought = ThinkingBlock(thinking="I should echo first.", signature="sig-1")
    provider = Stopping(([thought, *_use(1)], "tool_use"), (GOOD, "end_turn"))
    _converse(provider, Echo(), 3).answer()
    assistant = provider.requests[-1].messages[1]
    assert assistant.role == "assistant" and assistant.content[0] == thought
    assert _grows(provider.requests)


def test_a_conversation_over_the_context_window_answers_trimmed() -> None:
    provider = Stopping((_use(1), "tool_use"), ContextOverflow("prompt is too long"),
                        (GOOD, "end_turn"))
    assert _converse(provider, Echo(), 5).answer().summary == "s"
    trimmed = provider.requests[-1]
    assert len(trimmed.messages) == 1 and LAST_TURN in trimmed.messages[0].text
    assert "echo {'n': 1}" in trimmed.messages[0].text


def test_the_whole_tool_loop_is_append_only() -> None:
    provider = Stopping((_use(1), "tool_use"), ("nope", "end_turn"), (_use(2), "tool_use"),
                        (GOOD, "end_turn"))
    _converse(provider, Echo(), 4).answer()
    assert _grows(provider.requests)
