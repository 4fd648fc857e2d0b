"""Specialists that do real work: tools, the knowledge base, reviews, files that fit the request."""

from __future__ import annotations

import html.parser
import json
import re
import subprocess
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from tests.conftest import chromium
from tests.fake_anthropic import FakeAnthropic
from tests.integration.test_embedded_cli import agency, project_id_of, status

KEY = "sk-test-agents"


def _env(fake: FakeAnthropic) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.url,
            "AGENCY_MODEL_BACKOFF": "0.05", "AGENCY_ANTHROPIC_TIMEOUT": "5"}


def _run(tmp_path: Path, request: str, **env: str) -> tuple[dict[str, Any], Path]:
    result = agency(tmp_path, "run", request, **env)
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1].removeprefix("Deliverable: ")).parent
    return status(tmp_path, project_id_of(result.stdout), **env), folder


def _links(markdown: str) -> dict[str, str]:
    """Link target -> link text of every Markdown link."""
    return {unquote(target): text for text, target in re.findall(r"\[([^\]]*)\]\(([^)]+)\)",
                                                                 markdown)}


def render(page: Path) -> str:
    """The DOM of a page after a headless browser loaded and laid it out."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, str] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            self._open.remove(tag)

    def handle_data(self, data: str) -> None:
        for tag in ("title", "h1"):
            if tag in self._open:
                self.text[tag] = self.text.get(tag, "") + data


def test_a_website_request_leaves_a_page_a_stylesheet_and_an_api(tmp_path: Path) -> None:
    data, folder = _run(tmp_path, "Build a website for a bakery")
    links = _links((folder / "deliverable.md").read_text())
    files = {p.relative_to(folder).as_posix() for p in (folder / "artifacts").rglob("*")
             if p.is_file()}
    assert files and all(f in links for f in files), "deliverable.md links every artifact"
    pages = [f for f in files if f.endswith(".html")]
    sheets = [f for f in files if f.endswith(".css")]
    apis = [f for f in files if f.endswith((".yaml", ".yml")) and "openapi" in f]
    assert pages and sheets and apis, files
    api = yaml.safe_load((folder / apis[0]).read_text())
    assert str(api["openapi"]).startswith("3.") and api["paths"]
    page = folder / pages[0]
    parsed = _Page()
    parsed.feed(page.read_text())
    assert "bakery" in parsed.text["title"].lower() and "bakery" in parsed.text["h1"].lower()
    stylesheets = [a.get("href") for t, a in parsed.tags if t == "link"
                   and a.get("rel") == "stylesheet"]
    assert stylesheets and all((page.parent / str(h)).is_file() for h in stylesheets)
    dom = render(page)
    assert re.search(r"<h1[^>]*>[^<]*[Bb]akery", dom), dom[:500]
    reviews = [r for t in data["tasks"] for r in t["reviews"]]
    assert reviews and all(r["verdict"] in ("pass", "revise") for r in reviews)


def test_a_rejected_output_is_revised_and_passes(tmp_path: Path) -> None:
    with FakeAnthropic(api_key=KEY) as fake:
        fake.faults.verdicts = {"Frontend implementation": deque(["revise"])}
        data, folder = _run(tmp_path, "Build a website for a bakery", **_env(fake))
    task = next(t for t in data["tasks"] if t["title"] == "Frontend implementation")
    assert [r["verdict"] for r in task["reviews"]] == ["revise", "pass"]
    first, second = task["reviews"]
    assert first["reviewer"] == "qa_engineer" and first["round"] == 1 and second["round"] == 2
    unmet = [n for n in first["notes"] if not n["met"]]
    assert unmet and unmet[0]["note"] and all(n["met"] for n in second["notes"])
    assert first["at"] <= second["at"] and task["status"] == "completed"
    output = (folder / "tasks").glob("05-*.md")
    revised = next(output).read_text()
    assert "Changes after review" in revised and unmet[0]["criterion"] in revised
    deliverable = (folder / "deliverable.md").read_text()
    assert "Frontend implementation: revise (qa_engineer), then pass (qa_engineer)" in deliverable


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_an_agent_searches_the_knowledge_base_and_uses_it(tmp_path: Path, store: str,
                                                          request: pytest.FixtureRequest
                                                          ) -> None:
    env = {"AGENCY_DATABASE_URL": request.getfixturevalue("pg_url")} if store != "sqlite" else {}
    data, folder = _run(tmp_path, "Build a website for a bakery", **env)
    log = agency(tmp_path, "search", data["id"][:8], "bakery", "--json", **env)
    assert log.returncode == 0, log.stderr
    events = _tool_events(tmp_path, data["id"], env)
    searches = [e for e in events if e.startswith("search_knowledge")]
    assert len(searches) >= len(data["tasks"])  # every agent searched
    # What a late task found (another task's output, not one of its inputs) is in its work.
    qa = next(t for t in data["tasks"] if t["agent_type"] == "qa_engineer")
    text = next((folder / "tasks").glob(f"{qa['index']:02d}-*.md")).read_text()
    deps = {t["title"] for t in data["tasks"] if t["id"] in qa["dependencies"]}
    cited = re.findall(r"source: task \d+ '([^']+)'", text)
    assert any(title not in deps for title in cited), cited


def _tool_events(tmp_path: Path, project_id: str, env: dict[str, str]) -> list[str]:
    """The tool calls the project's agents made, from the store's events."""
    from orchestrator.domain.settings import Settings
    from orchestrator.state.store import get_store

    url = env.get("AGENCY_DATABASE_URL") or f"sqlite:///{tmp_path / '.agency' / 'agency.db'}"
    store = get_store(Settings(database_url=url))
    return [str(e["detail"]) for e in store.events(project_id) if e["kind"] == "tool"]


ODD = {"request": "Build a website for a bakery", "project_type": "website", "tasks": [
    {"title": "Brief", "agent_type": "project_manager", "deliverables": ["brief"],
     "acceptance_criteria": ["Mentions quantum xylophone zebra unicorn teleportation"]},
    {"title": "Copy", "agent_type": "content_writer", "dependencies": [0],
     "deliverables": ["home page copy"], "acceptance_criteria": ["Home page copy is complete"]}]}


@pytest.mark.parametrize("rounds", ["2", "0"])
def test_offline_reviews_send_work_back_and_stop_after_the_last_round(tmp_path: Path,
                                                                      rounds: str) -> None:
    """The offline reviewer checks the work, not the agent's own checklist; with no rounds
    left the work goes on, its open notes on record."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(ODD))
    result = agency(tmp_path, "run", "--plan", str(plan), AGENCY_REVIEW_ROUNDS=rounds)
    assert result.returncode == 0, result.stderr
    data = status(tmp_path, project_id_of(result.stdout))
    brief, copy = data["tasks"]
    verdicts = [r["verdict"] for r in brief["reviews"]]
    assert [r["verdict"] for r in copy["reviews"]] == ["pass"]
    folder = Path(data["output_dir"])
    deliverable = (folder / "deliverable.md").read_text()
    if rounds == "0":
        assert verdicts == ["revise"] and brief["status"] == "completed"
        assert "Brief: revise (orchestrator); accepted after the last round with open " \
               "notes: Mentions quantum" in deliverable
    else:
        assert verdicts == ["revise", "pass"]
        assert "Brief: revise (orchestrator), then pass (orchestrator)" in deliverable
