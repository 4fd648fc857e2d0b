"""An agent's tools answer bad calls with an error result the model can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.agent.tools import AGENT_TOOLS, ProjectTools, ToolError, check_path
from orchestrator.domain.models import AgentOutput, Artifact
from orchestrator.llm.base import ToolUseBlock
from orchestrator.state.store import Store


@pytest.mark.parametrize("path", ["site/index.html", "api/openapi.yaml", "a.b/c-d_e.txt"])
def test_a_plain_relative_path_is_kept(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize(("path", "reason"), [
    ("/etc/passwd", "absolute"), ("../../escape.txt", "climbs out"),
    ("site/../../x", "climbs out"), ("C:/x.txt", "absolute"), ("a\\b.txt", "backslashes"),
    ("", "empty"), ("   ", "empty"), ("con.txt", "cannot hold"), ("a<b>.txt", "cannot hold"),
    ("x\x00y", "cannot hold")])
def test_a_hostile_path_is_refused_with_the_reason(path: str, reason: str) -> None:
    with pytest.raises(ToolError, match=reason):
        check_path(path)


def _tools(sqlite_store: Store) -> ProjectTools:
    sqlite_store.insert_project("p1", "Build a website for a bakery", None, "website", "/tmp/x")
    return ProjectTools(sqlite_store, "p1", None, list(AGENT_TOOLS))


def _call(tools: ProjectTools, name: str, **args: object) -> tuple[str, bool]:
    result = tools.run(ToolUseBlock(id="t1", name=name, input=dict(args)))
    return result.content, result.is_error


def test_bad_calls_get_error_results(sqlite_store: Store, tmp_path: Path) -> None:
    tools = _tools(sqlite_store)
    assert _call(tools, "rm_rf", path="/")[1]
    assert "unknown tool" in _call(tools, "rm_rf")[0]
    assert _call(tools, "write_artifact", path=3, content="x") == (
        "error: argument 'path' must be a string", True)
    assert "no single task" in _call(tools, "read_task_output", task="7")[0]
    text, failed = _call(tools, "write_artifact", path="../x.html", content="x")
    assert failed and "climbs out" in text and tools.artifacts == {}
    assert "no words" in _call(tools, "search_knowledge", query="!!! ???")[0]
    kinds = [e["kind"] for e in sqlite_store.events("p1")]
    assert kinds.count("tool_error") == 6


def test_written_files_join_the_answer(sqlite_store: Store) -> None:
    tools = _tools(sqlite_store)
    assert _call(tools, "write_artifact", path="site/index.html", content="<h1>x</h1>") == (
        "saved artifacts/site/index.html (10 characters)", False)
    _call(tools, "write_artifact", path="site/index.html", content="<h1>y</h1>")  # replaces
    own = AgentOutput(summary="s", content="c", artifacts=[Artifact(path="notes.md", content="n")])
    merged = tools.with_artifacts(own)
    assert [(a.path, a.content) for a in merged.artifacts] == [
        ("site/index.html", "<h1>y</h1>"), ("notes.md", "n")]
    assert _call(tools, "request_review", note="check the hours")[1] is False
    assert tools.review_notes == ["check the hours"]
