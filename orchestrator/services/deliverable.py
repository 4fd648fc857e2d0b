"""Write a project's deliverable and task outputs into its output folder."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from orchestrator.domain.display import markdown_safe
from orchestrator.domain.models import (
    CheckResult,
    Deliverable,
    DeliverableSection,
    ProjectRecord,
    ReviewRecord,
    TaskRecord,
)
from orchestrator.state.artifacts import (
    ARTIFACTS,
    PlacedArtifact,
    place_artifacts,
    write_artifact,
)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "task"


def _sections(title: str, sections: list[DeliverableSection]) -> list[str]:
    lines = [f"## {title}", ""]
    for section in sections:
        lines += [f"### {section.title}", "", *(f"- {i}" for i in section.items), ""]
    return lines


def _bullets(title: str, items: list[str]) -> list[str]:
    return [f"## {title}", "", *(f"- {i}" for i in items), ""]


def _code(text: str) -> str:
    """`text` as a Markdown code span, whatever backticks or control characters it holds."""
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    fence = "`" * (max(map(len, re.findall("`+", shown)), default=0) + 1)
    return f"{fence} {shown} {fence}" if "`" in shown or not shown.strip() else f"`{shown}`"


def _artifact_line(placed: PlacedArtifact) -> str:
    link = quote((ARTIFACTS / placed.path).as_posix())
    line = f"- [{_code(placed.path.as_posix())}]({link})"
    if placed.renamed:
        line += f" (proposed as {_code(placed.proposed)})"
    return f"{line}, from {placed.task}"


def _artifact_lines(artifacts: list[PlacedArtifact]) -> list[str]:
    if not artifacts:
        return []
    return ["", "## Artifacts", "", *map(_artifact_line, artifacts)]


def review_lines(tasks: list[TaskRecord], reviews: dict[str, list[ReviewRecord]]) -> list[str]:
    """Each reviewed task's verdicts, rounds in order; open notes of an unpassed last round."""
    lines: list[str] = []
    for task in tasks:
        rounds = reviews.get(task.id, [])
        if not rounds:
            continue
        trail = ", then ".join(f"{r.verdict} ({r.reviewer})" for r in rounds)
        line = f"- {task.title}: {trail}"
        last = rounds[-1]
        if last.verdict != "pass":
            open_notes = "; ".join(f"{c.criterion}: {c.note}" for c in last.notes if not c.met)
            line += f"; accepted after the last round with open notes: {open_notes}"
        lines.append(line)
    return ["## Reviews", "", *lines, ""] if lines else []


CHECKS = PurePosixPath("checks")  # the pages' screenshots, by artifact path
SAID = {True: "passed", False: "FAILED", None: "not checked"}


def latest_checks(tasks: list[TaskRecord], reviews: dict[str, list[ReviewRecord]]
                  ) -> dict[str, list[CheckResult]]:
    """Each checked task's checks as its latest round found them."""
    return {t.id: reviews[t.id][-1].checks for t in tasks
            if reviews.get(t.id) and reviews[t.id][-1].checks}


def check_counts(checks: dict[str, list[CheckResult]]) -> dict[str, int]:
    every = [c for found in checks.values() for c in found]
    return {"total": len(every), "passed": sum(c.ok is True for c in every),
            "failed": sum(c.ok is False for c in every),
            "unchecked": sum(c.ok is None for c in every)}


def screenshot_path(artifact: str) -> PurePosixPath:
    """Where a page's screenshot is written, relative to the output folder."""
    return CHECKS / f"{artifact}.png"


def check_lines(tasks: list[TaskRecord], reviews: dict[str, list[ReviewRecord]],
                screenshots: Collection[str] = ()) -> list[str]:
    """The Checks section: every task's files as its last round's checks found them; a
    failing check after the last round stays open here."""
    checks = latest_checks(tasks, reviews)
    if not checks:
        return []
    n = check_counts(checks)
    lines = ["## Checks", "", f"{n['passed']} of {n['total']} checks passed, {n['failed']} "
             f"failed (open), {n['unchecked']} files not checked.", ""]
    for task in tasks:
        for c in checks.get(task.id, []):
            line = (f"- {SAID[c.ok]}: {_code(c.path)} ({c.check}), from {task.title}: "
                    f"{c.detail}")
            if c.path in screenshots:
                line += f" [screenshot]({quote(screenshot_path(c.path).as_posix())})"
            lines.append(line)
    return [*lines, ""]


def render_markdown(project: ProjectRecord, deliverable: Deliverable, tasks: list[TaskRecord],
                    artifacts: list[PlacedArtifact] | None = None,
                    reviews: dict[str, list[ReviewRecord]] | None = None,
                    screenshots: Collection[str] = ()) -> str:
    """The deliverable as Markdown; `artifacts` default to where `write_outputs` puts them."""
    lines = [f"# Deliverable: {project.request}", "",
             f"Project `{project.id}` ({project.project_type or 'custom'}), "
             f"{len(tasks)} tasks.", "", "## Executive summary", "",
             deliverable.executive_summary, ""]
    lines += _sections("Key deliverables", deliverable.key_deliverables)
    lines += _sections("Technical details", deliverable.technical_details)
    lines += _bullets("Next steps", deliverable.next_steps)
    lines += _bullets("Success metrics", deliverable.success_metrics)
    lines += _sections("Appendix", deliverable.appendix)
    lines += review_lines(tasks, reviews or {})
    lines += check_lines(tasks, reviews or {}, screenshots)
    lines += ["## Task outputs", ""]
    lines += [f"- [{t.title}](tasks/{task_filename(t)}) ({t.agent_type.value})" for t in tasks]
    lines += _artifact_lines(place_artifacts(tasks) if artifacts is None else artifacts)
    return "\n".join(lines) + "\n"


def task_filename(task: TaskRecord) -> str:
    return f"{task.index:02d}-{slug(task.title)}.md"


class UnwrittenOutputs(OSError):
    """The output folder could not be written (a full disk, a quota, a read-only mount): the
    folder as it was is left alone, and nothing half-written stays beside it."""

    def __init__(self, root: Path, cause: OSError, needed: int) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.root, self.needed = root, needed
        self.free = _free_bytes(root)

    def describe(self) -> str:
        free = "unknown" if self.free is None else _size(self.free)
        return (f"{self.root} could not be written: {self.strerror} ({free} free there, about "
                f"{_size(self.needed)} needed)")


def _free_bytes(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def output_files(project: ProjectRecord, deliverable: Deliverable, tasks: list[TaskRecord],
                 reviews: dict[str, list[ReviewRecord]] | None = None,
                 screenshots: dict[str, bytes] | None = None
                 ) -> dict[PurePosixPath, str | bytes]:
    """Every file of the output folder, by path inside it: tasks/*.md, artifacts/, checks/
    (the pages' screenshots), deliverable.json and deliverable.md. The Markdown files that
    Agency composes (`deliverable.md`, `tasks/*.md`) are `markdown_safe`: a viewer that renders
    HTML runs none from a request or a model; the artifacts are the agents' files, as written.
    """
    reviews = reviews or {}
    files: dict[PurePosixPath, str | bytes] = {}
    for task in tasks:
        body = task.output.content if task.output else "(no output)"
        files[PurePosixPath("tasks", task_filename(task))] = markdown_safe(body) + "\n"
    artifacts = place_artifacts(tasks)
    for placed in artifacts:
        files[ARTIFACTS / placed.path] = placed.content
    shots = screenshots or {}
    for path, png in shots.items():
        files[screenshot_path(path)] = png
    checks = latest_checks(tasks, reviews)
    payload = {"project_id": project.id, "request": project.request,
               "project_type": project.project_type, **deliverable.model_dump(),
               "artifacts": [a.as_json() for a in artifacts],
               "reviews": {t.id: [r.model_dump(mode="json") for r in reviews.get(t.id, [])]
                           for t in tasks if reviews.get(t.id)},
               "checks": {"summary": check_counts(checks),
                          "by_task": {task_id: [c.model_dump() for c in found]
                                      for task_id, found in checks.items()},
                          "screenshots": {p: screenshot_path(p).as_posix() for p in shots}}}
    files[PurePosixPath("deliverable.json")] = json.dumps(payload, indent=2) + "\n"
    files[PurePosixPath("deliverable.md")] = markdown_safe(
        render_markdown(project, deliverable, tasks, artifacts, reviews, shots))
    return files


def write_outputs(project: ProjectRecord, deliverable: Deliverable, tasks: list[TaskRecord],
                  reviews: dict[str, list[ReviewRecord]] | None = None,
                  screenshots: dict[str, bytes] | None = None,
                  root: Path | None = None, only_if_room: bool = False) -> Path:
    """Write the output folder (`output_files`) at `root` (default: the project's), whole or
    not at all: into a new folder beside it, which then takes its place. A folder that cannot
    be written (UnwrittenOutputs: a full disk) leaves the old one as it was and no part of
    the new one; `only_if_room`: none is tried while the disk has less free than needed."""
    root = Path(project.output_dir) if root is None else root
    if root.is_symlink():  # a folder the person pointed elsewhere: write there
        root = root.resolve()
    files = output_files(project, deliverable, tasks, reviews, screenshots)
    needed = sum(len(c if isinstance(c, bytes) else c.encode(errors="replace"))
                 for c in files.values())
    staging: Path | None = None
    if only_if_room:  # a retry: not one more full disk's worth of partial writes
        free = _free_bytes(root)
        if free is not None and free < needed:
            raise UnwrittenOutputs(root, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
                                   needed)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".partial",
                                        dir=root.parent))
        staging.chmod(0o777 & ~_umask())  # as mkdir would make it (mkdtemp's is 0700)
        for path, content in files.items():
            (staging / path.parent).mkdir(parents=True, exist_ok=True)
            write_artifact(staging, path, content)
        with _locked(root.parent):  # one writer at a time swaps (integration, resume, ...)
            _swap(staging, root)
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise UnwrittenOutputs(root, exc, needed) from exc
        raise
    return root


def _umask() -> int:
    """The process's umask, read without changing it (os.umask sets one, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder the output folders live in (flock on the directory
    itself: no lock file to leave behind on a full disk)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and with it the lock


def _swap(staging: Path, root: Path) -> None:
    """`staging` becomes `root`; an older `root` is moved aside first, then removed, and put
    back if the new one cannot take its place."""
    if root.is_symlink() or root.is_file():
        root.unlink()
    if not root.exists():
        staging.rename(root)
        return
    old = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:8]}"
    root.rename(old)
    try:
        staging.rename(root)
    except OSError:
        old.rename(root)
        raise
    shutil.rmtree(old, ignore_errors=True)
