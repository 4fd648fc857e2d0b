"""The CLI as a subprocess, in embedded mode: no servers, no API key."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.domain.constants import BUDGET_HEADROOM, MAX_PLAN_TASKS, SPEND_RATIO
from tests.conftest import AGENCY, agency_env
from tests.services import Lines


def agency(tmp_path: Path, *args: str, timeout: float = 120,
           **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENCY, *args], cwd=tmp_path, env=agency_env(tmp_path, **env),
                          capture_output=True, text=True, timeout=timeout, check=False)


def status(tmp_path: Path, project_id: str, **env: str) -> dict[str, Any]:
    result = agency(tmp_path, "status", project_id, "--json", **env)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def project_id_of(stdout: str) -> str:
    line = next(x for x in stdout.splitlines() if x.startswith("Project ") and "submitted" in x)
    return line.split()[1]


def assert_exact_order(data: dict[str, Any]) -> None:
    """Every task started no earlier than the latest finish of its dependencies."""
    by_id = {t["id"]: t for t in data["tasks"]}
    for task in data["tasks"]:
        started = datetime.fromisoformat(task["started_at"])
        for dep in task["dependencies"]:
            assert started >= datetime.fromisoformat(by_id[dep]["finished_at"]), task["title"]


def test_run_request_to_deliverable(tmp_path: Path) -> None:
    result = agency(tmp_path, "run", "Build a website for a bakery")
    assert result.returncode == 0, result.stderr
    assert "offline model" in result.stderr
    deliverable = Path(result.stdout.strip().splitlines()[-1].removeprefix("Deliverable: "))
    assert deliverable.name == "deliverable.md" and deliverable.is_file()
    folder = deliverable.parent
    payload = json.loads((folder / "deliverable.json").read_text())
    for key in ("executive_summary", "key_deliverables", "technical_details", "next_steps",
                "success_metrics", "appendix"):
        assert payload[key], key
    data = status(tmp_path, project_id_of(result.stdout))
    assert data["status"] == "completed" and data["project_type"] == "website"
    assert data["output_dir"] == str(folder)
    assert all(t["status"] == "completed" and t["attempts"] == 1 for t in data["tasks"])
    assert len({t["agent_type"] for t in data["tasks"]}) >= 4
    assert all(t["worker"].startswith("embedded@") for t in data["tasks"])
    assert len(list((folder / "tasks").glob("*.md"))) == len(data["tasks"])
    assert data["tokens"]["input"] > 0
    # No --budget: the plan's need (its estimates x SPEND_RATIO x BUDGET_HEADROOM, planning's
    # spending on top), at least the simple complexity's 200k.
    planned = json.loads(agency(tmp_path, "plan", data["id"], "--json").stdout)["estimate"]
    need = planned["tokens"] * SPEND_RATIO * BUDGET_HEADROOM
    assert max(need, 200_000) <= data["budget_tokens"] <= max(need + data["tokens_used"],
                                                               200_000)
    assert planned["budget_tokens"] == data["budget_tokens"]
    assert_exact_order(data)
    listed = json.loads(agency(tmp_path, "list", "--json").stdout)
    assert [p["id"] for p in listed] == [data["id"]]


AGENTS = ["project_manager", "ux_designer", "content_writer", "backend_developer",
          "frontend_developer", "qa_engineer"]

PLAN = {
    "request": "Launch a small product page",
    "project_type": "website",
    "tasks": [
        {"title": "Brief", "agent_type": "project_manager", "dependencies": []},
        {"title": "Design", "agent_type": "ux_designer", "dependencies": [0]},
        {"title": "Copy", "agent_type": "content_writer", "dependencies": [0]},
        {"title": "API", "agent_type": "backend_developer", "dependencies": [0]},
        {"title": "Page", "agent_type": "frontend_developer", "dependencies": [1, 2, 3]},
        {"title": "Check", "agent_type": "qa_engineer", "dependencies": [4]},
    ],
}


def test_plan_file_runs_exactly_as_given(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(PLAN))
    result = agency(tmp_path, "run", "--plan", str(plan_path), AGENCY_OFFLINE_LATENCY="0.2")
    assert result.returncode == 0, result.stderr
    data = status(tmp_path, project_id_of(result.stdout))
    assert data["request"] == PLAN["request"] and data["project_type"] == "website"
    index_of = {t["id"]: t["index"] for t in data["tasks"]}
    got = [(t["index"], t["title"], t["agent_type"], sorted(index_of[d] for d in
                                                           t["dependencies"]))
           for t in data["tasks"]]
    want = [(i, t["title"], t["agent_type"], t["dependencies"])
            for i, t in enumerate(PLAN["tasks"])]
    assert got == want
    assert_exact_order(data)
    # The fan-out ran in parallel: the three branches overlap in time.
    branches = [t for t in data["tasks"] if t["index"] in (1, 2, 3)]
    latest_start = max(datetime.fromisoformat(t["started_at"]) for t in branches)
    earliest_end = min(datetime.fromisoformat(t["finished_at"]) for t in branches)
    assert latest_start < earliest_end


@pytest.mark.parametrize(("args", "message"), [
    (["run", ""], "the request is empty"),
    (["run", "   "], "the request is empty"),
    (["run", "x" * 20001], "the limit is 20000"),
    (["run", "--plan", "missing.json"], "does not exist"),
    (["run", "--plan", "bad.json"], "is not valid JSON"),
    (["run", "--plan", "cycle.json"], "dependency cycle"),
    (["run", "--plan", "unknown.json"], "unknown agent type 'wizard'"),
    (["run", "--plan", "empty.json"], "the plan has no tasks"),
    (["status", "nope"], "no project with id 'nope'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
        tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.json").write_text("{\"tasks\": [")
    (tmp_path / "empty.json").write_text(json.dumps({"tasks": []}))
    (tmp_path / "cycle.json").write_text(json.dumps({"tasks": [
        {"title": "a", "agent_type": "marketing", "dependencies": [1]},
        {"title": "b", "agent_type": "marketing", "dependencies": [0]}]}))
    (tmp_path / "unknown.json").write_text(json.dumps({"tasks": [
        {"title": "a", "agent_type": "wizard"}]}))
    result = agency(tmp_path, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert json.loads(agency(tmp_path, "list", "--json").stdout) == []
    assert not (tmp_path / "out").exists()


def test_no_wait_needs_a_broker(tmp_path: Path) -> None:
    result = agency(tmp_path, "run", "--no-wait", "Build a website")
    assert result.returncode == 2 and "--no-wait needs a broker" in result.stderr


def test_cancel_an_ended_project_is_refused(tmp_path: Path) -> None:
    result = agency(tmp_path, "run", "Write a blog series about sourdough")
    assert result.returncode == 0, result.stderr
    project_id = project_id_of(result.stdout)
    cancelled = agency(tmp_path, "cancel", project_id)
    assert cancelled.returncode == 2 and "has already ended" in cancelled.stderr
    assert status(tmp_path, project_id)["status"] == "completed"


def test_interrupt_stops_an_embedded_project_and_resume_carries_on(tmp_path: Path) -> None:
    env = agency_env(tmp_path, AGENCY_OFFLINE_LATENCY="0.5")
    run = subprocess.Popen([*AGENCY, "run", "Build a website for a bakery"], cwd=tmp_path,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.stdout is not None
    Lines(run.stdout).wait_for(
        lambda line: "completed (" in line and not line.startswith("running: 0/"),
        "saying some work is done", 120)  # then interrupt at once
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130
    assert "interrupted; carry on with: agency resume" in stderr
    project_id = stderr.strip().split()[-1]
    stopped = status(tmp_path, project_id)
    assert stopped["status"] == "failed" and "interrupted" in stopped["error"]
    done_before = {t["id"] for t in stopped["tasks"] if t["status"] == "completed"}
    assert done_before and len(done_before) < len(stopped["tasks"])
    resumed = agency(tmp_path, "resume", project_id)
    assert resumed.returncode == 0, resumed.stderr
    final = status(tmp_path, project_id)
    assert final["status"] == "completed"
    for task in final["tasks"]:
        if task["id"] in done_before:
            assert task["attempts"] == 1  # completed work was not run again
    assert_exact_order(final)


@pytest.mark.parametrize(("env", "code", "message"), [
    ({"AGENCY_BROKER_URL": "redis://:hunter2@127.0.0.1:9/0"}, 1,
     "cannot reach the broker at redis://:**@127.0.0.1:9/0"),
    ({"AGENCY_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/x"}, 1,
     "cannot connect to PostgreSQL"),
    ({"AGENCY_DATABASE_URL": "mysql://root:hunter2@db/x"}, 2,
     "AGENCY_DATABASE_URL must start with postgresql:// or sqlite:///, not mysql:"),
])
def test_unreachable_or_misconfigured_services_are_one_line(
        tmp_path: Path, env: dict[str, str], code: int, message: str) -> None:
    result = agency(tmp_path, "run", "Build a website", timeout=60, **env)
    assert result.returncode == code
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"agency: error: {message}")
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
    assert json.loads(agency(tmp_path, "list", "--json").stdout) == []


def test_a_killed_embedded_run_is_recovered_by_resume(tmp_path: Path) -> None:
    """SIGKILL leaves the project running with tasks in progress; resume carries on."""
    import signal

    from tests.conftest import AGENCY, agency_env

    env = agency_env(tmp_path, AGENCY_OFFLINE_LATENCY="0.5", AGENCY_LEASE_SECONDS="2",
                     AGENCY_RECONCILE_INTERVAL="0.5")
    run = subprocess.Popen([*AGENCY, "run", "Analyze churn data and build a dashboard"],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    assert run.stdout is not None
    project_id = ""
    for line in run.stdout:
        project_id = project_id or (line.split()[1] if line.endswith("submitted.\n") else "")
        if "in progress" in line and " 0 in progress" not in line and "/9 completed" in line \
                and not line.startswith("running: 0/"):
            break
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=30)
    stalled = status(tmp_path, project_id)
    assert stalled["status"] == "running"
    assert any(t["status"] == "in_progress" for t in stalled["tasks"])
    done_before = {t["id"] for t in stalled["tasks"] if t["status"] == "completed"}
    cut_short = {t["id"] for t in stalled["tasks"] if t["status"] == "in_progress"}
    resumed = agency(tmp_path, "resume", project_id[:8], AGENCY_LEASE_SECONDS="2",
                     AGENCY_RECONCILE_INTERVAL="0.5")
    assert resumed.returncode == 0, resumed.stderr
    assert "lease expires" in resumed.stdout
    final = status(tmp_path, project_id)
    assert final["status"] == "completed"
    for task in final["tasks"]:
        if task["id"] in done_before:
            assert task["attempts"] == 1  # completed work is never run again
        if task["id"] in cut_short:
            assert task["attempts"] == 2  # the killed attempt, then the recovered one
    assert_exact_order(final)


def test_a_deadline_is_spread_over_the_tasks(tmp_path: Path) -> None:
    result = agency(tmp_path, "run", "--deadline", "6h", "Build a website for a bakery")
    assert result.returncode == 0, result.stderr
    data = status(tmp_path, project_id_of(result.stdout))
    due = datetime.fromisoformat(data["deadline"])
    span = (due - datetime.fromisoformat(data["created_at"])).total_seconds()
    assert 5.9 * 3600 < span < 6.1 * 3600
    limits = {t["id"]: datetime.fromisoformat(t["deadline"]) for t in data["tasks"]}
    assert max(limits.values()) == due and not any(t["at_risk"] for t in data["tasks"])
    for task in data["tasks"]:  # a dependency must finish before what needs it
        assert all(limits[d] < limits[task["id"]] for d in task["dependencies"])
    late = agency(tmp_path, "run", "--deadline", "last week", "Build a website")
    assert late.returncode == 2 and len(late.stderr.strip().splitlines()) == 1


def test_the_largest_plan_completes_on_its_default_budget(tmp_path: Path) -> None:
    """60 tasks (the most a plan may have), no --budget: the budget grows with the plan (a
    fixed 400k stopped such a plan `budget_exhausted` at about half of it), and `agency
    plan` says what the tasks are expected to spend, from the same numbers."""
    tasks = [{"title": f"Part {i}", "agent_type": AGENTS[i % len(AGENTS)],
              "dependencies": [i - 1] if i % 6 else []} for i in range(MAX_PLAN_TASKS)]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"request": "A large launch", "tasks": tasks}))
    result = agency(tmp_path, "run", "--plan", str(plan), timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    data = status(tmp_path, project_id_of(result.stdout))
    assert data["status"] == "completed", data["status"]
    assert all(t["status"] == "completed" for t in data["tasks"])
    assert data["budget_tokens"] == MAX_PLAN_TASKS * 4000 * SPEND_RATIO * BUDGET_HEADROOM
    assert data["tokens_used"] < data["budget_tokens"]
    shown = agency(tmp_path, "plan", data["id"])
    assert shown.returncode == 0, shown.stderr
    expected = f"{round(MAX_PLAN_TASKS * 4000 * SPEND_RATIO):,} expected"
    assert expected in " ".join(shown.stdout.split()), shown.stdout[:600]
    assert f"budget {data['budget_tokens']:,} tokens" in " ".join(shown.stdout.split())


def test_a_request_cannot_drive_the_terminal_or_the_viewer(tmp_path: Path) -> None:
    """Escape sequences in a request reach no terminal through `status` or `list` (made
    visible instead), none reach deliverable.md or the task files, and raw HTML there is
    escaped; `status --json` keeps the request exact."""
    request = ("Build a bakery site \x1b[31mRED\x1b[0m \x1b]0;owned\x07 \x1b[2J "
               "<img src=x onerror=alert(1)>")
    result = agency(tmp_path, "run", request)
    assert result.returncode == 0, result.stderr[-2000:]
    project_id = project_id_of(result.stdout)
    assert "\x1b" not in result.stdout + result.stderr
    for args in (("status", project_id), ("list",), ("log", project_id), ("plan", project_id)):
        shown = agency(tmp_path, *args)
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout + shown.stderr and "\x07" not in shown.stdout, args
    shown = agency(tmp_path, "status", project_id).stdout
    assert "\\x1b[31mRED" in " ".join(shown.split())  # visible, not interpreted
    assert status(tmp_path, project_id)["request"] == request  # the JSON stays exact
    folder = Path(status(tmp_path, project_id)["output_dir"])
    for md in [folder / "deliverable.md", *(folder / "tasks").glob("*.md")]:
        text = md.read_text()
        assert "\x1b" not in text and "\x07" not in text, md.name
        assert "<img" not in text, md.name
    assert "&lt;img src=x onerror=alert(1)>" in (folder / "deliverable.md").read_text()
