"""The `agency` command line: a thin adapter over the services. It parses, calls, prints.

`app` holds the Typer apps and error handling, `follow` the one way a command follows a project
to its end; the commands are grouped by concern: `projects` (submit and look), `steer` (operator
actions), `service` (workers, Flower, metrics, statistics, the database), `evaluate` (a suite of
requests run and measured).
"""

from __future__ import annotations

from orchestrator.interfaces.cli import evaluate, projects, service, steer
from orchestrator.interfaces.cli.app import cli, main

__all__ = ["cli", "evaluate", "main", "projects", "service", "steer"]
