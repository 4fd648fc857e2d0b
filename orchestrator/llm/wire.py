"""Requests and responses in the Messages API's JSON shape, without the SDK.

The Anthropic provider sends this; the offline model and the local test server account for
prompt caching on exactly this shape, so all three agree on what a prefix is. (The test
server reads requests back with its own parser, tests/fake_anthropic.py.)

Thinking follows the model (domain/catalog.py): a model that always thinks is sent adaptive
thinking at the request's effort (or "low"); a model that may think thinks when the request
names an effort and is told `disabled` otherwise (a 5.x model thinks when nothing is said);
an older model is sent nothing.
"""

from __future__ import annotations

from typing import Any

from orchestrator.domain.catalog import Thinking, spec
from orchestrator.llm.base import (
    Block,
    CompletionRequest,
    Content,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)

EPHEMERAL = {"type": "ephemeral"}
EPHEMERAL_1H = {"type": "ephemeral", "ttl": "1h"}


def block_json(block: Block, ttl: str = "5m") -> dict[str, Any]:
    """One content block as the API takes it; `cache` becomes a `cache_control` breakpoint
    (with the request's life)."""
    if isinstance(block, TextBlock):
        out: dict[str, Any] = {"type": "text", "text": block.text}
    elif isinstance(block, ToolUseBlock):
        out = {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    elif isinstance(block, ToolResultBlock):
        out = {"type": "tool_result", "tool_use_id": block.tool_use_id,
               "content": block.content}
        if block.is_error:
            out["is_error"] = True
    elif isinstance(block, ThinkingBlock):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    elif isinstance(block, RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    else:
        raise TypeError(f"not a content block: {block!r}")
    if getattr(block, "cache", False):
        out["cache_control"] = EPHEMERAL_1H if ttl == "1h" else EPHEMERAL
    return out


def thinks(request: CompletionRequest) -> bool:
    """Whether the model thinks on this request."""
    mode = spec(request.model).thinking
    return mode is Thinking.ALWAYS or (mode is Thinking.ADAPTIVE and request.effort is not None)


def thinking_json(request: CompletionRequest) -> tuple[dict[str, Any] | None, str | None]:
    """The `thinking` parameter and the effort to send, as the model takes them."""
    mode = spec(request.model).thinking
    if mode is Thinking.ALWAYS:
        return {"type": "adaptive"}, request.effort or "low"
    if mode is Thinking.ADAPTIVE:
        if request.effort is None:
            return {"type": "disabled"}, None
        return {"type": "adaptive"}, request.effort
    return None, None


def request_json(request: CompletionRequest,
                 schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The request's parameters for `messages.create` (`schema`: the format's schema as sent,
    when the caller transformed it).

    The request's cache life marks the system prompt's breakpoints: the prefix a project's
    calls share, read across the whole project. A conversation's own breakpoints are read by
    its next turn, seconds later, and keep the cheaper five-minute life (the API takes
    1-hour entries before 5-minute ones, as here)."""
    params: dict[str, Any] = {
        "model": request.model, "max_tokens": request.max_tokens,
        "system": [block_json(b, request.cache_ttl) for b in request.system],
        "messages": [{"role": m.role, "content": [block_json(b) for b in m.content]}
                     for m in request.messages],
    }
    if request.tools:
        params["tools"] = [{"name": t.name, "description": t.description,
                            "input_schema": t.input_schema} for t in request.tools]
        params["tool_choice"] = {"type": request.tool_choice}
    thinking, effort = thinking_json(request)
    if thinking is not None:
        params["thinking"] = thinking
    output: dict[str, Any] = {}
    if effort is not None:
        output["effort"] = effort
    if request.json_schema is not None:
        output["format"] = {"type": "json_schema", "schema": schema or request.json_schema}
    if output:
        params["output_config"] = output
    return params


def content_from_json(items: list[dict[str, Any]]) -> list[Content]:
    """The response's blocks by type: text, tool use, and thinking kept exactly as returned
    (signature included); any other type (a server tool's) is left out."""
    out: list[Content] = []
    for item in items:
        kind = item.get("type")
        if kind == "text":
            out.append(TextBlock(text=item["text"]))
        elif kind == "tool_use":
            out.append(ToolUseBlock(id=item["id"], name=item["name"], input=item["input"]))
        elif kind == "thinking":
            out.append(ThinkingBlock(thinking=item["thinking"], signature=item["signature"]))
        elif kind == "redacted_thinking":
            out.append(RedactedThinkingBlock(data=item["data"]))
    return out
