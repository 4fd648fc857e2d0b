"""Model calls with policy: budget admission, bounded retries, the ledger, and structured answers.

A structured answer is validated against a schema (and an optional check); a bad one gets
`REPAIR_ROUNDS` rounds that show the model its error, then `InvalidAnswer`. Transient API
errors are retried here, for every provider, with backoff that honours `retry-after`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.domain.constants import Role
from orchestrator.domain.errors import InvalidAnswer, PlanError, TransientModelError
from orchestrator.domain.prompt_labels import LAST_TURN
from orchestrator.llm.base import (
    CompletionRequest,
    CompletionResponse,
    Content,
    Message,
    Provider,
    TextBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)

if TYPE_CHECKING:
    from orchestrator.llm.ratelimit import Throttle

T = TypeVar("T", bound=BaseModel)
Check = Callable[[Any], object]  # raises when the value breaks a rule

# An invalid answer is shown its error this many times; then it fails for good (InvalidAnswer).
REPAIR_ROUNDS = 2


class Meter(Protocol):
    """What a model call reports to, and asks permission of."""

    def admit(self) -> None:
        """Raise BudgetExhausted when the project may make no more calls."""

    def record(self, request: CompletionRequest, response: CompletionResponse,
               attempt: int) -> None:
        """One ledger row per answered call."""

    def lost(self, request: CompletionRequest, attempt: int, reason: str,
             request_id: str | None) -> None:
        """A call that gave no answer but may have been billed (it timed out, or the
        connection broke, while the model generated): a ledger row without tokens."""

    def retrying(self, attempt: int, reason: str, delay: float) -> None:
        """A call failed transiently and will be retried after `delay` seconds."""

    def throttled(self, waited: float) -> None:
        """A call waited `waited` seconds for the shared rate limit (not a call of its own)."""


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
         meter: Meter | None) -> CompletionResponse:
    """One answered call: admitted by the budget and the shared rate limit, transient failures
    retried with backoff."""
    for attempt in range(1, policy.attempts + 1):
        if meter is not None:
            meter.admit()
        try:
            return _attempt(provider, request, policy.throttle, meter)
        except TransientModelError as exc:
            if attempt == policy.attempts:
                raise TransientModelError(
                    f"model API unavailable after {attempt} attempts: {exc.message}",
                    exc.retry_after) from exc
            delay = policy.delay(attempt, exc.retry_after)
            if meter is not None:
                meter.retrying(attempt, exc.message, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _attempt(provider: Provider, request: CompletionRequest, throttle: Throttle | None,
             meter: Meter | None) -> CompletionResponse:
    """One try, once the rate limit admits it; what it used (or the 429) settles the limit."""
    if throttle is None:
        return provider.complete(request)
    admission = throttle.admit(request)
    if admission.waited > 0 and meter is not None:
        meter.throttled(admission.waited)
    try:
        response = provider.complete(request)
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
    The last turn must answer."""

    turns: int = 1
    tokens: int | None = None


class Conversation(Generic[T]):
    """A structured answer reached through zero or more rounds of tool use.

    Each turn is one paid call, recorded in the ledger. The model may call tools until the
    turn or token limit, then must answer; an answer that does not validate gets
    `REPAIR_ROUNDS` rounds that show it its error. `follow_up` continues the same
    conversation (a reviewer's notes), so its cached prefix keeps being read.
    """

    def __init__(self, provider: Provider, *, role: Role, model: str,
                 system: list[TextBlock], prompt: list[Content], schema: type[T],
                 schema_name: str, check: Check | None = None, meter: Meter | None = None,
                 policy: RetryPolicy | None = None, max_tokens: int = 8000,
                 tools: ToolBox | None = None, limits: Limits = Limits(),
                 effort: str | None = None, cache_ttl: Literal["5m", "1h"] = "5m") -> None:
        self.provider, self.role, self.model = provider, role, model
        self.effort, self.cache_ttl = effort, cache_ttl
        self.system, self.schema, self.schema_name = system, schema, schema_name
        self.check, self.meter, self.policy = check, meter, policy or RetryPolicy()
        self.max_tokens, self.tools, self.limits = max_tokens, tools, limits
        self.messages: list[Message] = [Message(role="user", content=prompt)]
        self.turns = 0
        self.tokens = 0

    def follow_up(self, text: str) -> T:
        """Say more (after the last answer) and get a new answer."""
        self.messages.append(Message(role="user", content=[TextBlock(text=text)]))
        return self.answer()

    def answer(self) -> T:
        repairs = 0
        budget = self.turns + self.limits.turns
        while True:
            final = (self.tools is None or self.turns + 1 >= budget
                     or (self.limits.tokens is not None and self.tokens >= self.limits.tokens))
            if final and self.tools is not None:
                self._say_last_turn()
            response = self._turn()
            uses = response.tool_uses
            if uses and not final and self.tools is not None:
                self.messages.append(Message(role="user", content=[
                    self.tools.run(u) for u in uses]))
                repairs = 0  # a usable turn: repair rounds count invalid answers in a row
                continue
            if uses:  # tool calls where an answer was due: not run
                self.messages.append(Message(role="user", content=[
                    ToolResultBlock(tool_use_id=u.id, content="not run: the turn limit is "
                                    "reached; answer now", is_error=True) for u in uses]))
                error = "tools called after the turn limit"
            else:
                try:
                    return _parse(response.text, self.schema, self.check)
                except (ValidationError, ValueError, PlanError) as exc:
                    error = _describe(exc)
                self.messages.append(Message(role="user", content=[
                    TextBlock(text=repair_prompt(error))]))
            repairs += 1
            if repairs > REPAIR_ROUNDS:
                raise InvalidAnswer(f"the model's {self.schema_name} was not valid after "
                                    f"{repairs} attempts: {error}")

    def _say_last_turn(self) -> None:
        """Add the last-turn note to the user's message (once)."""
        last = self.messages[-1]
        if last.role == "user" and LAST_TURN not in last.text:
            self.messages[-1] = last.model_copy(update={
                "content": [*last.content, TextBlock(text=LAST_TURN)]})

    def _turn(self) -> CompletionResponse:
        request = CompletionRequest(
            role=self.role, model=self.model, system=self.system, messages=self._marked(),
            tools=self.tools.tools if self.tools else [],
            schema_name=self.schema_name, json_schema=self.schema.model_json_schema(),
            max_tokens=self.max_tokens, effort=self.effort, cache_ttl=self.cache_ttl)
        response = call(self.provider, request, self.policy, self.meter)
        self.turns += 1
        self.tokens += response.tokens.budgeted
        if self.meter is not None:
            self.meter.record(request, response, self.turns)
        # The API refuses an empty text block in a request: drop any the answer held.
        content = [b for b in response.content
                   if not (isinstance(b, TextBlock) and not b.text.strip())]
        content = content or [TextBlock(text="(empty answer)")]
        self.messages.append(Message(role="assistant", content=content))
        return response

    def _marked(self) -> list[Message]:
        """With tools, the conversation grows turn by turn: the end of the last two user
        messages are cache breakpoints, so the next turn reads all of it from the cache even
        when a turn added more blocks than the API looks back over (20). (A one-shot call
        marks nothing: a cache write costs more than plain input and would never be read.)"""
        if self.tools is None:
            return self.messages
        users = [i for i, m in enumerate(self.messages) if m.role == "user"][-2:]
        return [_mark_end(m) if i in users else m for i, m in enumerate(self.messages)]


def _mark_end(message: Message) -> Message:
    *before, end = message.content
    if not isinstance(end, TextBlock | ToolResultBlock):
        return message
    return message.model_copy(update={"content": [*before, end.model_copy(
        update={"cache": True})]})


def ask_structured(provider: Provider, *, role: Role, model: str, system: str, prompt: str,
                   schema: type[T], schema_name: str, check: Check | None = None,
                   meter: Meter | None = None, policy: RetryPolicy | None = None,
                   max_tokens: int = 8000) -> T:
    """One structured answer validated by `schema` (and `check`), with bounded repair rounds."""
    return Conversation(
        provider, role=role, model=model, system=[TextBlock(text=system)],
        prompt=[TextBlock(text=prompt)], schema=schema, schema_name=schema_name, check=check,
        meter=meter, policy=policy, max_tokens=max_tokens).answer()


def repair_prompt(error: str) -> str:
    return ("Your previous answer was not valid: " + error + "\n"
            "Answer again with only the corrected JSON object, matching the schema exactly.")
