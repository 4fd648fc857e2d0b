"""Prompt-cache accounting as the Messages API does it, for the offline model and tests.

The API caches the prefix of a request (tools, then system, then messages) up to a block
marked `cache_control`, only when that prefix is at least the model's minimum length
(domain/catalog.py); below it nothing is cached and nothing is said. A later request reads the
longest cached prefix it shares, found at its breakpoints or at any of the 20 block boundaries
before each. An entry lives five minutes from its last use, or an hour when its breakpoint
says `"ttl": "1h"` (written at a higher price: usage reports the two lives apart). A new entry
is readable only once the answer that wrote it begins, so requests that arrive together all
write it. Changing the tools invalidates everything; changing `tool_choice` invalidates the
messages; a different output format is a different cache.

Tokens are counted per model: about four characters a token with the older tokenizer, about
30% more with the newer one (catalog.tokens_for).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.catalog import spec, tokens_for
from orchestrator.domain.models import Tokens

LOOKBACK = 20
TTL_SECONDS = 300.0
TTL_1H_SECONDS = 3600.0


def minimum_for(model: str) -> int:
    """The shortest prefix the model's cache takes, in its own tokens."""
    return spec(model).cache_minimum


def count_tokens(value: Any) -> int:
    """About four characters a token, as English text and JSON run (the older tokenizer)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return len(text) // 4 + 1


def model_tokens(model: str, value: Any) -> int:
    """`value`'s tokens as the model counts them."""
    return tokens_for(model, count_tokens(value))


def ttl_of(marker: Any) -> str:
    """A `cache_control` marker's life: "5m" or "1h"."""
    return str(marker.get("ttl", "5m")) if isinstance(marker, dict) else "5m"


def _blocks(body: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
    """Every block of the prompt in cache order, with its breakpoint's life (None: not a
    breakpoint). A top-level `cache_control` (automatic caching) marks the last block."""
    out: list[tuple[dict[str, Any], str | None]] = []

    def mark(item: dict[str, Any]) -> str | None:
        return ttl_of(item["cache_control"]) if "cache_control" in item else None

    for tool in body.get("tools") or []:
        out.append(({"tool": tool}, mark(tool)))
    system = body.get("system") or []
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    for block in system:
        out.append(({"system": block}, mark(block)))
    choice = body.get("tool_choice")
    for index, message in enumerate(body.get("messages") or []):
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for block in content:
            # tool_choice is part of every message block's key: changing it misses them all.
            key = {"role": message["role"], "block": block,
                   **({"tool_choice": choice} if index == 0 else {})}
            out.append((key, mark(block)))
    if body.get("cache_control") and out:
        out[-1] = (out[-1][0], ttl_of(body["cache_control"]))
    return out


def _strip(value: Any) -> Any:
    """A block without its cache markers: marking a block does not change its content."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def prompt_tokens(body: dict[str, Any]) -> int:
    """The whole prompt's tokens as the request's model counts them (what count_tokens
    answers, and what the context window holds)."""
    raw = sum(count_tokens(_strip(block)) for block, _ in _blocks(body))
    return tokens_for(body["model"], raw)


@dataclass
class _Entry:
    readable: float  # when the answer that wrote it began
    expiry: float
    life: float  # seconds each use extends it by


class PromptCache:
    """One organisation's prompt cache; thread-safe."""

    def __init__(self, ttl: float = TTL_SECONDS, ttl_1h: float = TTL_1H_SECONDS) -> None:
        self.ttl = ttl
        self.ttl_1h = ttl_1h
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _life(self, ttl: str) -> float:
        return self.ttl_1h if ttl == "1h" else self.ttl

    def account(self, body: dict[str, Any], output_tokens: int, *, record: bool = True,
                now: float | None = None, begins: float | None = None) -> Tokens:
        """The usage the API reports for this request (counted as `body["model"]` counts),
        updating the cache (`record=False`: what it would report now, leaving the cache as it
        is). `now` is when the request arrives, `begins` when its answer begins (the entries
        it writes are readable from then; both default to now)."""
        model = body["model"]
        fmt = json.dumps((body.get("output_config") or {}).get("format"), sort_keys=True)
        digest = hashlib.sha256(f"{model}\n{fmt}".encode())
        hashes: list[str] = []
        ends: list[int] = []
        breaks: list[tuple[int, str]] = []
        raw = 0
        for i, (block, ttl) in enumerate(_blocks(body)):
            clean = _strip(block)
            digest.update(json.dumps(clean, sort_keys=True).encode())
            hashes.append(digest.copy().hexdigest())
            raw += count_tokens(clean)
            ends.append(tokens_for(model, raw))
            if ttl is not None:
                breaks.append((i, ttl))
        total = ends[-1] if ends else 0
        minimum = minimum_for(model)
        cacheable = [(b, ttl) for b, ttl in breaks if ends[b] >= minimum]
        now = time.monotonic() if now is None else now
        begins = now if begins is None else begins
        with self._lock:
            hit = -1
            for b, _ in breaks:
                for j in range(b, max(-1, b - LOOKBACK), -1):
                    entry = self._entries.get(hashes[j])
                    if (entry is not None and entry.readable <= now < entry.expiry
                            and j > hit):
                        hit = j
                        break
            if hit >= 0 and record:
                entry = self._entries[hashes[hit]]
                entry.expiry = max(entry.expiry, now + entry.life)
            if record:
                for b, ttl in cacheable:
                    if b <= hit:
                        continue
                    life = self._life(ttl)
                    old = self._entries.get(hashes[b])
                    if old is None or old.expiry <= now:
                        self._entries[hashes[b]] = _Entry(begins, begins + life, life)
                    else:  # written again by a sibling before it became readable
                        old.readable = min(old.readable, begins)
                        old.life = max(old.life, life)
                        old.expiry = max(old.expiry, begins + life)
        read = ends[hit] if hit >= 0 else 0
        written, written_1h, start = 0, 0, read
        for b, ttl in cacheable:
            if b <= hit:
                continue
            segment = ends[b] - start
            written += segment
            if ttl == "1h":
                written_1h += segment
            start = ends[b]
        return Tokens(input=max(total - read - written, 0), output=output_tokens,
                      cache_read=read, cache_write=written, cache_write_1h=written_1h)
