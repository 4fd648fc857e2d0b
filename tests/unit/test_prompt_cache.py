"""Prompt-cache accounting behaves as the Messages API does: minimums, breakpoints, lookback."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.llm.cache import PromptCache, minimum_for

MARK = {"type": "ephemeral"}


def body(model: str, system_chars: int, *user: str, mark_last: bool = False,
         fmt: str = "A", choice: str | None = None) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for n, text in enumerate(user):
        block: dict[str, Any] = {"type": "text", "text": text}
        if mark_last and n == len(user) - 1:
            block["cache_control"] = MARK
        messages.append({"role": "user" if n % 2 == 0 else "assistant", "content": [block]})
    out: dict[str, Any] = {
        "model": model, "system": [{"type": "text", "text": "x" * system_chars,
                                    "cache_control": MARK}],
        "messages": messages,
        "output_config": {"format": {"type": "json_schema", "schema": {"title": fmt}}}}
    if choice:
        out["tools"] = [{"name": "t", "description": "", "input_schema": {}}]
        out["tool_choice"] = {"type": choice}
    return out


@pytest.mark.parametrize(("model", "minimum"), [
    ("claude-haiku-4-5", 4096), ("claude-opus-4-5-20251101", 4096), ("claude-opus-4-6", 4096),
    ("claude-sonnet-4-6", 2048), ("claude-sonnet-4-5", 1024)])
def test_minimum_cacheable_length_per_model(model: str, minimum: int) -> None:
    assert minimum_for(model) == minimum


def test_a_prefix_below_the_minimum_is_silently_not_cached() -> None:
    cache = PromptCache()
    short = body("claude-haiku-4-5", 600 * 4, "task")  # ~600 tokens: the old system prompts
    first, second = cache.account(short, 10), cache.account(short, 10)
    assert first.cache_write == first.cache_read == 0
    assert second.cache_read == 0 and second.input == first.input


def test_a_long_prefix_is_written_once_then_read() -> None:
    cache = PromptCache()
    first = cache.account(body("claude-haiku-4-5", 5000 * 4, "task A"), 10)
    second = cache.account(body("claude-haiku-4-5", 5000 * 4, "task B"), 10)
    assert first.cache_write > 5000 and first.cache_read == 0
    assert second.cache_read == first.cache_write and second.cache_write == 0
    assert second.input < 40  # only the task's own text is plain input


def test_another_model_or_output_format_is_another_cache() -> None:
    cache = PromptCache()
    cache.account(body("claude-haiku-4-5", 5000 * 4, "a"), 1)
    assert cache.account(body("claude-sonnet-4-6", 5000 * 4, "a"), 1).cache_read == 0
    assert cache.account(body("claude-haiku-4-5", 5000 * 4, "a", fmt="B"), 1).cache_read == 0


def test_a_growing_conversation_reads_its_previous_turn() -> None:
    cache = PromptCache()
    turns = ["task", "tool call", "tool result " * 50]
    first = cache.account(body("claude-haiku-4-5", 5000 * 4, *turns[:1], mark_last=True), 1)
    second = cache.account(body("claude-haiku-4-5", 5000 * 4, *turns, mark_last=True), 1)
    assert second.cache_read >= first.cache_write  # the whole first turn, found by lookback
    assert second.cache_write > 0  # and the new turn is written for the next one


def test_changing_tool_choice_misses_the_messages_but_not_the_system() -> None:
    cache = PromptCache()
    turns = ["task " * 400]
    auto = cache.account(body("claude-haiku-4-5", 5000 * 4, *turns, mark_last=True,
                              choice="auto"), 1)
    none = cache.account(body("claude-haiku-4-5", 5000 * 4, *turns, mark_last=True,
                              choice="none"), 1)
    assert auto.cache_write > 5000
    assert 5000 < none.cache_read < auto.cache_write


def test_an_entry_is_readable_once_the_answer_that_wrote_it_begins() -> None:
    """Siblings that arrive before the first answer begins all write; a later one reads."""
    cache = PromptCache()
    prompt = body("claude-haiku-4-5", 5000 * 4, "task")
    first = cache.account(prompt, 1, now=100.0, begins=102.0)
    sibling = cache.account(prompt, 1, now=101.0, begins=103.0)
    later = cache.account(prompt, 1, now=102.5)
    assert first.cache_write == sibling.cache_write > 5000
    assert sibling.cache_read == 0
    assert later.cache_read == first.cache_write and later.cache_write == 0


def test_one_hour_writes_are_counted_apart_and_live_an_hour() -> None:
    cache = PromptCache()
    prompt = body("claude-haiku-4-5", 5000 * 4, "task " * 400, mark_last=True)
    prompt["system"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    first = cache.account(prompt, 1, now=0.0)
    assert first.cache_write > first.cache_write_1h > 5000  # the system for an hour
    after = cache.account(prompt, 1, now=1800.0)  # the 5-minute turn is gone, the hour not
    assert after.cache_read == first.cache_write_1h
    assert after.cache_write == first.cache_write - first.cache_write_1h
    assert after.cache_write_1h == 0


def test_tokens_are_counted_as_the_model_counts_them() -> None:
    old = PromptCache().account(body("claude-haiku-4-5", 5000 * 4, "task"), 1)
    new = PromptCache().account(body("claude-haiku-5-5", 5000 * 4, "task"), 1)
    assert new.input_total == pytest.approx(1.3 * old.input_total, rel=0.01)
    assert minimum_for("claude-sonnet-5-5") == 512 and minimum_for("offline") == 4096
