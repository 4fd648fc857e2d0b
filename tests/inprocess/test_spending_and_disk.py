"""What a person must not have to clean up by hand: a cancel that goes on spending, and a
full disk under the output folder (issue 22)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.domain.constants import ProjectStatus, Role, TaskStatus
from orchestrator.domain.errors import BadInput
from orchestrator.llm.base import CompletionRequest, CompletionResponse, Provider
from orchestrator.services.operator import Operator
from orchestrator.services.reconciler import reconcile
from tests.conftest import IN_CI
from tests.harness import DEADLINE, Agency, Asking, wait_for
from tests.inprocess.scenarios import ODD, Start

ENDS = (ProjectStatus.NEEDS_ATTENTION, ProjectStatus.COMPLETED, ProjectStatus.FAILED)


class Counting:
    """The model, counting the calls that start; the first agent call of `hold` (a task
    title) waits inside the call until released: a call in flight."""

    name = "counting"

    def __init__(self, model: Provider, hold: str | None = None) -> None:
        self.model, self.hold = model, hold
        self.started: list[Role] = []
        self.entered, self.release = threading.Event(), threading.Event()

    def complete(self, request: CompletionRequest, progress: object = None) -> CompletionResponse:
        self.started.append(request.role)
        first = request.messages[0].text if request.messages else ""
        if (self.hold and request.role is Role.AGENT and not self.entered.is_set()
                and f"Your task: {self.hold}\n" in first):
            self.entered.set()
            self.release.wait(DEADLINE)
        return self.model.complete(request)


def test_after_cancel_no_model_call_starts(agency: Agency) -> None:
    model = Counting(agency.rt.provider, hold="Brief")
    agency.rt.provider = model
    project_id = agency.submit(plan=ODD, project_type="website")
    assert model.entered.wait(DEADLINE), "the brief's first call never started"
    Operator(agency.rt, agency.app, "tester").cancel(project_id)
    at_cancel = len(model.started)
    model.release.set()  # the call in flight finishes...
    wait_for("the brief to stop", lambda: agency.rt.store.tasks(project_id)[0].status
             is TaskStatus.CANCELLED)
    agency.drain()
    # ... is recorded, and nothing starts after it: no review, no revision, no new turn.
    assert len(model.started) == at_cancel
    brief, copy = agency.rt.store.tasks(project_id)
    assert copy.status is TaskStatus.CANCELLED and copy.attempts == 0
    assert [c.task_id for c in agency.rt.store.calls(project_id)
            if c.entry.role is Role.AGENT] == [brief.id]
    said = [e["detail"] for e in agency.rt.store.events(project_id) if e["kind"] == "cancel"]
    assert said == ["stopped before its next model call; 1 call(s) of this task were in "
                    "flight at the cancel and finished (recorded)"]
    assert agency.rt.store.project(project_id).status is ProjectStatus.CANCELLED


def test_a_cancel_ends_a_task_parked_on_a_question_at_once(agency: Agency) -> None:
    asking = Asking(agency.rt.provider, "Brief", "Which tone?", "friendly")
    agency.rt.provider = asking
    project_id = agency.submit(plan=ODD, project_type="website")
    wait_for("the question", lambda: agency.rt.store.open_questions(project_id))
    brief = agency.rt.store.tasks(project_id)[0]
    assert brief.status is TaskStatus.NEEDS_INPUT  # parked: no attempt runs it
    model = Counting(asking)
    agency.rt.provider = model
    Operator(agency.rt, agency.app, "tester").cancel(project_id)
    assert [t.status for t in agency.rt.store.tasks(project_id)] == [TaskStatus.CANCELLED] * 2
    agency.drain()
    assert model.started == []  # nothing woke it to spend
    with pytest.raises(BadInput):
        Operator(agency.rt, agency.app, "tester").answer(brief.id, "warm")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs of the test's own (root mounts it; a session and CI run as root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs here: {mounted.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the file that does it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_a_full_disk_needs_attention_then_completes_by_itself(start: Start,
                                                              small_disk: Path) -> None:
    agency = start(AGENCY_OUTPUT_DIR=str(small_disk))
    model = Counting(agency.rt.provider)
    agency.rt.provider = model
    filler = fill(small_disk)
    project_id = agency.submit(plan=ODD, project_type="website")
    project = agency.wait(project_id, *ENDS)
    folder = small_disk / project_id
    assert project.status is ProjectStatus.NEEDS_ATTENTION, project.error
    assert project.deliverable is not None  # stored: nothing to pay again
    error = project.error or ""
    assert str(folder) in error and "free there" in error and "needed" in error
    assert f"agency resume {project_id} --output DIR" in error
    # Nothing half-written: no folder, no staging folder beside it.
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
    calls = len(model.started)
    assert reconcile(agency.rt, agency.app).written == []  # still full: still waiting
    assert agency.rt.store.project(project_id).status is ProjectStatus.NEEDS_ATTENTION
    filler.unlink()  # room again
    assert reconcile(agency.rt, agency.app).written == [project_id]
    project = agency.rt.store.project(project_id)
    assert project.status is ProjectStatus.COMPLETED and project.error is None
    assert (folder / "deliverable.md").is_file() and (folder / "report.html").is_file()
    assert len(list((folder / "tasks").glob("*.md"))) == 2
    assert len(model.started) == calls  # written from the store: no model call


def test_resume_writes_a_stored_deliverable_into_a_new_folder(start: Start, small_disk: Path,
                                                              tmp_path: Path) -> None:
    agency = start(AGENCY_OUTPUT_DIR=str(small_disk))
    model = Counting(agency.rt.provider)
    agency.rt.provider = model
    fill(small_disk)
    project_id = agency.submit(plan=ODD, project_type="website")
    assert agency.wait(project_id, *ENDS).status is ProjectStatus.NEEDS_ATTENTION
    calls = len(model.started)
    said = Operator(agency.rt, agency.app, "tester").resume(project_id,
                                                           output=tmp_path / "elsewhere")
    folder = (tmp_path / "elsewhere" / project_id).resolve()
    assert said == f"completed: its deliverable written to {folder}"
    project = agency.rt.store.project(project_id)
    assert project.status is ProjectStatus.COMPLETED and project.output_dir == str(folder)
    assert (folder / "deliverable.md").is_file()
    assert len(model.started) == calls
