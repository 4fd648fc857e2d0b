"""The CLI's consoles: text that cannot drive the terminal, and a reader that went away
(`agency status --json | head`) met quietly, as Unix tools do."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment

from orchestrator.domain.display import is_visible, visible

# A Unix tool killed by SIGPIPE exits 128 + 13 in the shell's eyes; Python ignores SIGPIPE and
# gets BrokenPipeError instead, so the CLI says the same by hand.
BROKEN_PIPE_EXIT = 141


def silence_stdout() -> int:
    """Point stdout at /dev/null, so that nothing (the interpreter's flush at exit included)
    writes to the closed pipe again and complains; the exit code to end with."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return BROKEN_PIPE_EXIT


def flush_stdout() -> int | None:
    """Flush what the command printed; BROKEN_PIPE_EXIT (quietly) if the reader is gone."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return silence_stdout()
    return None


class SafeConsole(Console):
    """Rich's console where no text reaches the terminal as a control: every segment of text
    that Rich renders (a table cell, a title, a line printed as it is) has its control
    characters and escape sequences made visible (`orchestrator.domain.display.visible`), so a
    request or a model's answer cannot recolour, clear or retitle the reader's terminal; and no
    markup: `[link=...]` in a request stays text. Rich's own controls (colour, the live
    display's cursor moves) are segments of their own and pass."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("markup", False)
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def render(self, renderable: RenderableType,
               options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or is_visible(segment.text):
                yield segment
            else:
                yield Segment(visible(segment.text), segment.style)


class PipeConsole(SafeConsole):
    """Rich's console, ending as a Unix tool does when its reader goes away (Rich's own exit
    code for it is 1, which the CLI keeps for a failed project)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise SystemExit(silence_stdout())
