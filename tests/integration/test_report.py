"""`agency report` and `agency graph` on an embedded bakery run; the page in headless Chromium."""

from __future__ import annotations

import html
import html.parser
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.conftest import chromium
from tests.integration.test_embedded_cli import agency, project_id_of, status


def headless(page: Path, *args: str) -> str:
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", *args, page.as_uri()],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def tags(page: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def having(page: str, tag: str, css_class: str) -> list[dict[str, str]]:
    return [a for t, a in tags(page) if t == tag and css_class in a.get("class", "").split()]


@dataclass(frozen=True)
class Run:
    cwd: Path
    project_id: str
    folder: Path
    data: dict[str, Any]
    written_by_run: str  # report.html as `agency run` left it (integration writes it)


@pytest.fixture(scope="module")
def bakery(tmp_path_factory: pytest.TempPathFactory) -> Run:
    cwd = tmp_path_factory.mktemp("report")
    result = agency(cwd, "run", "Build a website for a bakery", AGENCY_OFFLINE_LATENCY="0.05")
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1].removeprefix("Deliverable: ")).parent
    project_id = project_id_of(result.stdout)
    page = folder / "report.html"
    return Run(cwd, project_id, folder, status(cwd, project_id),
               page.read_text() if page.is_file() else "")


def test_integration_already_wrote_the_report(bakery: Run) -> None:
    page = bakery.written_by_run
    summary = json.loads((bakery.folder / "deliverable.json").read_text())["executive_summary"]
    assert 'class="badge completed"' in page and html.escape(summary) in page
    assert len(having(page, "g", "node")) == len(bakery.data["tasks"])


def test_report_is_self_contained_and_links_every_file(bakery: Run) -> None:
    result = agency(bakery.cwd, "report", bakery.project_id[:8])
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == bakery.folder / "report.html" and path.is_file()
    page = path.read_text()
    assert not re.search(r"""(?:src|href|xlink:href|action)\s*=\s*["']?\s*(?:[a-z]+:)?//""",
                         page, re.I)
    assert not re.search(r"url\((?!#)|@import|<script|<link|<iframe", page, re.I)
    # The only images are the pages' screenshots, inline.
    images = re.findall(r"<img\b[^>]*>", page, re.I)
    assert images and all('class="screenshot" src="data:image/png;base64,' in i
                          for i in images), images[:1]
    hrefs = {unquote(a["href"]) for t, a in tags(page) if t == "a" and "href" in a}
    artifacts = json.loads((bakery.folder / "deliverable.json").read_text())["artifacts"]
    assert artifacts and {a["path"] for a in artifacts} <= hrefs
    outputs = {f"tasks/{p.name}" for p in (bakery.folder / "tasks").glob("*.md")}
    assert len(outputs) == len(bakery.data["tasks"]) and outputs <= hrefs
    assert all((bakery.folder / h).is_file() for h in hrefs)


def test_open_hands_the_file_uri_to_the_browser(bakery: Run, tmp_path: Path) -> None:
    seen = tmp_path / "opened.txt"
    browser = (f"{sys.executable} -c 'import sys; open(sys.argv[1], \"w\").write(sys.argv[2])' "
               f"{seen} %s")
    result = agency(bakery.cwd, "report", bakery.project_id, "--open", BROWSER=browser)
    assert result.returncode == 0, result.stderr
    assert seen.read_text() == (bakery.folder / "report.html").as_uri()


def test_report_renders_in_chromium(bakery: Run, tmp_path: Path) -> None:
    page = bakery.folder / "report.html"
    dom = headless(page, "--dump-dom")
    tasks = bakery.data["tasks"]
    assert '<svg id="dependency-graph"' in dom
    nodes = having(dom, "g", "node")
    assert sorted(int(n["data-index"]) for n in nodes) == [t["index"] for t in tasks]
    critical = {t["index"] for t in tasks if t["on_critical_path"]}
    assert critical and {int(n["data-index"]) for n in nodes
                         if "critical" in n["class"].split()} == critical
    assert len(having(dom, "path", "edge")) == sum(len(t["dependencies"]) for t in tasks)
    rows = having(dom, "g", "gantt-row")
    assert {r["data-worker"] for r in rows} == {t["worker"] for t in tasks}
    assert len(having(dom, "g", "bar")) >= len(tasks)
    agents = {t["agent_type"] for t in tasks}
    cost_table = dom[dom.index('<table id="cost-by-agent"'):]
    cost_table = cost_table[:cost_table.index("</table>")]
    assert all(f"<td>{a}</td>" in cost_table for a in agents)
    shot = tmp_path / "report.png"
    headless(page, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_graph_prints_mermaid(bakery: Run) -> None:
    result = agency(bakery.cwd, "graph", bakery.project_id)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    tasks = bakery.data["tasks"]
    assert lines[0] == "flowchart LR"
    nodes = [x for x in lines if re.fullmatch(r'    t\d+\["\d+: [^"]+ \([a#-z_0-9;]+\)"\]', x)]
    assert len(nodes) == len(tasks)
    index = {t["id"]: t["index"] for t in tasks}
    edges = {x.strip() for x in lines if "-->" in x}
    assert edges == {f"t{index[d]} --> t{t['index']}" for t in tasks for d in t["dependencies"]}
    assert any(x.strip().startswith("classDef critical") for x in lines)


def test_graph_canvas_prints_the_compiled_canvas(bakery: Run) -> None:
    result = agency(bakery.cwd, "graph", bakery.project_id, "--canvas")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "chain(" in text and "group(" in text and "chord(" in text
    for task in bakery.data["tasks"]:
        assert f"#{task['index']} {task['title']}" in text


@pytest.mark.parametrize("command", ["report", "graph"])
def test_unknown_project_is_one_line(tmp_path: Path, command: str) -> None:
    result = agency(tmp_path, command, "nope")
    assert result.returncode == 2
    assert result.stderr.strip() == "agency: error: no project with id 'nope'"
