"""The gate is the checks: a plan whose agents write broken and sound files of every kind, a
reviewing model that passes everything, and what a person sees (`status --json`, the reviews,
deliverable.md, the screenshots)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.domain.constants import ProjectStatus, Role
from orchestrator.domain.models import Plan, Tokens
from orchestrator.llm.base import CompletionRequest, CompletionResponse, Provider, TextBlock
from tests.conftest import AGENCY, IN_CI, agency_env, chromium
from tests.harness import running_agency

BROKEN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Broken</title>
<link rel="stylesheet" href="missing.css"></head>
<body><h1>Broken</h1><a href="about.html">About us</a>
<script>menu.open();</script></body></html>
"""
GOOD_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bakery</title>
<link rel="stylesheet" href="styles.css"></head>
<body><h1>Bakery</h1><a href="broken.html">The other page</a>
<img src="chart.svg" alt="Sales by month"></body></html>
"""
CHART = ('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
         '<rect width="40" height="20" fill="#c96"/></svg>\n')
FILES: dict[str, dict[str, str]] = {
    "Pages": {"site/broken.html": BROKEN_PAGE, "site/index.html": GOOD_PAGE,
              "site/styles.css": "body { font-family: sans-serif; }\n",
              "site/chart.svg": CHART},
    "Service": {"service/app.py": "def order(:\n    return 1\n",
                "service/calc.py": "def total(prices):\n    return sum(prices)\n",
                "service/test_calc.py": "from calc import total\n\n\ndef test_total():\n"
                                        "    assert total([1, 2]) == 3\n",
                "service/openapi.yaml": "openapi: 3.0.3\npaths: {}\n",
                "service/sales.csv": "month,loaves,cakes\njan,10,4\nfeb,12\n"},
    "Notes": {"notes/readme.md": "# Notes\n\nSee [the site](../site/index.html).\n"},
}
PLAN = Plan.model_validate({"tasks": [
    {"title": "Pages", "agent_type": "frontend_developer"},
    {"title": "Service", "agent_type": "backend_developer"},
    {"title": "Notes", "agent_type": "content_writer", "dependencies": [0]}]})
# (path, check) -> ok, for every check the files must get.
EXPECTED = {
    ("site/broken.html", "html"): False, ("site/index.html", "html"): True,
    ("site/styles.css", "unchecked"): None, ("site/chart.svg", "svg"): True,
    ("service/app.py", "python-compile"): False, ("service/calc.py", "python-compile"): True,
    ("service/test_calc.py", "python-compile"): True, ("service/test_calc.py", "pytest"): True,
    ("service/openapi.yaml", "yaml"): True, ("service/openapi.yaml", "openapi"): False,
    ("service/sales.csv", "csv"): False, ("notes/readme.md", "markdown-links"): True,
}


class Scripted:
    """Agents that answer every turn (revisions too) with their task's files, and a
    reviewing model that passes everything: only the checks can send work back."""

    name = "scripted"

    def __init__(self, model: Provider) -> None:
        self.model = model

    def complete(self, request: CompletionRequest, progress: object = None) -> CompletionResponse:
        first = request.messages[0].text if request.messages else ""
        title = next((t for t in FILES if f"Your task: {t}\n" in first), None)
        if request.role is Role.AGENT and title:
            answer: dict[str, Any] = {
                "summary": f"{title} written", "content": f"The files of {title}.",
                "artifacts": [{"path": p, "content": c} for p, c in FILES[title].items()]}
        elif request.role is Role.REVIEW:
            answer = {"verdict": "pass", "criteria": [], "summary": "Looks good to me."}
        else:
            return self.model.complete(request)
        return CompletionResponse(content=[TextBlock(text=json.dumps(answer))],
                                  model=request.model, tokens=Tokens(input=10, output=10),
                                  latency_ms=0, stop_reason="end_turn")


def need_sandbox() -> None:
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bubblewrap is not installed (.ci/run installs it)")
        pytest.skip("bubblewrap is not installed")


def test_every_artifact_is_judged_by_running_it(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    chromium()
    need_sandbox()
    with running_agency(monkeypatch, tmp_path) as agency:
        agency.rt.provider = Scripted(agency.rt.provider)
        project_id = agency.submit("Build a website for a bakery", plan=PLAN,
                                   project_type="website")
        project = agency.wait(project_id, timeout=240)
    assert project.status is ProjectStatus.COMPLETED, project.error

    shown = subprocess.run(
        [*AGENCY, "status", project_id, "--json"], cwd=tmp_path, capture_output=True,
        text=True, timeout=60, check=False,
        env=agency_env(tmp_path, AGENCY_DATABASE_URL=f"sqlite:///{tmp_path / 'agency.db'}"))
    assert shown.returncode == 0, shown.stderr
    tasks = {t["title"]: t for t in json.loads(shown.stdout)["tasks"]}
    found = {(c["path"], c["check"]): c for t in tasks.values() for c in t["checks"]}
    assert {key: c["ok"] for key, c in found.items()} == EXPECTED
    assert all(c["seconds"] >= 0 and c["detail"] for c in found.values())

    page = found[("site/broken.html", "html")]["detail"]
    assert "missing.css" in page and "about.html" in page, page
    assert "menu is not defined" in page, page
    assert "info" in found[("service/openapi.yaml", "openapi")]["detail"]
    assert "line 1" in found[("service/app.py", "python-compile")]["detail"]
    assert "1 passed" in found[("service/test_calc.py", "pytest")]["detail"]

    # The reviewing model passed everything; the checks sent both failing tasks back, every
    # round, and their failures stay open after the last.
    for title in ("Pages", "Service"):
        rounds = tasks[title]["reviews"]
        assert [r["verdict"] for r in rounds] == ["revise"] * 3, rounds
        notes = {n["criterion"] for n in rounds[0]["notes"] if not n["met"]}
        failing = {f"check {c} of {p}" for (p, c), ok in EXPECTED.items()
                   if ok is False and p in FILES[title]}
        assert notes == failing
    assert [r["verdict"] for r in tasks["Notes"]["reviews"]] == ["pass"]

    out = Path(project.output_dir)
    deliverable = (out / "deliverable.md").read_text()
    checks = deliverable[deliverable.index("## Checks"):]
    assert "7 of 12 checks passed, 4 failed (open), 1 files not checked." in checks
    assert "FAILED: `service/app.py` (python-compile)" in checks
    assert "screenshot](checks/site/index.html.png)" in checks
    assert (out / "checks" / "site" / "index.html.png").read_bytes().startswith(b"\x89PNG")
    saved = json.loads((out / "deliverable.json").read_text())["checks"]
    assert saved["summary"] == {"total": 12, "passed": 7, "failed": 4, "unchecked": 1}
    report = (out / "report.html").read_text()
    assert 'class="screenshot" src="data:image/png;base64,' in report
