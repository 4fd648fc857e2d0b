"""The `agency` Typer apps, the consoles, and the one way an error reaches a person."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from typer._click import exceptions as usage  # typer 0.29 vendors click; pinned

from orchestrator.domain.display import visible
from orchestrator.domain.errors import AgencyError, BadInput
from orchestrator.interfaces.pipes import PipeConsole, SafeConsole, flush_stdout, silence_stdout

cli = typer.Typer(help="Agency: one request in, one finished deliverable out.",
                  no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
db_cli = typer.Typer(help="Database maintenance.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")

out = PipeConsole(soft_wrap=True)
err = SafeConsole(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


def say(text: str) -> None:
    """A line on stdout, printed as it is (no markup, no highlighting), its control characters
    visible (Rich would drop some, BEL among them, before the console could show them)."""
    out.print(visible(text), highlight=False, markup=False)


def warn(text: str) -> None:
    """A line on stderr, printed as it is, its control characters visible."""
    err.print(visible(text), highlight=False, markup=False)


def report(exc: AgencyError) -> int:
    """Print an error as one line; its exit code: 2 for bad input or configuration, else 1."""
    warn(f"agency: error: {exc.message}")
    return 2 if isinstance(exc, BadInput) else 1


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Bad input: one line and exit 2. Other Agency errors: one line and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except AgencyError as exc:
            raise typer.Exit(report(exc)) from None
        except BrokenPipeError:  # `agency ... | head`: the reader has what it wanted
            raise typer.Exit(silence_stdout()) from None

    return wrapper


def main() -> None:
    """The `agency` entry point; an error raised outside a command (settings read at import
    time, say) is one line too."""
    try:
        code = cli(standalone_mode=False)
        code = flush_stdout() or code
    except AgencyError as exc:
        raise SystemExit(report(exc)) from None
    except usage.NoArgsIsHelpError as exc:  # `agency` alone, or a group: its help
        out.print(exc.ctx.get_help() if exc.ctx else exc.format_message(), markup=False,
                  highlight=False)
        raise SystemExit(2) from None
    except usage.UsageError as exc:  # the command line itself: one line, as any bad input
        where = exc.ctx.command_path if exc.ctx else "agency"
        warn(f"agency: error: {exc.format_message()} (see {where} -h)")
        raise SystemExit(2) from None
    except typer.Abort:
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)
