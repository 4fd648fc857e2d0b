"""The project knowledge base, against SQLite (FTS5) and PostgreSQL (tsvector) alike."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.domain import dag
from orchestrator.domain.constants import ProjectStatus
from orchestrator.domain.errors import BadInput
from orchestrator.domain.models import AgentOutput, Analysis, Artifact
from orchestrator.state import knowledge
from orchestrator.state.knowledge import Hit
from orchestrator.state.store import Store, now
from orchestrator.state.transitions import Scheduler
from tests.conftest import make_plan
from tests.integration.test_embedded_cli import agency, project_id_of

ANALYSIS = Analysis.model_validate({
    "project_type": "website", "complexity": "moderate", "estimated_hours": 12,
    "required_agents": ["ux_designer", "frontend_developer"],
    "key_requirements": ["online ordering of croissants"],
    "potential_risks": ["flour shortage"], "success_criteria": ["weekly preorders double"],
    "recommended_approach": "ship a small storefront first"})




def _project(store: Store, project_id: str = "p1",
             request: str = "Build a website for a bakery") -> str:
    store.insert_project(project_id, request, None, None, "/tmp/out")
    with store.db.transaction() as tx:
        knowledge.index_project(tx, project_id, request, ANALYSIS, make_plan({1: [0]}, 2))
    return project_id


def _output(store: Store, project_id: str, task_id: str, title: str, output: AgentOutput,
            index: int = 0) -> None:
    with store.db.transaction() as tx:
        knowledge.index_output(tx, project_id, task_id, index, title, "content_writer", output)


def _search(store: Store, query: str, project_id: str = "p1", limit: int = 5) -> list[Hit]:
    return knowledge.search(store.db, project_id, query, limit)


def test_request_analysis_and_plan_are_found(store: Store) -> None:
    _project(store)
    assert [(h.kind, h.source, h.title) for h in _search(store, "bakery")] == [
        ("request", "request", "Request")]
    assert [h.kind for h in _search(store, "croissants")] == ["analysis"]
    assert [h.kind for h in _search(store, "flour")] == ["analysis"]
    assert [h.kind for h in _search(store, "tasks")] == ["plan"]  # stemmed: "Task 0: ..."


def test_indexing_again_replaces_the_row(store: Store) -> None:
    _project(store, request="Bake sourdough loaves")
    with store.db.transaction() as tx:
        knowledge.index_project(tx, "p1", "Bake rye loaves", None, None)
        knowledge.index_project(tx, "p1", "Bake rye loaves", None, None)
    out = AgentOutput(summary="copy", content="wholemeal loaves")
    _output(store, "p1", "t1", "Copy", out)
    _output(store, "p1", "t1", "Copy", out)
    assert sorted(h.kind for h in _search(store, "loaves", limit=10)) == ["output", "request"]
    assert [h.kind for h in _search(store, "rye")] == ["request"]
    assert _search(store, "sourdough") == []  # the old text left the index with the old row
    assert [h.kind for h in _search(store, "croissants")] == ["analysis"]  # kept: not given


def test_the_document_with_most_mentions_ranks_first(store: Store) -> None:
    _project(store)
    for i, content in enumerate([
            "Sourdough starter notes. Sourdough needs time; sourdough loves warmth.",
            "A sourdough loaf, and rye bread, and spelt bread, and wholemeal bread.",
            "Opening hours, prices, the location and the phone number of the shop."]):
        _output(store, "p1", f"t{i}", f"Note {i}", AgentOutput(summary="note", content=content),
                index=i)
    hits = _search(store, "sourdough")
    assert [h.ref for h in hits] == ["t0", "t1"]
    assert hits[0].rank > hits[1].rank
    assert hits[0].source == "task 0 'Note 0' (content_writer)"


def test_snippets_mark_the_matched_words(store: Store) -> None:
    _project(store)
    before = " ".join(f"before{i}" for i in range(200))
    after = " ".join(f"after{i}" for i in range(200))
    _output(store, "p1", "t1", "Copy", AgentOutput(
        summary="copy", content=f"{before} the croissant counter opens at seven {after}"))
    hit = next(h for h in _search(store, "croissant counter") if h.kind == "output")
    assert "**counter**" in hit.snippet
    # A fragment around the match, not the body.
    assert "before0 " not in hit.snippet and "after199" not in hit.snippet
    assert "\n" not in hit.snippet


def test_artifacts_are_found_by_path_and_content_and_binary_is_left_out(store: Store) -> None:
    _project(store)
    _output(store, "p1", "t5", "Frontend implementation", AgentOutput(
        summary="page", content="the page", artifacts=[
            Artifact(path="frontend/index.html", content="<h1>Marzipan</h1>"),
            Artifact(path="logo.png", content="\x89PNG\x00\x01\x02\x03 marzipan")]))
    hits = _search(store, "marzipan")
    assert [(h.kind, h.ref, h.title) for h in hits] == [
        ("artifact", "t5:frontend/index.html", "frontend/index.html")]
    assert hits[0].source == "artifact frontend/index.html from task 0 'Frontend implementation'"
    assert [h.ref for h in _search(store, "logo")] == []


def test_a_long_body_is_cut(store: Store) -> None:
    _project(store)
    body = "beginning " + "lorem " * (knowledge.MAX_BODY_CHARS // 6) + " ending"
    _output(store, "p1", "t1", "Long", AgentOutput(summary="long", content=body))
    assert [h.ref for h in _search(store, "beginning")] == ["t1"]
    assert _search(store, "ending") == []


def test_results_stay_inside_their_project(store: Store) -> None:
    _project(store, "p1", "Build a website for a bakery")
    _project(store, "p2", "Build a website for a marzipan bakery")
    _output(store, "p2", "t9", "Secret", AgentOutput(summary="s", content="marzipan recipe"))
    assert _search(store, "marzipan recipe") == []
    assert {h.ref for h in _search(store, "marzipan recipe", "p2")} == {"", "t9"}
    assert [h.kind for h in _search(store, "bakery", "p1")] == ["request"]


def test_limit(store: Store) -> None:
    _project(store)
    for i in range(8):
        _output(store, "p1", f"t{i}", f"Note {i}", AgentOutput(summary="n", content="baguette"),
                index=i)
    assert len(_search(store, "baguette", limit=3)) == 3
    assert len(_search(store, "baguette", limit=20)) == 8


@pytest.mark.parametrize("query", [
    'bakery"', "bakery*", "NEAR(bakery", "website:bakery", "bakery!!", "(bakery", "bakery OR",
    "OR", "AND NOT", "NEAR", "bakery' | !x & y:*", "title:bakery", "^bakery", "-bakery",
    "bakery + - ~ \\", "b" * 10_000, "bakery " * 1500, "Bäckerei 面包 пекарня ❤ café",
    "the and", "\udcff bakery", "bakery\x00",
])
def test_hostile_queries_are_only_words(store: Store, query: str) -> None:
    _project(store)
    hits = _search(store, query)  # raises nothing
    if "bakery" in query.lower():
        assert any(h.kind == "request" for h in hits), query


@pytest.mark.parametrize("query", ['"', "*", "!!", "(", ")", "", "   ", ":", "&|!", "'\"'",
                                   "_", "—…"])
def test_a_query_without_words_is_bad_input(store: Store, query: str) -> None:
    _project(store)
    with pytest.raises(BadInput, match="the query has no words to search for"):
        _search(store, query)


def test_stop_words_alone_find_nothing_in_postgresql(store: Store) -> None:
    _project(store)
    hits = _search(store, "the and of")
    # PostgreSQL's english configuration drops them; FTS5 has no stop words.
    assert (hits == []) is (store.db.dialect == "postgresql")


def test_the_scheduler_indexes_analysis_plan_and_outputs(store: Store) -> None:
    sched = Scheduler(store)
    store.insert_project("p1", "Build a website for a bakery", None, None, "/tmp/out")
    claim = sched.claim_project("p1", ProjectStatus.PLANNING, now() + timedelta(seconds=60))
    assert claim is not None
    sched.save_analysis(claim, ANALYSIS, 1000)
    assert [h.kind for h in _search(store, "croissants")] == ["analysis"]
    plan = make_plan({1: [0]}, 2, ["content_writer", "qa_engineer"])
    graph = dag.validate_plan(plan)
    ids = sched.save_plan(claim, plan, graph, dag.schedule(graph), "website", 1000)
    sched.move_claimed(claim, ProjectStatus.RUNNING)
    assert [h.kind for h in _search(store, "qa_engineer")] == ["plan"]
    assert [h.kind for h in _search(store, "croissants")] == ["analysis"]  # still there
    task = sched.start_task(ids[0], "w", now() + timedelta(seconds=60))
    assert task is not None
    sched.complete_task(task, AgentOutput(summary="copy", content="Eclairs every morning",
                                          artifacts=[Artifact(path="copy.md", content="eclairs")]))
    hits = _search(store, "eclairs")
    assert {(h.kind, h.ref, h.source) for h in hits} == {
        ("output", ids[0], "task 0 'Task 0' (content_writer)"),
        ("artifact", f"{ids[0]}:copy.md", "artifact copy.md from task 0 'Task 0'")}


def test_cli_search_of_an_embedded_project(tmp_path: Path) -> None:
    result = agency(tmp_path, "run", "Build a website for a bakery")
    assert result.returncode == 0, result.stderr
    project_id = project_id_of(result.stdout)
    found = agency(tmp_path, "search", project_id[:8], "bakery website", "--json", "--limit",
                   "50")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert {h["kind"] for h in hits} >= {"request", "analysis", "plan", "output", "artifact"}
    assert all(set(h) == {"source", "kind", "ref", "title", "snippet", "rank"} for h in hits)
    assert all("**website**" in h["snippet"].lower() for h in hits if h["kind"] == "request")
    human = agency(tmp_path, "search", project_id, "bakery website", "--limit", "2")
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert len(lines) == 4 and lines[0].startswith("  1. ") and "bakery" in lines[1].lower()
    none = agency(tmp_path, "search", project_id, "zeppelin")
    assert (none.returncode, none.stdout.strip()) == (0, "no matches")
    bad = agency(tmp_path, "search", project_id, '"*()')
    assert bad.returncode == 2
    assert bad.stderr.strip() == "agency: error: the query has no words to search for"
    missing = agency(tmp_path, "search", "nope", "bakery")
    assert missing.returncode == 2 and "no project with id 'nope'" in missing.stderr
