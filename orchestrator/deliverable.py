"""Write a project's deliverable and task outputs into its output folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

from orchestrator.models import Deliverable, DeliverableSection, ProjectRecord, TaskRecord


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "task"


def _sections(title: str, sections: list[DeliverableSection]) -> list[str]:
    lines = [f"## {title}", ""]
    for section in sections:
        lines += [f"### {section.title}", "", *(f"- {i}" for i in section.items), ""]
    return lines


def _bullets(title: str, items: list[str]) -> list[str]:
    return [f"## {title}", "", *(f"- {i}" for i in items), ""]


def render_markdown(project: ProjectRecord, deliverable: Deliverable,
                    tasks: list[TaskRecord]) -> str:
    lines = [f"# Deliverable: {project.request}", "",
             f"Project `{project.id}` ({project.project_type or 'custom'}), "
             f"{len(tasks)} tasks.", "", "## Executive summary", "",
             deliverable.executive_summary, ""]
    lines += _sections("Key deliverables", deliverable.key_deliverables)
    lines += _sections("Technical details", deliverable.technical_details)
    lines += _bullets("Next steps", deliverable.next_steps)
    lines += _bullets("Success metrics", deliverable.success_metrics)
    lines += _sections("Appendix", deliverable.appendix)
    lines += ["## Task outputs", ""]
    lines += [f"- [{t.title}](tasks/{task_filename(t)}) ({t.agent_type.value})" for t in tasks]
    return "\n".join(lines) + "\n"


def task_filename(task: TaskRecord) -> str:
    return f"{task.index:02d}-{slug(task.title)}.md"


def _inside(root: Path, relative: str) -> Path:
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ValueError(f"artifact path {relative!r} escapes the output folder")
    return target


def write_outputs(project: ProjectRecord, deliverable: Deliverable,
                  tasks: list[TaskRecord]) -> Path:
    """Write deliverable.json, deliverable.md, tasks/*.md and artifacts/; return the folder."""
    root = Path(project.output_dir)
    (root / "tasks").mkdir(parents=True, exist_ok=True)
    payload = {"project_id": project.id, "request": project.request,
               "project_type": project.project_type, **deliverable.model_dump()}
    (root / "deliverable.json").write_text(json.dumps(payload, indent=2) + "\n")
    (root / "deliverable.md").write_text(render_markdown(project, deliverable, tasks))
    for task in tasks:
        body = task.output.content if task.output else "(no output)"
        (root / "tasks" / task_filename(task)).write_text(body + "\n")
        for artifact in task.output.artifacts if task.output else []:
            target = _inside(root / "artifacts", artifact.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(artifact.content)
    return root
