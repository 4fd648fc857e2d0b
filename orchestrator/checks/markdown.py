"""Markdown: every relative link and image points at a file of the project."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from orchestrator.checks.base import Limits, Outcome

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")
INLINE = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(].*?[\"')])?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)


def local_target(root: Path, base: str, link: str) -> tuple[str, bool] | None:
    """Where a link from file `base` points inside `root`, and whether it is there; None for
    a link that is not to a local file (a URL, mail, an anchor on the same page)."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    target = unquote(parts.path)
    relative = Path(target.lstrip("/")) if target.startswith("/") else Path(base).parent / target
    resolved = (root / relative).resolve()
    inside = resolved.is_relative_to(root.resolve())
    shown = resolved.relative_to(root.resolve()).as_posix() if inside else target
    return shown, inside and resolved.exists()


def markdown_links(root: Path, path: str, limits: Limits) -> Outcome:
    text = (root / path).read_text(encoding="utf-8")
    text = CODE.sub("", FENCE.sub("", text))
    links = [*INLINE.findall(text), *REFERENCE.findall(text)]
    found = [(link, local_target(root, path, link)) for link in links]
    local = [(link, t) for link, t in found if t is not None]
    missing = [link for link, (_, there) in local if not there]
    if missing:
        return False, (f"{len(missing)} of {len(local)} relative links do not resolve: "
                       + ", ".join(dict.fromkeys(missing)))
    return True, f"{len(local)} relative links resolve ({len(found) - len(local)} external)"
