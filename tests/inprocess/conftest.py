"""Fixtures for the in-process tests: an agency with a live worker, per test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.harness import Agency, running_agency
from tests.inprocess.scenarios import Start


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Start]:
    """`start(AGENCY_X="...")`: an agency configured by those variables, stopped after the
    test (before monkeypatch undoes what the test patched, so no task runs unpatched)."""
    with ExitStack() as stack:
        yield lambda **env: stack.enter_context(running_agency(monkeypatch, tmp_path, **env))


@pytest.fixture
def agency(start: Start) -> Agency:
    """An agency with the default settings: every agent type reviewed, two rounds."""
    return start()
