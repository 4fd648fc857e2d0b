"""Text from a request or a model, shown: nothing in it drives a terminal or a viewer."""

from __future__ import annotations

import io

import pytest
from rich.table import Table
from rich.text import Text

from orchestrator.domain.display import markdown_safe, visible
from orchestrator.interfaces.pipes import PipeConsole

HOSTILE = ("Bakery \x1b[31mred\x1b[0m \x1b]0;owned\x07 \x1b[2J \x9b31m \u202eevil\u202c "
           "\r overwrite \x08 [link=http://evil.example]click[/link]")


def test_visible_escapes_every_control_and_bidi_override_and_is_idempotent() -> None:
    shown = visible(HOSTILE)
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in shown)
    assert "\u202e" not in shown and "\\u202e" in shown
    assert "\\x1b[31mred" in shown  # still readable for what it is
    assert visible(shown) == shown
    assert visible("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


def test_the_consoles_show_no_escape_from_text_and_no_markup() -> None:
    console = PipeConsole(file=io.StringIO(), width=100, force_terminal=False, soft_wrap=True)
    table = Table(title=HOSTILE)
    table.add_column("title")
    table.add_row(Text(HOSTILE))
    table.add_row(HOSTILE)  # a plain string cell: no markup either
    console.print(table)
    console.print(HOSTILE, highlight=False)
    written = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b" not in written and "\x9b" not in written and "\u202e" not in written
    assert "\x07" not in written and "\r" not in written
    assert "[link=http://evil.example]click[/link]" in written  # text, not a hyperlink


def test_markdown_renders_no_raw_html_outside_code_and_keeps_code() -> None:
    text = ("# Title <img src=x onerror=alert(1)>\n"
            "A `<b>span</b>` and <script>alert(1)</script>\n"
            "```html\n<div class=\"page\">\x1b[2J</div>\n```\n"
            "after <iframe>\n"
            "~~~~\n<p>tilde</p>\n~~~\nstill code <kept>\n~~~~\n"
            "    <p>an indented code block</p>\n"
            "```` ```\nno fence (a backtick in the info string) <x>\n")
    safe = markdown_safe(text)
    lines = safe.split("\n")
    assert lines[0] == "# Title &lt;img src=x onerror=alert(1)>"
    assert "&lt;script>" in lines[1] and "<b>" not in lines[1]
    assert lines[3] == '<div class="page">\\x1b[2J</div>'  # code stays code; ESC shown
    assert lines[5] == "after &lt;iframe>"
    assert lines[7] == "<p>tilde</p>" and lines[9] == "still code <kept>"
    assert lines[11] == "    <p>an indented code block</p>"
    assert "no fence (a backtick in the info string) &lt;x>" in safe
    assert "\x1b" not in safe
    assert markdown_safe("a\r\nb") == "a\nb"


@pytest.mark.parametrize("text", [
    "```\n<a>\n```\t\n<script>x</script>\n",  # a tab after the closing fence closes it
    "- item\n  ```\n  code <b>\n- next\n<script>1</script>\n",  # the list item ends the fence
    "> ```\n> <q>\n<script>2</script>\n",  # so does the end of a quote
    "<pre>\n```\n<script>3</script>\n```\n</pre>\n",  # an HTML block around a fence
    "<div>\n    <script>4</script>\n",  # not an indented code block: the HTML block's
])
def test_no_corner_of_commonmark_lets_html_through(text: str) -> None:
    from markdown_it import MarkdownIt

    safe = markdown_safe(text)
    tokens = MarkdownIt("commonmark").parse(safe)
    assert not [t for t in tokens if t.type == "html_block"], safe
    assert not [c for t in tokens for c in t.children or [] if c.type == "html_inline"], safe
    assert "<script>" not in MarkdownIt("commonmark").render(safe)


def test_a_workers_log_lines_show_no_control_characters() -> None:
    """Celery's logger setup (its after_setup_logger signal) gives every handler the filter."""
    import logging

    from celery import signals

    from orchestrator.interfaces.celery_app import VisibleLog

    stream = io.StringIO()
    logger = logging.getLogger("agency-test-visible")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        signals.after_setup_logger.send(sender=None, logger=logger, loglevel=logging.INFO,
                                        logfile=None, format="", colorize=False)
        assert any(isinstance(f, VisibleLog) for f in handler.filters)
        logger.warning("task %r failed: %s", "Bakery \x1b]0;owned\x07", "\x1b[2J gone")
        written = stream.getvalue()
        assert "\x1b" not in written and "\x07" not in written
        assert "\\x1b]0;owned" in written and "\\x1b[2J gone" in written
    finally:
        logger.removeHandler(handler)
