"""`agency eval` as a subprocess, offline and embedded: a small suite to JSON, the same suite
against that output as its baseline, and the default suite's runs over every project type."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from orchestrator.domain.constants import ProjectType
from tests.conftest import AGENCY, agency_env

SUITE = {"name": "small", "requests": [
    {"id": "bakery", "request": "Build a website for a bakery", "project_type": "website"},
    {"id": "churn", "request": "Analyze customer churn data", "project_type": "data_analysis"},
]}


def agency(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENCY, *args], cwd=tmp_path, env=agency_env(tmp_path),
                          capture_output=True, text=True, timeout=120, check=False)


def test_eval_json_then_against_it_as_baseline(tmp_path: Path) -> None:
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps(SUITE), encoding="utf-8")
    first = agency(tmp_path, "eval", "--suite", str(suite), "--json")
    assert first.returncode == 0, first.stderr
    data: dict[str, Any] = json.loads(first.stdout)  # stdout is the JSON document alone
    assert data["suite"] == "small" and data["model"]["provider"] == "offline"
    assert data["model"]["measures"] == "the pipeline"
    assert "[2/2] churn: completed" in first.stderr
    assert [r["id"] for r in data["runs"]] == ["bakery", "churn"]
    for run in data["runs"]:
        assert run["status"] == "completed" and run["type_matched"] is True
        assert run["model_calls"] > 0 and run["tasks"] > 0 and run["seconds"] > 0
        assert run["checks"]["total"] >= 0 and run["review_rounds"] >= 1
        assert run["checks"]["total"] == sum(run["checks"][k] for k in (
            "passed", "failed", "unchecked"))
        assert run["cost_usd"] == 0.0 and "not-completed" not in run["labels"]
    summary = data["summary"]
    assert summary["runs"] == 2 and summary["completed"] == 2
    assert summary["model_calls"] == sum(r["model_calls"] for r in data["runs"])
    # Each evaluation has a store of its own, removed after: nothing in the configured home.
    assert not (tmp_path / ".agency" / "agency.db").exists()

    baseline = tmp_path / "before.json"
    baseline.write_text(first.stdout, encoding="utf-8")
    again = agency(tmp_path, "eval", "--suite", str(suite), "--baseline", str(baseline))
    assert again.returncode == 0, again.stderr
    # The offline model is deterministic: the same checks, rounds, calls and cost.
    assert f"{summary['checks']['passed']}/{summary['checks']['total']} (±0)" in again.stdout
    assert f"{summary['model_calls']} (±0)" in again.stdout
    assert "$0.0000 (±0)" in again.stdout and "2/2 completed (±0)" in again.stdout

    compared = agency(tmp_path, "eval", "--suite", str(suite), "--baseline", str(baseline),
                      "--json")
    assert compared.returncode == 0, compared.stderr
    change = json.loads(compared.stdout)["baseline"]
    assert [r["baseline_id"] for r in change["runs"]] == ["bakery", "churn"]
    assert all(r["change"]["model_calls"] == 0 and r["change"]["checks_total"] == 0
               for r in change["runs"])
    assert change["summary"]["completed"] == 0


def test_the_default_suite_runs_every_project_type(tmp_path: Path) -> None:
    result = agency(tmp_path, "eval", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["suite"] == "default" and len(data["runs"]) >= 8
    assert {r["planned_type"] for r in data["runs"]} == {t.value for t in ProjectType}
    assert data["summary"]["types_matched"] == data["summary"]["runs"]
    assert data["summary"]["completed"] == data["summary"]["runs"]


def test_a_limit_shows_as_labels(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"  # YAML by its suffix
    suite.write_text("name: capped\nrequests:\n  - id: bakery\n    request: Build a website "
                     "for a bakery\n", encoding="utf-8")
    result = subprocess.run([*AGENCY, "eval", "--suite", str(suite), "--json"], cwd=tmp_path,
                            env=agency_env(tmp_path, AGENCY_MAX_MODEL_CALLS="2"),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr  # the report is the result, whatever it says
    (run,) = json.loads(result.stdout)["runs"]
    assert run["status"] == "needs_attention"
    assert run["labels"] == ["limit-hit", "not-completed"]
    assert "made its 2 model calls (the cap)" in run["why"]["limit-hit"][0]
