"""A conversation's journal: every answered turn and every round of tool results is kept, and a
new attempt replays it, paying only for what was never answered."""

from __future__ import annotations

import pytest

from orchestrator.domain.constants import Role
from orchestrator.domain.errors import Parked
from orchestrator.domain.models import AgentOutput, JournalEntry, JournalTurn
from orchestrator.llm.base import (
    CompletionRequest,
    CompletionResponse,
    Content,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)
from orchestrator.llm.structured import Conversation, Limits
from tests.unit.test_structured import Scripted

GOOD = '{"summary": "s", "content": "c", "artifacts": []}'
WRITE = Tool(name="write_artifact", description="w", input_schema={"type": "object"})


class Memory:
    """A journal in memory, as the store keeps it: turns written by the meter, tools here."""

    def __init__(self) -> None:
        self.rows: dict[int, JournalEntry] = {}
        self.sent: dict[int, str] = {}
        self.dropped: list[int] = []

    @property
    def conv(self) -> str:
        return "t/x/0/agent"

    def entries(self) -> list[JournalEntry]:
        return [self.rows[k] for k in sorted(self.rows)]

    def tools(self, seq: int, body: str) -> None:
        self.rows.setdefault(seq, JournalEntry(seq=seq, kind="tools", body=body))

    def diverged(self, seq: int) -> None:
        self.dropped.append(seq)
        self.rows = {k: v for k, v in self.rows.items() if k < seq}


class Meter:
    def __init__(self, journal: Memory) -> None:
        self.journal, self.recorded = journal, 0

    def admit(self) -> None: ...

    def record(self, request: CompletionRequest, response: CompletionResponse, attempt: int,
               turn: JournalTurn | None = None) -> None:
        self.recorded += 1
        assert turn is not None
        self.journal.rows.setdefault(turn.seq, JournalEntry(
            seq=turn.seq, kind="turn", digest=turn.digest, body=turn.body))
        self.journal.sent[turn.seq] = turn.sent

    def lost(self, *a: object) -> None: ...

    def retrying(self, *a: object) -> None: ...

    def throttled(self, *a: object) -> None: ...


class Files:
    """write_artifact's state, rebuilt on replay; `run` counts real runs."""

    def __init__(self, park_on: str | None = None) -> None:
        self.files: dict[str, str] = {}
        self.runs = 0
        self.park_on = park_on

    @property
    def tools(self) -> list[Tool]:
        return [WRITE]

    def run(self, call: ToolUseBlock) -> ToolResultBlock:
        self.runs += 1
        if call.id == self.park_on:
            raise Parked("an answer to its question")
        self.files[call.input["path"]] = call.input["content"]
        return ToolResultBlock(tool_use_id=call.id, content=f"saved {call.input['path']}")

    def replay(self, call: ToolUseBlock) -> None:
        self.files[call.input["path"]] = call.input["content"]


def _use(n: int) -> list[Content]:
    return [ToolUseBlock(id=f"u{n}", name="write_artifact",
                         input={"path": f"f{n}.txt", "content": f"body {n}"})]


def _conversation(provider: Scripted, journal: Memory, tools: Files) -> Conversation[AgentOutput]:
    return Conversation(provider, role=Role.AGENT, model="m", system=[TextBlock(text="s")],
                        prompt=[TextBlock(text="do it")], schema=AgentOutput,
                        schema_name="agent_output", meter=Meter(journal), tools=tools,
                        limits=Limits(turns=6), journal=journal)


def test_a_new_attempt_replays_every_answered_turn_and_pays_for_none() -> None:
    journal = Memory()
    first = Scripted(_use(1), _use(2), GOOD)
    tools = Files()
    assert _conversation(first, journal, tools).answer().summary == "s"
    assert [e.kind for e in journal.entries()] == ["turn", "tools", "turn", "tools", "turn"]
    again, files = Scripted(), Files()
    conversation = _conversation(again, journal, files)
    assert conversation.answer().content == "c"
    assert again.requests == [] and conversation.replayed == 3
    assert files.runs == 0 and files.files == tools.files  # rebuilt, not run again


def test_each_row_holds_only_what_is_new_since_the_row_before() -> None:
    journal = Memory()
    _conversation(Scripted(_use(1), _use(2), _use(3), GOOD), journal, Files()).answer()
    # The first turn sends the prompt; the later ones send nothing new (the tool results are
    # their own rows), so the journal does not grow with the conversation's length.
    assert "do it" in journal.sent[0]
    assert [journal.sent[s] for s in sorted(journal.sent)][1:] == ["[]", "[]", "[]"]


def test_a_crash_after_two_turns_costs_only_the_turns_never_answered() -> None:
    journal = Memory()
    crashing = Scripted(_use(1), _use(2))  # a third call would raise: the worker "dies" there
    with pytest.raises(IndexError):
        _conversation(crashing, journal, Files()).answer()
    rest = Scripted(GOOD)
    conversation = _conversation(rest, journal, Files())
    assert conversation.answer().summary == "s"
    assert len(rest.requests) == 1 and conversation.replayed == 2


def test_a_turn_parked_on_a_tool_replays_its_answer_and_runs_the_tool_again() -> None:
    journal = Memory()
    with pytest.raises(Parked):
        _conversation(Scripted(_use(1)), journal, Files(park_on="u1")).answer()
    assert [e.kind for e in journal.entries()] == ["turn"]  # the tool round never ended
    resumed, files = Scripted(GOOD), Files()
    assert _conversation(resumed, journal, files).answer().summary == "s"
    assert files.runs == 1 and len(resumed.requests) == 1


def test_a_grown_brief_still_replays_the_conversation_it_framed() -> None:
    journal = Memory()
    _conversation(Scripted(_use(1), GOOD), journal, Files()).answer()
    other = Scripted()
    grown = Conversation(other, role=Role.AGENT, model="m",
                         system=[TextBlock(text="s, and two tasks added")],
                         prompt=[TextBlock(text="do it")], schema=AgentOutput,
                         schema_name="agent_output", meter=Meter(journal), tools=Files(),
                         limits=Limits(turns=6), journal=journal)
    assert grown.answer().summary == "s" and other.requests == []


def test_a_conversation_that_differs_from_its_journal_goes_live_from_there() -> None:
    journal = Memory()
    _conversation(Scripted(_use(1), GOOD), journal, Files()).answer()
    other = Scripted(GOOD)
    changed = Conversation(other, role=Role.AGENT, model="m", system=[TextBlock(text="s")],
                           prompt=[TextBlock(text="do it differently")], schema=AgentOutput,
                           schema_name="agent_output", meter=Meter(journal), tools=Files(),
                           limits=Limits(turns=6), journal=journal)
    assert changed.answer().summary == "s"
    assert len(other.requests) == 1 and journal.dropped == [0]
