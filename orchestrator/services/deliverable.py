"""Write a project's deliverable and task outputs into its output folder."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from orchestrator.domain.models import (
    CheckResult,
    Deliverable,
    DeliverableSection,
    ProjectRecord,
    ReviewRecord,
    TaskRecord,
)
from orchestrator.state.artifacts import ARTIFACTS, PlacedArtifact, place_artifacts, write_artifact


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


def write_outputs(project: ProjectRecord, deliverable: Deliverable, tasks: list[TaskRecord],
                  reviews: dict[str, list[ReviewRecord]] | None = None,
                  screenshots: dict[str, bytes] | None = None) -> Path:
    """Write tasks/*.md, artifacts/, checks/ (the pages' screenshots), deliverable.json and
    deliverable.md; return the folder."""
    root = Path(project.output_dir)
    reviews = reviews or {}
    (root / "tasks").mkdir(parents=True, exist_ok=True)
    for task in tasks:
        body = task.output.content if task.output else "(no output)"
        (root / "tasks" / task_filename(task)).write_text(body + "\n")
    artifacts = place_artifacts(tasks)
    for placed in artifacts:
        write_artifact(root, ARTIFACTS / placed.path, placed.content)
    shots = screenshots or {}
    for path, png in shots.items():
        write_artifact(root, screenshot_path(path), png)
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
    (root / "deliverable.json").write_text(json.dumps(payload, indent=2) + "\n")
    # Last: `agency run` takes an existing deliverable.md to mean the folder is complete.
    (root / "deliverable.md").write_text(render_markdown(project, deliverable, tasks, artifacts,
                                                        reviews, shots))
    return root
