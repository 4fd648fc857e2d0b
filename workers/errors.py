"""Errors of the workers package."""

from __future__ import annotations

from orchestrator.errors import AgencyError


class WorkerError(AgencyError):
    """A worker could not do its task."""


class Skipped(WorkerError):
    """The task will not run: its project or the task itself is no longer runnable."""
