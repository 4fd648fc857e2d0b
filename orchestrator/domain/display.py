"""Text from a request or a model, made safe to show: on a terminal (the CLI's consoles,
`orchestrator.interfaces.pipes`) and in Markdown that a viewer may render as HTML (the
deliverable's files). Whoever can submit a request, or sway a model, must not be able to
recolour, clear or retitle the terminal of whoever reads it, nor run script in their viewer.

`status --json` and the store keep the text exact; only what is shown is changed.
"""

from __future__ import annotations

import re

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


# A fenced code block's opening line (CommonMark): up to 3 spaces, then 3 or more backticks
# (an info string without backticks) or tildes.
_FENCE = re.compile(r"^ {0,3}(`{3,}(?=[^`]*$)|~{3,})")


def markdown_safe(text: str) -> str:
    """Markdown that renders no raw HTML: `<` is `&lt;` everywhere but in fenced code blocks,
    where a viewer shows it as it is (an inline code span then shows `&lt;` literally: the
    price of not trusting a guess at where a span ends); control characters visible."""
    lines: list[str] = []
    fence: str | None = None
    for line in visible(text.replace("\r\n", "\n")).split("\n"):
        if fence is None:
            opening = _FENCE.match(line)
            if opening:
                fence = opening.group(1)
                lines.append(line.replace("<", "&lt;"))  # the info string is not code
                continue
            lines.append(line.replace("<", "&lt;"))
            continue
        stripped = line.strip(" ")
        closing = (len(line) - len(line.lstrip(" ")) <= 3 and stripped
                   and set(stripped) == {fence[0]} and len(stripped) >= len(fence))
        if closing:
            fence = None
        lines.append(line)
    return "\n".join(lines)
