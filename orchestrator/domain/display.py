"""Text from a request or a model, made safe to show: on a terminal (the CLI's consoles,
`orchestrator.interfaces.pipes`) and in Markdown that a viewer may render as HTML (the
deliverable's files). Whoever can submit a request, or sway a model, must not be able to
recolour, clear or retitle the terminal of whoever reads it, nor run script in their viewer.

`status --json` and the store keep the text exact; only what is shown is changed.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

# C0 controls but tab and newline (ESC, BEL, CR, backspace, ...), DEL, the C1 controls
# (0x9b is a one-byte CSI to some terminals, 0x9d an OSC), and the bidirectional embeddings,
# overrides and isolates (text shown in another order than it is, "Trojan Source").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """Every control character and bidi override as its escape (`\\x1b` for ESC): printable,
    inert, and still there for whoever reads it. Idempotent."""
    return _UNSAFE.sub(_escape, text)


def is_visible(text: str) -> bool:
    return _UNSAFE.search(text) is None


_PARSER = MarkdownIt("commonmark")
_CODE = frozenset({"fence", "code_block"})


def _code_lines(text: str) -> set[int]:
    """The lines (0-based) inside fenced or indented code blocks, as a CommonMark parser
    reads the text: containers (lists, quotes) and fences closed by a container's end
    included."""
    lines: set[int] = set()
    for token in _PARSER.parse(text):
        if token.type in _CODE and token.map:
            first, end = token.map
            if token.type == "fence":  # the opening line and its info string are not code
                first += 1
            lines.update(range(first, end))
    return lines


def _renders_html(text: str) -> bool:
    tokens = _PARSER.parse(text)
    return any(t.type == "html_block" or any(c.type == "html_inline" for c in t.children or [])
               for t in tokens)


def markdown_safe(text: str) -> str:
    """Markdown that renders no raw HTML: `<` is `&lt;` everywhere but inside code blocks
    (where a viewer shows it as it is; an inline code span shows `&lt;` literally), control
    characters visible. The result is parsed again: should any HTML remain (a parser's
    corner this one reads otherwise), every `<` is escaped, code blocks too."""
    text = visible(text.replace("\r\n", "\n"))
    code = _code_lines(text)
    lines = text.split("\n")
    safe = "\n".join(line if n in code else line.replace("<", "&lt;")
                      for n, line in enumerate(lines))
    return safe if not _renders_html(safe) else text.replace("<", "&lt;")
