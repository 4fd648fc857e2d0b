"""A reader that went away (`agency status --json | head`): quiet, as Unix tools are."""

from __future__ import annotations

import os
import sys

from rich.console import Console

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


class PipeConsole(Console):
    """Rich's console, ending as a Unix tool does when its reader goes away (Rich's own exit
    code for it is 1, which the CLI keeps for a failed project)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise SystemExit(silence_stdout())
