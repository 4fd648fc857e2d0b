"""Checks by what an artifact is: run what the agents wrote, and say what is wrong with it.

`check_files(root, paths, limits)` checks each of `paths` (relative to `root`, a temporary copy
of the project's artifacts) with the checkers registered for its type (registry.py), in
parallel, and returns every result (domain.models.CheckResult) with the pages' screenshots. A
file with no checker, or whose checker's tool is missing, is recorded as unchecked (`ok`
None), never as passed. docs/checks.md lists the checks.
"""

from orchestrator.checks.base import Checked, Limits
from orchestrator.checks.registry import check_files

__all__ = ["Checked", "Limits", "check_files"]
