"""What the knowledge base sends to the full-text engines: plain words, never user syntax."""

from __future__ import annotations

import re

from orchestrator.domain.models import Plan
from orchestrator.state.knowledge import (
    MAX_QUERY_WORDS,
    MAX_WORD_CHARS,
    fts5_query,
    looks_binary,
    query_words,
    render_plan,
    tsquery,
)


def test_words_are_letters_and_digits_of_any_script() -> None:
    assert query_words('Bakery "site" NEAR(x, y) a:b OR !! (c) snake_case café 面包 v2') == [
        "bakery", "site", "near", "x", "y", "a", "b", "or", "c", "snake", "case", "café",
        "面包", "v2"]


def test_words_are_unique_and_bounded() -> None:
    assert query_words("Bread bread BREAD") == ["bread"]
    assert len(query_words(" ".join(f"w{i}" for i in range(1000)))) == MAX_QUERY_WORDS
    assert query_words("x" * 10_000) == ["x" * MAX_WORD_CHARS]
    assert query_words('"*():&|!\'') == []


def test_queries_are_only_words_and_the_engines_own_operators() -> None:
    words = query_words("""bread' | !x & y:* "near" (AND)""")
    assert tsquery(words) == "bread | x | y | near | and"
    assert fts5_query(words) == '"bread" OR "x" OR "y" OR "near" OR "and"'
    assert not re.search(r"[^\w |]", tsquery(words))


def test_binary_looking_content() -> None:
    assert looks_binary("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert looks_binary("\ufffd\ufffd\x01\x02abc")
    assert not looks_binary("<h1>Bakery</h1>\n\tbody { margin: 0 }\n")
    assert not looks_binary("")


def test_the_plan_reads_as_text() -> None:
    plan = Plan.model_validate({"tasks": [
        {"title": "Wireframes", "agent_type": "ux_designer", "description": "Sketch the pages",
         "deliverables": ["wireframes"], "acceptance_criteria": ["approved by the owner"]},
        {"title": "Copy", "agent_type": "content_writer", "dependencies": [0]}]})
    assert render_plan(plan) == (
        "Task 0: Wireframes (ux_designer)\nSketch the pages\nDeliverables:\n- wireframes\n"
        "Acceptance criteria:\n- approved by the owner\n\nTask 1: Copy (content_writer)")
