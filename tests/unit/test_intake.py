"""Bad input from a person gets one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.domain.constants import MAX_REQUEST_CHARS
from orchestrator.domain.errors import BadInput, PlanError
from orchestrator.domain.intake import check_request, load_plan_file


@pytest.mark.parametrize("text", [None, "", "   \n\t "])
def test_empty_request(text: str | None) -> None:
    with pytest.raises(BadInput, match="the request is empty"):
        check_request(text)


def test_huge_request() -> None:
    with pytest.raises(BadInput, match=f"the limit is {MAX_REQUEST_CHARS}"):
        check_request("x" * (MAX_REQUEST_CHARS + 1))


def test_request_is_trimmed() -> None:
    assert check_request("  Build a site \n") == "Build a site"


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(content)
    return path


def _plan_error(path: Path) -> str:
    with pytest.raises(PlanError) as info:
        load_plan_file(path)
    assert "\n" not in info.value.message
    return info.value.message


def test_missing_plan_file(tmp_path: Path) -> None:
    assert "does not exist" in _plan_error(tmp_path / "nope.json")


def test_plan_file_not_json(tmp_path: Path) -> None:
    assert "is not valid JSON" in _plan_error(_write(tmp_path, "{tasks: ["))


def test_plan_file_not_an_object(tmp_path: Path) -> None:
    assert "must hold a JSON object" in _plan_error(_write(tmp_path, "[1, 2]"))


def test_plan_file_breaks_contract(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"tasks": [{"agent_type": "marketing"}]}))
    assert _plan_error(path).endswith("tasks.0.title: Field required")


def test_plan_file_breaks_graph(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"tasks": [
        {"title": "a", "agent_type": "marketing", "dependencies": [3]}]}))
    assert "task 0 ('a') depends on task 3, which does not exist" in _plan_error(path)


def test_good_plan_file(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"request": "r", "project_type": "website", "tasks": [
        {"title": "a", "agent_type": "marketing"}]}))
    plan = load_plan_file(path)
    assert plan.request == "r" and len(plan.tasks) == 1


@pytest.mark.parametrize("text", ["\udcff\udcfe bad", "ok \udcc3"])
def test_request_that_is_not_utf8(text: str) -> None:
    with pytest.raises(BadInput, match="the request is not valid UTF-8 text"):
        check_request(text)


def test_plan_file_that_is_a_directory(tmp_path: Path) -> None:
    assert _plan_error(tmp_path).endswith("is a directory, not a file")


def test_plan_file_that_is_not_a_regular_file() -> None:
    assert _plan_error(Path("/dev/null")).endswith("is not a regular file")


def test_plan_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(b'{"tasks": [{"title": "caf\xe9", "agent_type": "marketing"}]}')
    assert _plan_error(path).endswith("is not UTF-8 text (byte 25)")


def test_plan_file_with_a_lone_surrogate_escape(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"tasks": [{"title": "\\udcff", "agent_type": "marketing"}]}')
    assert "escape that is not valid UTF-8 text" in _plan_error(path)


def test_plan_file_nested_too_deeply(tmp_path: Path) -> None:
    path = _write(tmp_path, "[" * 200_000 + "]" * 200_000)
    assert _plan_error(path).endswith("is nested too deeply")


def test_plan_file_that_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "{}")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    # chmod 000 does not stop root, who runs CI: fail the read itself.
    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert _plan_error(path).endswith("cannot be read: Permission denied")
