"""Model calls with policy: budget admission, bounded retries, the ledger, and structured answers.

A structured answer is validated against a schema (and an optional check); a bad one gets
`REPAIR_ROUNDS` rounds that show the model its error, then `InvalidAnswer`. Transient API
errors are retried here, for every provider, with backoff that honours `retry-after`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from orchestrator.domain import catalog
from orchestrator.domain.constants import Role
from orchestrator.domain.errors import (
    ContextOverflow,
    InvalidAnswer,
    PlanError,
    TransientModelError,
)
from orchestrator.domain.models import JournalEntry, JournalTurn
from orchestrator.domain.prompt_labels import LAST_TURN
from orchestrator.llm import wire
from orchestrator.llm.base import (
    CompletionRequest,
    CompletionResponse,
    Content,
    Message,
    Progress,
    Provider,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)

if TYPE_CHECKING:
    from orchestrator.llm.ratelimit import Throttle

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)
Check = Callable[[Any], object]  # raises when the value breaks a rule

# An invalid answer is shown its error this many times; then it fails for good (InvalidAnswer).
REPAIR_ROUNDS = 2


class Meter(Protocol):
    """What a model call reports to, and asks permission of."""

    def admit(self) -> None:
        """Raise BudgetExhausted when the project may make no more calls."""

    def record(self, request: CompletionRequest, response: CompletionResponse,
               attempt: int, turn: JournalTurn | None = None) -> None:
        """One ledger row per answered call; with `turn`, its journal row in the same
        transaction."""

    def lost(self, request: CompletionRequest, attempt: int, reason: str,
             request_id: str | None) -> None:
        """A call that gave no answer but may have been billed (it timed out, or the
        connection broke, while the model generated): a ledger row without tokens."""

    def retrying(self, attempt: int, reason: str, delay: float) -> None:
        """A call failed transiently and will be retried after `delay` seconds."""

    def throttled(self, waited: float) -> None:
        """A call waited `waited` seconds for the shared rate limit (not a call of its own)."""


class Journal(Protocol):
    """Where a conversation's turns are kept, so a new attempt replays what was answered and
    pays only for what was not. Answered turns are journaled by the meter, with their ledger
    row; tool results here."""

    @property
    def conv(self) -> str:
        """The conversation's name in the journal."""

    def entries(self) -> list[JournalEntry]:
        """What the journal holds of this conversation, in order."""

    def tools(self, seq: int, body: str) -> None:
        """Keep a round of tool results (a user message, JSON)."""

    def diverged(self, seq: int) -> None:
        """The conversation no longer matches its journal from `seq` on: forget those rows."""


def digest(request: CompletionRequest) -> str:
    """What identifies a request for replay: the conversation and how it is answered, not the
    system prompt (a project's brief grows when tasks are added to it; the conversation it
    framed stays the same) and not whether the answer is streamed."""
    return hashlib.sha256(request.model_dump_json(
        exclude={"stream", "system", "cache_ttl"}).encode()).hexdigest()[:32]


_MESSAGES = TypeAdapter(list[Message])


class Batcher(Protocol):
    """Economy mode: a turn sent through the Message Batches API instead of live."""

    def submit(self, request: CompletionRequest, turn: JournalTurn) -> None:
        """Send the turn in a batch and raise Parked (its task waits for the batch), or
        return: the turn goes live."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is made: retries, and the shared rate limit admitting each attempt."""

    attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    throttle: Throttle | None = None

    def delay(self, attempt: int, requested: float | None) -> float:
        """The server's `retry-after` when given, else jittered exponential backoff."""
        if requested is not None:
            return float(min(requested, self.max_backoff))
        base = min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff)
        return base * (0.5 + random.random() / 2)


def call(provider: Provider, request: CompletionRequest, policy: RetryPolicy,
         meter: Meter | None, progress: Progress | None = None) -> CompletionResponse:
    """One answered call: admitted by the budget and the shared rate limit, transient failures
    retried with backoff. An attempt that reached the API and gave no answer (a timeout, a
    broken stream) is recorded as possibly billed before it is retried."""
    for attempt in range(1, policy.attempts + 1):
        if meter is not None:
            meter.admit()
        try:
            return _attempt(provider, request, policy.throttle, meter, progress)
        except TransientModelError as exc:
            if exc.lost and meter is not None:
                meter.lost(request, attempt, exc.message, exc.request_id)
            if attempt == policy.attempts:
                raise TransientModelError(
                    f"model API unavailable after {attempt} attempts: {exc.message}",
                    exc.retry_after, request_id=exc.request_id) from exc
            delay = policy.delay(attempt, exc.retry_after)
            if meter is not None:
                meter.retrying(attempt, exc.message, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _attempt(provider: Provider, request: CompletionRequest, throttle: Throttle | None,
             meter: Meter | None, progress: Progress | None) -> CompletionResponse:
    """One try, once the rate limit admits it; what it used (or the 429) settles the limit."""
    if throttle is None:
        return provider.complete(request, progress)
    admission = throttle.admit(request)
    if admission.waited > 0 and meter is not None:
        meter.throttled(admission.waited)
    try:
        response = provider.complete(request, progress)
    except BaseException as exc:
        throttle.failed(admission, exc)
        raise
    throttle.answered(admission, response)
    return response


def _strip_fence(text: str) -> str:
    """Models sometimes wrap JSON in a Markdown fence despite being asked not to."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return body.strip()


def _parse(text: str, schema: type[T], check: Check | None) -> T:
    value = schema.model_validate_json(_strip_fence(text))
    if check is not None:
        check(value)
    return value


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        more = exc.error_count() - 1
        return f"{where}: {first['msg']}" + (f" (and {more} more)" if more else "")
    if isinstance(exc, PlanError):
        return exc.message
    return str(exc)


class ToolBox(Protocol):
    """The tools a conversation offers, and how a call of one is answered."""

    @property
    def tools(self) -> list[Tool]: ...

    def run(self, call: ToolUseBlock) -> ToolResultBlock:
        """Run one tool call; a bad call is answered with an error result, never raised."""


@dataclass(frozen=True)
class Limits:
    """How far one conversation may go per answer: model turns (tool calls, answers and
    repair rounds) and tokens (as budgets count them, summed over the whole conversation).
    The last turn must answer. Whatever these say, a conversation also answers before its
    prompt would outgrow the model's context window."""

    turns: int = 1
    tokens: int | None = None


# Room for thinking on top of the answer's own cap, by effort (the API counts thinking in
# max_tokens); capped at the model's output limit.
THINKING_ROOM = {"low": 4000, "medium": 8000, "high": 16000, "xhigh": 32000, "max": 64000}
# A call whose cap is above this streams (the SDK's guard and the API advise streaming for
# long generations); so do planning and integration, whatever their cap.
STREAM_ABOVE = 8000
STREAMED_ROLES = frozenset({Role.DECOMPOSE, Role.INTEGRATE})
# An answer cut at max_tokens is asked again with a larger cap at most this many times.
CUT_RETRIES = 2
# Empty answers in a row taken as "go on" before they count as invalid.
EMPTY_RETRIES = 2
# What a trimmed conversation keeps of each earlier tool result.
TRIMMED_CHARS = 600
# Why an answer is invalid when the model called tools where its last turn had to answer (the
# turn limit is hit): part of the task's error, which `agency eval` reads as a limit hit.
TURNS_UP = "tools called after the turn limit"


class Conversation(Generic[T]):
    """A structured answer reached through zero or more rounds of tool use.

    Each turn is one paid call, recorded in the ledger. The model may call tools until the
    turn or token limit, then must answer; an answer that does not validate gets
    `REPAIR_ROUNDS` rounds that show it its error. `follow_up` continues the same
    conversation (a reviewer's notes), so its cached prefix keeps being read.

    What was sent is never edited: the conversation only grows (thinking models bind their
    signed thinking to it), and assistant turns go back exactly as they came, thinking
    blocks included. The note that the turns are up travels inside the last tool result, as
    the API reads text after tool results as the end of the turn. An answer cut at
    `max_tokens` is asked again with a larger cap (a cut tool call is never run); an empty
    answer is asked to go on; a conversation about to outgrow the model's context window, or
    refused as too long, answers from a trimmed copy.
    """

    def __init__(self, provider: Provider, *, role: Role, model: str,
                 system: list[TextBlock], prompt: list[Content], schema: type[T],
                 schema_name: str, check: Check | None = None, meter: Meter | None = None,
                 policy: RetryPolicy | None = None, max_tokens: int = 8000,
                 tools: ToolBox | None = None, limits: Limits = Limits(),
                 effort: str | None = None, cache_ttl: Literal["5m", "1h"] = "5m",
                 progress: Callable[[str], None] | None = None,
                 journal: Journal | None = None, batcher: Batcher | None = None) -> None:
        self.provider, self.role, self.model = provider, role, model
        self.journal, self.batcher = journal, batcher
        # What the journal holds that this conversation has not reached yet: replayed in order.
        self.recorded: deque[JournalEntry] = deque(journal.entries() if journal else [])
        self.seq = 0  # the journal row this conversation writes or replays next
        self.journaled = 0  # messages[:journaled] are in the journal
        self.replayed = 0  # turns answered from the journal, not paid again
        self.effort, self.cache_ttl, self.progress = effort, cache_ttl, progress
        self.system, self.schema, self.schema_name = system, schema, schema_name
        self.check, self.meter, self.policy = check, meter, policy or RetryPolicy()
        self.max_tokens, self.tools, self.limits = max_tokens, tools, limits
        self.spec = catalog.spec(model)
        self.messages: list[Message] = [Message(role="user", content=prompt)]
        self.sent = 0  # messages[:sent] went to the API: never edited again
        self.turns = 0
        self.tokens = 0
        self.context = 0  # the last prompt and its answer: what the next prompt starts from
        self.trimmed = False
        self.cap = self._cap(max_tokens)

    def _cap(self, answer: int) -> int:
        """max_tokens for an answer of `answer` tokens, with room to think when the model
        thinks, within the model's output limit."""
        probe = CompletionRequest(role=self.role, model=self.model, system=[], messages=[],
                                  effort=self.effort)
        room = THINKING_ROOM.get(self.effort or "low", 0) if wire.thinks(probe) else 0
        return min(answer + room, self.spec.max_output)

    def follow_up(self, text: str) -> T:
        """Say more (after the last answer) and get a new answer."""
        self.messages.append(Message(role="user", content=[TextBlock(text=text)]))
        return self.answer()

    def answer(self) -> T:
        repairs = cuts = empties = 0
        budget = self.turns + self.limits.turns
        while True:
            final = self._final(budget)
            if final:
                self._note_last_turn()
            try:
                response = self._turn()
            except ContextOverflow:
                self._trim()
                continue
            stop = response.stop_reason
            if stop == "model_context_window_exceeded":
                self._trim()
                continue
            if stop == "max_tokens":  # cut: never kept, never run; asked again with room
                cuts += 1
                if cuts > CUT_RETRIES or self.cap >= self.spec.max_output:
                    raise InvalidAnswer(
                        f"the model's {self.schema_name} was cut at max_tokens ({self.cap}, "
                        f"the most this model gives is {self.spec.max_output}) "
                        f"{cuts} times{_named(response)}")
                self.cap = min(self.cap * 2, self.spec.max_output)
                continue
            cuts = 0
            uses = response.tool_uses
            if not uses and not response.text.strip():  # an empty end_turn: go on
                empties += 1
                if empties <= EMPTY_RETRIES:
                    self._keep(response)
                    self.messages.append(Message(role="user", content=[
                        TextBlock(text=CONTINUE)]))
                    continue
                error = "the answer was empty"
            elif uses and not final and self.tools is not None:
                self._keep(response)
                self._run_tools(uses)
                repairs = empties = 0  # a usable turn: repairs count invalid answers in a row
                continue
            elif uses:  # tool calls where an answer was due: not run
                self._keep(response)
                self.messages.append(Message(role="user", content=[
                    ToolResultBlock(tool_use_id=u.id, content="not run: the turn limit is "
                                    "reached; answer now", is_error=True) for u in uses]))
                error = TURNS_UP
            else:
                self._keep(response)  # a follow-up continues after it
                try:
                    return _parse(response.text, self.schema, self.check)
                except (ValidationError, ValueError, PlanError) as exc:
                    error = _describe(exc)
                self.messages.append(Message(role="user", content=[
                    TextBlock(text=repair_prompt(error))]))
            repairs += 1
            if repairs > REPAIR_ROUNDS:
                raise InvalidAnswer(f"the model's {self.schema_name} was not valid after "
                                    f"{repairs} attempts: {error}{_named(response)}")

    def _final(self, budget: int) -> bool:
        """Whether this turn must answer: no tools, no turns left, the token limit spent, or
        the next prompt and its answer would not fit the model's context window."""
        if self.tools is None or self.trimmed or self.turns + 1 >= budget:
            return True
        if self.limits.tokens is not None and self.tokens >= self.limits.tokens:
            return True
        return self.context + 2 * self.cap > self.spec.context_window

    def _note_last_turn(self) -> None:
        """Tell the model its turns are up, in the message not sent yet: inside its last tool
        result (text after tool results ends the model's turn unanswered), else as its last
        text. A message already sent is left as it was."""
        if self.tools is None or len(self.messages) <= self.sent:
            return
        last = self.messages[-1]
        if last.role != "user" or _says_last_turn(last):
            return
        *before, end = last.content
        if isinstance(end, ToolResultBlock):
            content = [*before, end.model_copy(update={"content": f"{end.content}\n\n{LAST_TURN}"})]
        else:
            content = [*last.content, TextBlock(text=LAST_TURN)]
        self.messages[-1] = last.model_copy(update={"content": content})

    def _keep(self, response: CompletionResponse) -> None:
        """The answer joins the conversation as it came (an empty text block, which the API
        refuses in a request, left out)."""
        content = [b for b in response.content
                   if not (isinstance(b, TextBlock) and not b.text.strip())]
        self.messages.append(Message(role="assistant", content=content or [
            TextBlock(text="(no answer)")]))

    def _turn(self) -> CompletionResponse:
        request = CompletionRequest(
            role=self.role, model=self.model, system=self.system, messages=self._marked(),
            tools=self.tools.tools if self.tools else [],
            schema_name=self.schema_name, json_schema=self.schema.model_json_schema(),
            max_tokens=self.cap, effort=self.effort, cache_ttl=self.cache_ttl,
            stream=self.cap > STREAM_ABOVE or self.role in STREAMED_ROLES)
        key = digest(request)
        new = [m for m in self.messages[self.journaled:] if m.role == "user"]
        self.sent = self.journaled = len(self.messages)
        entry = self._next("turn", key)
        if entry is not None and entry.body is not None:  # answered before: not paid again
            response = CompletionResponse.model_validate_json(entry.body)
            self.replayed += 1
        else:
            if self.batcher is not None and self.journal is not None:
                self.batcher.submit(request, JournalTurn(
                    conv=self.journal.conv, seq=self.seq, digest=key,
                    sent=_MESSAGES.dump_json(new).decode(), body=""))
            response = call(self.provider, request, self.policy, self.meter, self._streamed)
        self.turns += 1
        self.tokens += response.tokens.budgeted
        self.context = response.tokens.input_total + response.tokens.output
        if entry is None and self.meter is not None:
            turn = None if self.journal is None else JournalTurn(
                conv=self.journal.conv, seq=self.seq, digest=key,
                sent=_MESSAGES.dump_json(new).decode(),
                body=response.model_dump_json(exclude={"limits"}))
            self.meter.record(request, response, self.turns, turn)
        self.seq += 1
        return response

    def _run_tools(self, uses: list[ToolUseBlock]) -> None:
        """Answer a turn's tool calls (from the journal when they were answered before: a
        tool's own state, such as the files written, is rebuilt by `replay`), and journal
        the results."""
        assert self.tools is not None
        entry = self._next("tools")
        if entry is not None and entry.body is not None:
            replay = getattr(self.tools, "replay", None)
            for use in uses:
                if replay is not None:
                    replay(use)
            results = Message.model_validate_json(entry.body)
        else:
            results = Message(role="user", content=[self.tools.run(u) for u in uses])
            if self.journal is not None:
                self.journal.tools(self.seq, results.model_dump_json())
        self.messages.append(results)
        self.journaled = len(self.messages)
        self.seq += 1

    def _next(self, kind: str, key: str | None = None) -> JournalEntry | None:
        """The journal's row for this step, when it holds one that matches it; a row that does
        not (the code or the settings changed since) ends the replay: the rest is live."""
        if not self.recorded:
            return None
        entry = self.recorded[0]
        if (entry.seq == self.seq and entry.kind == kind and entry.body is not None
                and (key is None or entry.digest == key)):
            return self.recorded.popleft()
        log.warning("%s: the conversation differs from its journal at row %d (%s); the rest "
                    "is asked again", self.journal.conv if self.journal else "?", self.seq,
                    kind)
        self.recorded.clear()
        if self.journal is not None:
            self.journal.diverged(self.seq)
        return None

    def _streamed(self, tokens: int) -> None:
        if self.progress is not None:
            self.progress(f"calling model: {tokens:,} tokens so far")

    def _trim(self) -> None:
        """The conversation no longer fits the context window: start a new one that holds
        the first prompt and, cut short, what each tool call returned, and must answer."""
        if len(self.messages) <= 1 or self.tools is None:
            raise InvalidAnswer(f"the prompt of the {self.schema_name} is over "
                                f"{self.model}'s context window "
                                f"({self.spec.context_window:,} tokens)")
        first, *rest = self.messages
        results = [b for m in rest for b in m.content if isinstance(b, ToolResultBlock)]
        calls = {b.id: b for m in rest for b in m.content if isinstance(b, ToolUseBlock)}
        lines = []
        for result in results:
            use = calls.get(result.tool_use_id)
            name = use.name if use else "tool"
            lines.append(f"- {name}: {result.content[:TRIMMED_CHARS]}"
                         + (" [...]" if len(result.content) > TRIMMED_CHARS else ""))
        summary = ("Your conversation grew past the context window and was trimmed. What "
                   "your tool calls returned, cut short:\n" + "\n".join(lines or ["- nothing"]))
        self.messages = [first.model_copy(update={"content": [
            *first.content, TextBlock(text=summary), TextBlock(text=LAST_TURN)]})]
        self.sent = self.journaled = 0
        self.context = 0
        self.trimmed = True  # the next turn answers

    def _marked(self) -> list[Message]:
        """With tools, the conversation grows turn by turn: the end of the last two user
        messages are cache breakpoints, so the next turn reads all of it from the cache even
        when a turn added more blocks than the API looks back over (20). (A one-shot call
        marks nothing: a cache write costs more than plain input and would never be read.)"""
        if self.tools is None:
            return self.messages
        users = [i for i, m in enumerate(self.messages) if m.role == "user"][-2:]
        return [_mark_end(m) if i in users else m for i, m in enumerate(self.messages)]


CONTINUE = "Go on: answer with the JSON object."


def _says_last_turn(message: Message) -> bool:
    return any(LAST_TURN in (b.text if isinstance(b, TextBlock) else b.content)
               for b in message.content if isinstance(b, TextBlock | ToolResultBlock))


def _named(response: CompletionResponse) -> str:
    return f" (request {response.request_id})" if response.request_id else ""


def _mark_end(message: Message) -> Message:
    *before, end = message.content
    if not isinstance(end, TextBlock | ToolResultBlock):
        return message
    return message.model_copy(update={"content": [*before, end.model_copy(
        update={"cache": True})]})


def ask_structured(provider: Provider, *, role: Role, model: str, system: str, prompt: str,
                   schema: type[T], schema_name: str, check: Check | None = None,
                   meter: Meter | None = None, policy: RetryPolicy | None = None,
                   max_tokens: int = 8000, effort: str | None = None,
                   progress: Callable[[str], None] | None = None,
                   journal: Journal | None = None) -> T:
    """One structured answer validated by `schema` (and `check`), with bounded repair rounds."""
    return Conversation(
        provider, role=role, model=model, system=[TextBlock(text=system)],
        prompt=[TextBlock(text=prompt)], schema=schema, schema_name=schema_name, check=check,
        meter=meter, policy=policy, max_tokens=max_tokens, effort=effort,
        progress=progress, journal=journal).answer()


def repair_prompt(error: str) -> str:
    return ("Your previous answer was not valid: " + error + "\n"
            "Answer again with only the corrected JSON object, matching the schema exactly.")
