"""What every checker shares: the limits it runs under and the shape of what it finds."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.domain.models import CheckResult

# What one checker says of one file: ok (None: not checked) and a short, specific detail.
Outcome = tuple[bool | None, str]


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


def unchecked(why: str) -> Outcome:
    return None, why
