"""How the Messages API answers (for tests/fake_anthropic.py): thinking that grows with effort,
answers cut at `max_tokens`, long answers on demand, and the server-sent events of a stream.
"""

from __future__ import annotations

import json
from typing import Any

import jiter

from orchestrator.domain.catalog import spec
from orchestrator.llm.cache import model_tokens
from tests.fake_anthropic_rules import blocks_of, sign

# About how many tokens a request thinks for, by effort.
THINKING_TOKENS = {"low": 40, "medium": 150, "high": 400, "xhigh": 800, "max": 1600}


def fits(model: str, tokens: int) -> int:
    """About how many characters make `tokens` of the model's tokens."""
    raw = tokens if not spec(model).new_tokenizer else int(tokens / 1.3)
    return max(0, raw - 1) * 4


def _cost(model: str, block: dict[str, Any]) -> int:
    """A block's output tokens as the model counts them."""
    if block["type"] == "thinking":
        return model_tokens(model, block["thinking"])
    if block["type"] == "text":
        return model_tokens(model, block["text"])
    return model_tokens(model, json.dumps(block["input"]))


_REASONING = (
    "I should read what the request asks for and what it already holds.",
    "The schema names the fields the answer must have; each one needs its own evidence.",
    "The tool results so far narrow the work to what is still missing.",
    "Weighing the alternatives, the plainest answer that meets every criterion is best.",
    "Before answering I check each acceptance criterion against the draft once more.",
)


def reasoning(model: str, effort: str, subject: str) -> str:
    """The thinking a request of this effort gets: about THINKING_TOKENS[effort] tokens."""
    target = THINKING_TOKENS.get(effort, THINKING_TOKENS["high"])
    parts = [f"The request is about {subject}." if subject else "Let me think this through."]
    n = 0
    while model_tokens(model, " ".join(parts)) < target:
        parts.append(_REASONING[n % len(_REASONING)])
        n += 1
    return " ".join(parts)


def _padding(model: str, tokens: int) -> str:
    chars = fits(model, tokens)
    paragraph = ("\n\nThis section goes into further detail on the same work, with the "
                 "reasoning behind each choice and the evidence for it.")
    return (paragraph * (chars // len(paragraph) + 1))[:chars]


def lengthen(content: list[dict[str, Any]], model: str, answers: int,
              artifacts: int) -> list[dict[str, Any]]:
    """The answer's Markdown (or text) `answers` tokens longer; the first file a
    write_artifact turn writes `artifacts` tokens longer."""
    out, padded = [], False
    for block in content:
        if answers and block["type"] == "text":
            text = block["text"]
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("content"), str):
                data["content"] += _padding(model, answers)
                text = json.dumps(data)
            else:
                text += _padding(model, answers)
            block = {**block, "text": text}
        elif (artifacts and not padded and block["type"] == "tool_use"
              and block["name"] == "write_artifact"):
            data = dict(block["input"])
            data["content"] = str(data.get("content", "")) + _padding(model, artifacts)
            block, padded = {**block, "input": data}, True
        out.append(block)
    return out


def text_after_tool_results(body: dict[str, Any]) -> bool:
    """The last user message puts text after its tool results (the API then tends to answer
    with an empty end_turn)."""
    messages = body.get("messages") or []
    if not messages or messages[-1].get("role") != "user":
        return False
    seen_result = False
    for block in blocks_of(messages[-1]):
        if block.get("type") == "tool_result":
            seen_result = True
        elif block.get("type") == "text" and seen_result:
            return True
    return False


def cut(model: str, content: list[dict[str, Any]], limit: int, secret: bytes
        ) -> tuple[list[dict[str, Any]], int, int, bool]:
    """The answer as `max_tokens` leaves it: (content, output tokens, thinking tokens, cut).
    Thinking comes first; a text is cut at the limit; a tool call cut mid-input keeps what of
    its input had been written (parsed as the SDK parses a partial stream)."""
    out: list[dict[str, Any]] = []
    used = thinking = 0
    for block in content:
        cost = _cost(model, block)
        if used + cost <= limit:
            out.append(block)
            used += cost
            thinking += cost if block["type"] == "thinking" else 0
            continue
        room = limit - used
        chars = fits(model, room)
        if block["type"] == "thinking":
            text = block["thinking"][:chars]
            out.append({"type": "thinking", "thinking": text,
                        "signature": sign(secret, model, text)})
            thinking += room
        elif block["type"] == "text":
            if block["text"][:chars].strip():
                out.append({**block, "text": block["text"][:chars]})
        else:
            written = json.dumps(block["input"])[:chars]
            partial = jiter.from_json(written.encode(), partial_mode=True) if written else {}
            out.append({**block, "input": partial if isinstance(partial, dict) else {}})
        return out, limit, thinking, True
    return out, used, thinking, False


# Faults.rate_limits keys and the header family each one is reported in.


def _chunks(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def sse(message: dict[str, Any], chunk: int = 48) -> list[tuple[str, dict[str, Any]]]:
    """The events the API streams for this message, in order."""
    usage = message["usage"]
    start_usage = {k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens",
                                         "cache_read_input_tokens", "cache_creation")}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {
        "type": "message_start",
        "message": {**message, "content": [], "stop_reason": None, "stop_sequence": None,
                    "stop_details": None,
                    "usage": {**start_usage, "output_tokens": 1}}})]
    for index, block in enumerate(message["content"]):
        def delta(d: dict[str, Any], i: int = index) -> tuple[str, dict[str, Any]]:
            return "content_block_delta", {"type": "content_block_delta", "index": i,
                                           "delta": d}
        if block["type"] == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [delta({"type": "text_delta", "text": c})
                      for c in _chunks(block["text"], chunk)]
        elif block["type"] == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [delta({"type": "thinking_delta", "thinking": c})
                      for c in _chunks(block["thinking"], chunk)]
            deltas.append(delta({"type": "signature_delta", "signature": block["signature"]}))
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            written = json.dumps(block["input"]) if block["input"] else ""
            deltas = [delta({"type": "input_json_delta", "partial_json": c})
                      for c in _chunks(written, chunk)]
        events.append(("content_block_start", {"type": "content_block_start",
                                               "index": index, "content_block": start}))
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        events += deltas
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    if not message["content"]:
        events.append(("ping", {"type": "ping"}))
    events.append(("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None,
                  "stop_details": message.get("stop_details")},
        "usage": {k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens",
                                        "cache_read_input_tokens", "output_tokens",
                                        "output_tokens_details")}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events
