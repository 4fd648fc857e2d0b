"""The registry of checkers, keyed by file type (STUB: the helper building issue 19's
checkers replaces this body; the interface below is the contract)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.domain.models import CheckResult


@dataclass(frozen=True)
class Limits:
    """What one check may use: seconds (wall and CPU) per sandboxed run, memory, processes,
    and the browser for HTML pages (None: `chromium` on PATH, then Playwright's own)."""

    seconds: float = 60.0
    memory_mb: int = 1024
    processes: int = 64
    chromium: str | None = None


@dataclass(frozen=True)
class Checked:
    """Every result, in the order of the paths asked for (a file may have several), and a
    PNG screenshot per HTML page that loaded, by its path."""

    results: list[CheckResult]
    screenshots: dict[str, bytes] = field(default_factory=dict)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.ok is False]


def check_files(root: Path, paths: Sequence[str], limits: Limits) -> Checked:
    return Checked([CheckResult(path=p, check="unchecked", ok=None,
                                detail="no checker for this file type") for p in paths])
