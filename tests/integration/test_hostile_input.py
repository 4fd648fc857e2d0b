"""Hostile input to the CLI: one line on stderr, the right exit code, and nothing written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import AGENCY, agency_env

# Nobody listens on port 1: the connection is refused at once.
DEAD_BROKER = "redis://127.0.0.1:1/0"


def agency(tmp_path: Path, *args: str | bytes, timeout: float = 60,
           **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENCY, *args], cwd=tmp_path, env=agency_env(tmp_path, **env),
                          capture_output=True, text=True, errors="replace", timeout=timeout,
                          check=False)


def refused(tmp_path: Path, *args: str | bytes, code: int = 2, **env: str) -> str:
    """Run a command that must be refused; its one line of stderr, after checking nothing
    was written (the listing runs without `env`, which may be what is refused)."""
    result = agency(tmp_path, *args, **env)
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("agency: error: "), result.stderr
    listed = agency(tmp_path, "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr
    assert not (tmp_path / "out").exists()
    return lines[0].removeprefix("agency: error: ")


@pytest.mark.parametrize("request_bytes", [b"\xff\xfe bad", b"caf\xe9 website", b"\xc3"])
def test_a_request_that_is_not_utf8(tmp_path: Path, request_bytes: bytes) -> None:
    assert refused(tmp_path, "run", request_bytes) == "the request is not valid UTF-8 text"


def test_a_plan_request_with_a_lone_surrogate_escape(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text(
        '{"request": "\\udcff", "tasks": [{"title": "a", "agent_type": "marketing"}]}')
    assert "escape that is not valid UTF-8 text" in refused(tmp_path, "run", "--plan",
                                                            "plan.json")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("AGENCY_LLM", "gpt", "AGENCY_LLM: Input should be 'anthropic', 'offline' or 'auto'"),
    ("AGENCY_CONCURRENCY", "{bad", "AGENCY_CONCURRENCY: not valid JSON"),
    ("AGENCY_CONCURRENCY", '{"nosuchqueue": 2}',
     "AGENCY_CONCURRENCY: unknown queue 'nosuchqueue'; the queues are orchestrator, marketing, "
     "frontend_developer,"),
    ("AGENCY_CONCURRENCY", '{"marketing": 0}',
     "AGENCY_CONCURRENCY (marketing): Input should be greater than or equal to 1"),
])
@pytest.mark.parametrize("command", [["run", "Build a website"], ["workers"]])
def test_invalid_settings(tmp_path: Path, name: str, value: str, message: str,
                          command: list[str]) -> None:
    assert refused(tmp_path, *command, **{name: value}).startswith(message)


def test_a_plan_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "plans").mkdir()
    assert refused(tmp_path, "run", "--plan", "plans").endswith("is a directory, not a file")


def test_a_plan_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_bytes(b'{"tasks": [{"title": "\xff", "agent_type": "x"}]}')
    assert refused(tmp_path, "run", "--plan", "plan.json").endswith(
        "is not UTF-8 text (byte 22)")


def test_a_plan_nested_too_deeply(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text("[" * 100_000 + "]" * 100_000)
    assert refused(tmp_path, "run", "--plan", "plan.json").endswith("is nested too deeply")


@pytest.mark.parametrize("command", ["status", "watch", "resume", "cancel", "retry"])
@pytest.mark.parametrize("prefix", ["", "abc"])
def test_an_id_prefix_shorter_than_four_characters(tmp_path: Path, command: str,
                                                   prefix: str) -> None:
    kind = "task" if command == "retry" else "project"
    assert refused(tmp_path, command, prefix) == (
        f"a {kind} id prefix needs at least 4 characters; {prefix!r} has {len(prefix)}")


@pytest.mark.parametrize("command", ["status", "retry"])
@pytest.mark.parametrize("prefix", ["%%%%", b"\xff\xfe\xfd\xfc"])
def test_an_id_that_no_project_or_task_can_have(tmp_path: Path, command: str,
                                                prefix: str | bytes) -> None:
    kind = "task" if command == "retry" else "project"
    assert refused(tmp_path, command, prefix).startswith(f"no {kind} with id ")


@pytest.mark.parametrize("auth", ["admin", "admin:", ":secret", "admin:secret,bob"])
def test_flower_refuses_basic_auth_that_is_not_user_password(tmp_path: Path, auth: str) -> None:
    # Were the check missing, Flower would start and the timeout would fail the test.
    line = refused(tmp_path, "flower", AGENCY_BROKER_URL=DEAD_BROKER, FLOWER_BASIC_AUTH=auth)
    assert line.startswith("FLOWER_BASIC_AUTH must be user:password")
    assert auth not in line.removeprefix("FLOWER_BASIC_AUTH must be user:password")


def test_workers_with_the_broker_down(tmp_path: Path) -> None:
    """An unreachable service is exit 1 (docs/cli.md: exit codes), in one line."""
    line = refused(tmp_path, "workers", code=1, AGENCY_BROKER_URL=DEAD_BROKER)
    assert line.startswith("cannot reach the broker at redis://127.0.0.1:1/0")
