"""Prompt-cache accounting as the Messages API does it, for the offline model and tests.

The API caches the prefix of a request (tools, then system, then messages) up to a block
marked `cache_control`, only when that prefix is at least the model's minimum length; below it
nothing is cached and nothing is said. A later request reads the longest cached prefix it
shares, found at its breakpoints or at any of the 20 block boundaries before each. Entries live
five minutes from their last use. Changing the tools invalidates everything; changing
`tool_choice` invalidates the messages; a different output format is a different cache.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from orchestrator.domain.models import Tokens
from orchestrator.domain.pricing import longest_prefix

# Minimum cacheable prefix, in tokens, by model-id prefix (the longest match wins).
MINIMUM_CACHEABLE: dict[str, int] = {
    "claude-opus-4-6": 4096, "claude-opus-4-5": 4096, "claude-haiku-4-5": 4096,
    "claude-sonnet-4-6": 2048, "claude-sonnet-4-5": 1024, "claude-opus-4-1": 1024,
    "claude-opus-4": 1024, "claude-sonnet-4": 1024, "claude-3-7-sonnet": 1024,
    "claude-3-5-sonnet": 1024, "claude-3-5-haiku": 2048, "claude-3-haiku": 2048,
    "claude-3-opus": 1024,
}
DEFAULT_MINIMUM = 4096
LOOKBACK = 20
TTL_SECONDS = 300.0


def minimum_for(model: str) -> int:
    name = longest_prefix(MINIMUM_CACHEABLE, model)
    return DEFAULT_MINIMUM if name is None else MINIMUM_CACHEABLE[name]


def count_tokens(value: Any) -> int:
    """About four characters a token, as English text and JSON run."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return len(text) // 4 + 1


def _blocks(body: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """Every block of the prompt in cache order, with whether it is a breakpoint."""
    out: list[tuple[dict[str, Any], bool]] = []
    for tool in body.get("tools") or []:
        out.append(({"tool": tool}, "cache_control" in tool))
    system = body.get("system") or []
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    for block in system:
        out.append(({"system": block}, "cache_control" in block))
    choice = body.get("tool_choice")
    for index, message in enumerate(body.get("messages") or []):
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for block in content:
            # tool_choice is part of every message block's key: changing it misses them all.
            key = {"role": message["role"], "block": block,
                   **({"tool_choice": choice} if index == 0 else {})}
            out.append((key, "cache_control" in block))
    return out


def _strip(value: Any) -> Any:
    """A block without its cache markers: marking a block does not change its content."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


class PromptCache:
    """One organisation's prompt cache; thread-safe."""

    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[str, float] = {}
        self._lock = threading.Lock()

    def account(self, body: dict[str, Any], output_tokens: int, *,
                record: bool = True) -> Tokens:
        """The usage the API reports for this request, updating the cache (`record=False`:
        what it would report now, leaving the cache as it is)."""
        fmt = json.dumps((body.get("output_config") or {}).get("format"), sort_keys=True)
        digest = hashlib.sha256(f"{body['model']}\n{fmt}".encode())
        hashes: list[str] = []
        ends: list[int] = []
        breaks: list[int] = []
        total = 0
        for i, (block, is_break) in enumerate(_blocks(body)):
            clean = _strip(block)
            digest.update(json.dumps(clean, sort_keys=True).encode())
            hashes.append(digest.copy().hexdigest())
            total += count_tokens(clean)
            ends.append(total)
            if is_break:
                breaks.append(i)
        minimum = minimum_for(body["model"])
        cacheable = [b for b in breaks if ends[b] >= minimum]
        now = time.monotonic()
        with self._lock:
            hit = -1
            for b in breaks:
                for j in range(b, max(-1, b - LOOKBACK), -1):
                    expiry = self._entries.get(hashes[j])
                    if expiry is not None and expiry > now and j > hit:
                        hit = j
                        break
            if hit >= 0 and record:
                self._entries[hashes[hit]] = now + self.ttl
            for b in cacheable:
                if b > hit and record:
                    self._entries[hashes[b]] = now + self.ttl
        read = ends[hit] if hit >= 0 else 0
        last = max(cacheable, default=-1)
        write = ends[last] - read if last > hit else 0
        return Tokens(input=max(total - read - write, 0), output=output_tokens,
                      cache_read=read, cache_write=write)
