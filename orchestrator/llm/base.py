"""The one seam between Agency and a model: `complete(request) -> response`.

Requests and responses hold typed content blocks (text, tool use, tool result) and the tools
the model may call, as the Messages API does. The offline model reads exactly these (the same
prompts and tool results Claude reads): there is no side channel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, Protocol, TypeAlias, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.domain.constants import Role
from orchestrator.domain.models import ServerLimits, Tokens, Window


class Block(BaseModel):
    model_config = ConfigDict(frozen=True)


__all__ = ["ServerLimits", "Window"]  # rate-limit data lives in the domain; re-exported here


class TextBlock(Block):
    """Text. `cache` marks a prompt-cache breakpoint: the prefix up to here may be cached."""

    type: Literal["text"] = "text"
    text: str
    cache: bool = False


class ToolUseBlock(Block):
    """The model asks for a tool to be run."""

    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(Block):
    """What a tool returned, for the `tool_use` block with the same id."""

    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: str
    is_error: bool = False
    cache: bool = False


class ThinkingBlock(Block):
    """The model's reasoning, signed: passed back exactly as returned (a tool loop's last
    assistant turn must carry it), never shown or edited."""

    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str


class RedactedThinkingBlock(Block):
    """Reasoning the API returned encrypted: passed back as it came."""

    type: Literal["redacted_thinking"] = "redacted_thinking"
    data: str


Content = Annotated[TextBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock
                    | RedactedThinkingBlock, Field(discriminator="type")]


class Message(Block):
    role: Literal["user", "assistant"]
    content: list[Content]

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


class Tool(Block):
    """A tool the model may call: its name, what it is for, and its input's JSON schema."""

    name: str
    description: str
    input_schema: dict[str, Any]


class CompletionRequest(BaseModel):
    """One model call."""

    model_config = ConfigDict(frozen=True)

    role: Role
    model: str
    system: list[TextBlock]
    messages: list[Message]
    tools: list[Tool] = Field(default_factory=list)
    # "none": the tools stay defined (the cached prefix holds them) but may not be called.
    tool_choice: Literal["auto", "none"] = "auto"
    schema_name: str | None = None
    json_schema: dict[str, Any] | None = None
    max_tokens: int = 8000
    # Adaptive thinking at this effort ("low" ... "max"), where the model can think; a model
    # that always thinks thinks at its default effort when this is None.
    effort: str | None = None
    # Stream the answer (long calls): the SDK assembles the final message from the events.
    stream: bool = False
    # The prompt cache's life for the system prompt's breakpoints (the prefix a project's
    # calls share): "5m" or "1h" (priced higher). A conversation's own breakpoints live 5m.
    cache_ttl: Literal["5m", "1h"] = "5m"

    @property
    def system_text(self) -> str:
        return "\n\n".join(b.text for b in self.system)


class CompletionResponse(BaseModel):
    """What the model said, and what it cost."""

    model_config = ConfigDict(frozen=True)

    content: list[Content]
    model: str
    tokens: Tokens
    latency_ms: int
    stop_reason: str | None = None
    limits: ServerLimits | None = None  # what the server said of its rate limits
    request_id: str | None = None  # the API's `request-id` header: what support asks for
    message_id: str | None = None
    # Answered through the Message Batches API (half price): then `request_id` is
    # "<batch id>/<custom id>" (a batch's answers have no request id of their own) and
    # `latency_ms` the batch's time from creation to its end.
    batch: bool = False

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]


# Output tokens generated so far by a streamed call (its progress).
Progress = Callable[[int], None]


class Provider(Protocol):
    """A model backend: the Anthropic API or the offline stand-in."""

    name: str

    def complete(self, request: CompletionRequest,
                 progress: Progress | None = None) -> CompletionResponse: ...

    def count_tokens(self, request: CompletionRequest) -> int:
        """The prompt's input tokens as the model counts them (no call is paid)."""


# One request of a batch: its custom id (unique within the batch, CUSTOM_ID) and the request.
BatchItem: TypeAlias = tuple[str, CompletionRequest]
# What became of it: the answer (`batch=True`), or the error a live call would have raised in
# its place (ModelRefused, ContextOverflow, or TransientModelError: worth sending again, live).
BatchResult: TypeAlias = CompletionResponse | Exception
# The API's pattern for a custom id.
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@runtime_checkable
class BatchProvider(Protocol):
    """A provider that can also send requests as one asynchronous batch at half price (the
    Message Batches API): an optional capability, announced by `supports_batches`."""

    supports_batches: bool

    def submit_batch(self, items: list[BatchItem]) -> str:
        """Send every request as one batch; its id. A refusal of the whole batch raises as a
        live call's error would (ModelRefused, TransientModelError)."""
        ...

    def collect_batch(self, batch_id: str) -> dict[str, BatchResult] | None:
        """None while the batch is processing; once it ended, every custom id's result."""
        ...


def batches(provider: Provider) -> BatchProvider | None:
    """The provider's batch capability, or None when it has none."""
    if getattr(provider, "supports_batches", False) and isinstance(provider, BatchProvider):
        return provider
    return None
