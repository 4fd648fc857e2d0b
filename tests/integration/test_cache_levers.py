"""A fan-out's agents read the project prefix a warm-up wrote, instead of each writing it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.integration.test_embedded_cli import agency, project_id_of, status

PLAN = {"request": "Build a website for a bakery", "project_type": "website", "tasks": [
    {"title": "Write the brand copy", "agent_type": "content_writer",
     "deliverables": ["brand copy"], "acceptance_criteria": ["the copy names the bakery"]},
    {"title": "Draw the wireframes", "agent_type": "ux_designer",
     "deliverables": ["wireframes"], "acceptance_criteria": ["every page has a wireframe"]},
    {"title": "Design the order API", "agent_type": "backend_developer",
     "deliverables": ["API design"], "acceptance_criteria": ["orders can be placed"]},
    {"title": "Plan the launch", "agent_type": "project_manager", "dependencies": [0, 1, 2],
     "deliverables": ["launch plan"], "acceptance_criteria": ["the launch has a date"]}]}


def _run(tmp_path: Path, **env: str) -> tuple[dict[str, Any], list[sqlite3.Row], list[str]]:
    tmp_path.mkdir()
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    # Answers take a while, so that the three first tasks' calls overlap as real ones do.
    env = {"AGENCY_OFFLINE_LATENCY": "0.3", "AGENCY_EMBEDDED_CONCURRENCY": "4", **env}
    result = agency(tmp_path, "run", "--plan", str(plan), **env)
    assert result.returncode == 0, result.stderr
    data = status(tmp_path, project_id_of(result.stdout), **env)
    with sqlite3.connect(tmp_path / ".agency" / "agency.db") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM usage ORDER BY id").fetchall()
        kinds = [r["kind"] for r in db.execute("SELECT kind FROM events ORDER BY id")]
    return data, rows, kinds


def _first_calls(data: dict[str, Any], rows: list[sqlite3.Row]) -> list[sqlite3.Row]:
    """The first agent call of each task that has no dependency."""
    wave = {t["id"] for t in data["tasks"] if not t["dependencies"]}
    first: dict[str, sqlite3.Row] = {}
    for row in rows:
        if row["role"] == "agent" and row["task_id"] in wave:
            first.setdefault(row["task_id"], row)
    assert set(first) == wave and len(wave) == 3
    return list(first.values())


def test_a_fan_out_is_warmed_once_and_its_first_wave_reads_the_prefix(tmp_path: Path) -> None:
    data, rows, kinds = _run(tmp_path / "warm")
    assert data["status"] == "completed"
    # One warm-up in the history; the prefix was counted and is long enough to be cached.
    assert kinds.count("warmup") == 1 and "prompt_prefix" not in kinds
    [warm] = [r for r in rows if r["role"] == "warmup"]
    assert warm["task_id"] is None and warm["output_tokens"] <= 1
    assert warm["cache_write_tokens"] > 4096  # the offline model's minimum: it was cached
    for call in _first_calls(data, rows):
        assert call["cache_read_tokens"] >= warm["cache_write_tokens"], dict(call)
    # The later "fan-out" of one task is not warmed: one warm-up for the project.
    assert sum(1 for r in rows if r["role"] == "warmup") == 1

    # The same project without the warm-up: the three start together and each writes it.
    data, rows, kinds = _run(tmp_path / "cold", AGENCY_CACHE_WARMUP="false")
    assert data["status"] == "completed"
    assert not [r for r in rows if r["role"] == "warmup"] and "warmup" not in kinds
    for call in _first_calls(data, rows):
        assert call["cache_read_tokens"] == 0 and call["cache_write_tokens"] > 4096, dict(call)
