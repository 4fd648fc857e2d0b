"""Requests and responses in the Messages API's JSON shape, without the SDK.

The Anthropic provider sends this; the offline model and the local test server account for
prompt caching on exactly this shape, so all three agree on what a prefix is. (The test
server reads requests back with its own parser, tests/fake_anthropic.py.)
"""

from __future__ import annotations

from typing import Any

from orchestrator.llm.base import (
    Block,
    CompletionRequest,
    Content,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)

EPHEMERAL = {"type": "ephemeral"}


def block_json(block: Block) -> dict[str, Any]:
    """One content block as the API takes it; `cache` becomes a `cache_control` breakpoint."""
    if isinstance(block, TextBlock):
        out: dict[str, Any] = {"type": "text", "text": block.text}
    elif isinstance(block, ToolUseBlock):
        out = {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    elif isinstance(block, ToolResultBlock):
        out = {"type": "tool_result", "tool_use_id": block.tool_use_id,
               "content": block.content}
        if block.is_error:
            out["is_error"] = True
    else:
        raise TypeError(f"not a content block: {block!r}")
    if getattr(block, "cache", False):
        out["cache_control"] = EPHEMERAL
    return out


def request_json(request: CompletionRequest,
                 schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The request's parameters for `messages.create` (`schema`: the format's schema as sent,
    when the caller transformed it)."""
    params: dict[str, Any] = {
        "model": request.model, "max_tokens": request.max_tokens,
        "system": [block_json(b) for b in request.system],
        "messages": [{"role": m.role, "content": [block_json(b) for b in m.content]}
                     for m in request.messages],
    }
    if request.tools:
        params["tools"] = [{"name": t.name, "description": t.description,
                            "input_schema": t.input_schema} for t in request.tools]
        params["tool_choice"] = {"type": request.tool_choice}
    if request.json_schema is not None:
        params["output_config"] = {"format": {
            "type": "json_schema", "schema": schema or request.json_schema}}
    return params


def content_from_json(items: list[dict[str, Any]]) -> list[Content]:
    """The response's text and tool-use blocks (others, such as thinking, are dropped)."""
    out: list[Content] = []
    for item in items:
        if item.get("type") == "text":
            out.append(TextBlock(text=item["text"]))
        elif item.get("type") == "tool_use":
            out.append(ToolUseBlock(id=item["id"], name=item["name"], input=item["input"]))
    return out
