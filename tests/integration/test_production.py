"""The production topology for real: `honcho start` on the Procfile, Redis, PostgreSQL, Flower."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from orchestrator.domain.constants import ALL_QUEUES
from orchestrator.domain.settings import DEFAULT_CONCURRENCY
from tests.conftest import (
    AGENCY,
    PG_ADMIN_URL,
    REPO,
    agency_env,
    chromium,
    queue_keys,
)
from tests.fake_anthropic import FakeAnthropic
from tests.integration.test_embedded_cli import assert_exact_order, project_id_of
from tests.services import Lines, PrivateRedis, free_port, wait_until

HOST = socket.gethostname()
AUTH = "admin:s3cret"
SECRET_KEY = "sk-test-NEVER-LOG-ME-91c2"


class Topology:
    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.extra: list[subprocess.Popen[bytes]] = []
        self.fake: FakeAnthropic | None = None
        self.logs: list[Any] = []

    def agency(self, *args: str, timeout: float = 120,
               **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*AGENCY, *args], cwd=self.home, env={**self.env, **env},
                              capture_output=True, text=True, timeout=timeout, check=False)

    def workers(self) -> list[dict[str, Any]]:
        result = self.agency("workers", "--json")
        assert result.returncode == 0, result.stderr
        data: list[dict[str, Any]] = json.loads(result.stdout)
        return data

    def wait_for(self, names: set[str], timeout: float = 90) -> None:
        def up() -> bool:
            return names <= {w["name"] for q in self.workers() for w in q["workers"]}
        wait_until(up, f"workers {sorted(names)} up", timeout, every=0.5)

    def in_flight(self) -> int:
        """Messages the broker holds: waiting in a queue, or taken and not yet acknowledged
        (acks_late: a running task's message stays unacked until it ends)."""
        client = redis.Redis.from_url(self.env["AGENCY_BROKER_URL"])
        try:
            lists = [k for k in queue_keys() if not k.startswith("unacked")]
            return sum(int(client.llen(k)) for k in lists) + int(client.hlen("unacked"))
        finally:
            client.close()

    def start_worker(self, queue: str, name: str, concurrency: int) -> None:
        log = (self.home / f"{name}.log").open("wb")
        self.logs.append(log)
        self.extra.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", queue,
             "-n", f"{name}@%h", "-c", str(concurrency), "-l", "INFO"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def flower(self, path: str, auth: str | None) -> tuple[int, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.env['FLOWER_PORT']}{path}")
        if auth:
            token = base64.b64encode(auth.encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, pg_admin: Any,
             module_redis: PrivateRedis) -> Iterator[Topology]:
    """honcho on the Procfile, on a broker of the module's own (its queues, worker names and
    MONITOR are nobody else's, so the module runs beside others under `pytest -n`)."""
    home = tmp_path_factory.mktemp("production")
    fake = FakeAnthropic(api_key=SECRET_KEY).__enter__()
    name = f"agency_test_{uuid.uuid4().hex[:12]}"
    pg_admin.execute(f'CREATE DATABASE "{name}"')
    env = agency_env(home, AGENCY_BROKER_URL=module_redis.url,
                     AGENCY_DATABASE_URL=f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}",
                     FLOWER_BASIC_AUTH=AUTH,
                     FLOWER_PORT=str(free_port()), ANTHROPIC_API_KEY=SECRET_KEY,
                     ANTHROPIC_BASE_URL=fake.url, AGENCY_MODEL_BACKOFF="0.05")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    top = Topology(home, env)
    top.fake = fake
    assert top.agency("db", "upgrade").returncode == 0
    log = (home / "honcho.log").open("wb")
    top.logs.append(log)
    # honcho reads `.env` from the app dir (the repository) over the environment: give it an
    # empty one, so that a developer's `cp .env.example .env` cannot change what is tested.
    no_env = home / "empty.env"
    no_env.touch()
    honcho = subprocess.Popen([sys.executable, "-m", "honcho", "-e", str(no_env),
                               "-f", str(REPO / "Procfile"), "-d", str(REPO), "start"],
                              cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        top.wait_for({f"{q}@{HOST}" for q in ALL_QUEUES})
        yield top
    finally:
        for proc in top.extra:
            proc.terminate()
        os.killpg(honcho.pid, signal.SIGTERM)
        for proc in [*top.extra, honcho]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for handle in top.logs:
            handle.close()
        fake.__exit__()
        pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_honcho_runs_a_project_on_per_agent_workers(topology: Topology) -> None:
    result = topology.agency("run", "Build a website for a bakery")
    assert result.returncode == 0, result.stderr
    assert "no live worker" not in result.stderr
    data = json.loads(topology.agency("status", project_id_of(result.stdout), "--json").stdout)
    assert data["status"] == "completed"
    for task in data["tasks"]:
        assert task["worker"] == f"{task['agent_type']}@{HOST}", task
        # Its agent worked in a tool loop and its work was reviewed, on its own worker.
        assert task["model_calls"] >= 3 and task["reviews"], task
        assert task["reviews"][-1]["verdict"] == "pass"
    assert_exact_order(data)
    assert Path(data["output_dir"], "deliverable.md").is_file()
    files = [p for p in Path(data["output_dir"], "artifacts").rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files) and any(p.suffix == ".css" for p in files)


def test_workers_lists_every_queue_with_its_concurrency(topology: Topology) -> None:
    queues = {q["queue"]: q for q in topology.workers()}
    assert set(queues) == set(ALL_QUEUES)
    for name, queue in queues.items():
        own = [w for w in queue["workers"] if w["name"] == f"{name}@{HOST}"]
        assert own, name
        assert own[0]["concurrency"] == DEFAULT_CONCURRENCY[name]
        assert queue["depth"] >= 0


def test_two_workers_on_one_queue_share_its_tasks(topology: Topology, tmp_path: Path) -> None:
    topology.start_worker("frontend_developer", "frontend_developer-b", 1)
    topology.wait_for({f"frontend_developer-b@{HOST}"})
    plan = {"request": "Eight landing pages", "tasks": [
        {"title": "Brief", "agent_type": "project_manager"},
        *({"title": f"Page {i}", "agent_type": "frontend_developer", "dependencies": [0]}
          for i in range(8))]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    assert topology.fake is not None
    topology.fake.faults.latency = 0.5  # long enough that one worker cannot take them all
    try:
        result = topology.agency("run", "--plan", str(path))
    finally:
        topology.fake.faults.latency = 0.0
    assert result.returncode == 0, result.stderr
    data = json.loads(topology.agency("status", project_id_of(result.stdout), "--json").stdout)
    pages = {t["worker"] for t in data["tasks"] if t["agent_type"] == "frontend_developer"}
    assert pages == {f"frontend_developer@{HOST}", f"frontend_developer-b@{HOST}"}


def test_flower_lists_project_tasks_only_with_credentials(topology: Topology) -> None:
    result = topology.agency("run", "Write a blog series about sourdough")
    assert result.returncode == 0, result.stderr
    project_id = project_id_of(result.stdout)
    status, _ = topology.flower("/api/tasks", None)
    assert status == 401
    ours: list[dict[str, Any]] = []

    def listed() -> bool:
        status, tasks = topology.flower("/api/tasks", AUTH)
        assert status == 200
        ours[:] = [t for t in tasks.values() if project_id in str(t.get("kwargs"))]
        return len(ours) >= 9
    wait_until(listed, "Flower listing the project's agent tasks", 30, every=0.5)
    names = {t["name"] for t in ours}
    assert "agency.agent.content_writer" in names and "agency.orchestrator.integrate" in names
    assert all("title" in str(t["kwargs"]) for t in ours if t["name"].startswith("agency.agent"))


def test_a_duplicate_message_shows_as_ignored_in_flower(topology: Topology) -> None:
    """Planning sent again for a completed project is not run, and is not a failure."""
    import celery

    result = topology.agency("run", "Write a blog series about sourdough")
    assert result.returncode == 0, result.stderr
    project_id = project_id_of(result.stdout)
    client = celery.Celery(broker=topology.env["AGENCY_BROKER_URL"])
    duplicate = client.send_task("agency.orchestrator.plan", kwargs={"project_id": project_id},
                                 queue="orchestrator").id
    states: list[str | None] = []

    def ended() -> bool:
        _, task = topology.flower(f"/api/task/info/{duplicate}", AUTH)
        states.append((task or {}).get("state"))
        return states[-1] in ("IGNORED", "FAILURE", "SUCCESS")
    wait_until(ended, "Flower showing the duplicate's outcome", 30, every=0.2)
    assert states[-1] == "IGNORED"  # not FAILURE with a traceback
    status = json.loads(topology.agency("status", project_id, "--json").stdout)
    assert status["status"] == "completed" and status["error"] is None


def test_flower_refuses_to_start_open(topology: Topology) -> None:
    env = {k: v for k, v in topology.env.items() if k != "FLOWER_BASIC_AUTH"}
    result = subprocess.run([*AGENCY, "flower"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2 and "refuses to start open" in result.stderr


def test_no_wait_then_watch(topology: Topology) -> None:
    submitted = topology.agency("run", "--no-wait", "Analyze churn data and build a dashboard")
    assert submitted.returncode == 0, submitted.stderr
    project_id = project_id_of(submitted.stdout)
    watched = topology.agency("watch", project_id[:8])
    assert watched.returncode == 0, watched.stderr
    assert f"Project {project_id} completed" in watched.stdout
    assert "completed (100%)" in watched.stdout


def _status(topology: Topology, project_id: str) -> dict[str, Any]:
    shown = topology.agency("status", project_id, "--json")
    assert shown.returncode == 0, shown.stderr
    data: dict[str, Any] = json.loads(shown.stdout)
    return data


def quiet(topology: Topology, timeout: float = 60) -> None:
    """Wait until the fleet has done all it was sent: no message on the broker, no task
    running. What has not started by then was not going to."""
    assert topology.fake is not None
    fake, seen = topology.fake, [False]

    def idle() -> bool:
        # Twice in a row: a message a worker just popped is in neither place for a moment.
        now = topology.in_flight() == 0 and fake.in_flight == 0
        twice, seen[0] = now and seen[0], now
        return twice
    wait_until(idle, "the fleet idle", timeout, every=0.2)


def _waiting_for_approval(topology: Topology, request: str) -> str:
    """Submit with --approve-plan and return the id once it is planned and waiting."""
    submitted = topology.agency("run", "--approve-plan", request)
    assert submitted.returncode == 0, submitted.stderr
    assert "waits for approval" in submitted.stdout
    project_id = project_id_of(submitted.stdout)
    data = _status(topology, project_id)
    assert data["status"] == "awaiting_approval"
    quiet(topology)
    # Planned, and nothing started: no agent took a task, no task spent a token.
    assert data["tasks"] and all(t["status"] in ("pending", "blocked") for t in data["tasks"])
    assert all(t["attempts"] == 0 and t["model_calls"] == 0 for t in data["tasks"])
    return project_id


def test_a_plan_waits_for_approval_then_runs(topology: Topology) -> None:
    project_id = _waiting_for_approval(topology, "Build a website for a bakery")
    plan = topology.agency("plan", project_id, "--json")
    assert plan.returncode == 0, plan.stderr
    shown = json.loads(plan.stdout)
    assert shown["estimate"]["tokens"] == sum(t["estimated_tokens"] for t in shown["tasks"]) > 0
    assert shown["estimate"]["cost_usd"] > 0
    quiet(topology)  # still nothing runs while it waits
    assert all(t["attempts"] == 0 for t in _status(topology, project_id)["tasks"])
    approved = topology.agency("approve", project_id[:8])
    assert approved.returncode == 0, approved.stderr
    assert f"Project {project_id} completed" in approved.stdout
    again = topology.agency("approve", project_id)
    assert again.returncode == 2 and "not awaiting approval" in again.stderr
    log = [e for e in _events(topology, project_id) if e["kind"] == "operator"]
    assert [e["to_status"] for e in log] == ["running"]
    assert log[0]["detail"].startswith("approved by ")
    history = topology.agency("log", project_id, "--json")
    assert history.returncode == 0, history.stderr
    kinds = [e["kind"] for e in json.loads(history.stdout)]
    assert kinds[0] == "created" and "operator" in kinds and "tool" not in kinds
    assert kinds.index("operator") < kinds.index("task")  # approved before any task ran


def test_a_rejected_plan_runs_nothing(topology: Topology) -> None:
    project_id = _waiting_for_approval(topology, "Write a blog series about sourdough")
    refused = topology.agency("reject", project_id, "--reason", " ")
    assert refused.returncode == 2 and "--reason" in refused.stderr
    rejected = topology.agency("reject", project_id, "--reason", "over budget this month")
    assert rejected.returncode == 0, rejected.stderr
    quiet(topology)
    data = _status(topology, project_id)
    assert data["status"] == "cancelled" and "over budget this month" in data["error"]
    assert all(t["attempts"] == 0 and t["status"] == "cancelled" for t in data["tasks"])
    late = topology.agency("approve", project_id, "--no-wait")
    assert late.returncode == 2 and "cancelled" in late.stderr


def test_a_waiting_plan_is_edited_then_approved(topology: Topology, tmp_path: Path) -> None:
    from bench import shapes

    project_id = _waiting_for_approval(topology, "Run a social media campaign for our sneakers")
    before = topology.agency("plan", project_id, "--json").stdout
    bad = tmp_path / "cycle.json"
    bad.write_text(json.dumps(shapes.plan("cycle", [[1], [0]])))
    refused = topology.agency("plan", project_id, "--edit", str(bad))
    assert refused.returncode == 2 and "dependency cycle" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert topology.agency("plan", project_id, "--json").stdout == before  # unchanged
    good = tmp_path / "smaller.json"
    good.write_text(json.dumps(shapes.plan("smaller", [[], [0], [0], [1, 2]])))
    edited = topology.agency("plan", project_id, "--edit", str(good), "--json")
    assert edited.returncode == 0, edited.stderr
    assert [t["title"] for t in json.loads(edited.stdout)["tasks"]] == [
        f"smaller step {i}" for i in range(4)]
    approved = topology.agency("approve", project_id)
    assert approved.returncode == 0, approved.stderr
    data = _status(topology, project_id)
    assert data["status"] == "completed" and len(data["tasks"]) == 4
    assert_exact_order(data)
    late = topology.agency("plan", project_id, "--edit", str(good))
    assert late.returncode == 2 and "only a plan awaiting approval" in late.stderr
    details = [e["detail"] for e in _events(topology, project_id) if e["kind"] == "operator"]
    assert details[0].startswith("plan edited by ") and "4 tasks" in details[0]


def test_a_paused_project_starts_nothing_new_and_resumes_to_completion(
        topology: Topology) -> None:
    from datetime import UTC, datetime

    assert topology.fake is not None
    topology.fake.faults.latency = 0.3  # tasks of a second or two: a pause lands mid-project
    try:
        submitted = topology.agency("run", "--no-wait", "Build a website for a bakery")
        assert submitted.returncode == 0, submitted.stderr
        project_id = project_id_of(submitted.stdout)
        wait_until(lambda: any(t["status"] == "in_progress" for t in
                               _status(topology, project_id).get("tasks", [])),
                   "a task of the project in progress", 60, every=0.2)
        paused = topology.agency("pause", project_id)
        assert paused.returncode == 0, paused.stderr
        since = datetime.now(UTC)
        quiet(topology)  # what was running finished; what became ready was not sent
        data = _status(topology, project_id)
        assert data["status"] == "paused"
        started = [datetime.fromisoformat(t["started_at"]) for t in data["tasks"]
                   if t["started_at"]]
        assert all((s - since).total_seconds() < 1.0 for s in started), started
        assert any(t["status"] in ("pending", "blocked") for t in data["tasks"])
        assert topology.agency("pause", project_id).returncode == 2  # already paused
        resumed = topology.agency("resume", project_id)
        assert resumed.returncode == 0, resumed.stderr
        assert f"Project {project_id} completed" in resumed.stdout
        assert_exact_order(_status(topology, project_id))
        moves = [(e["from_status"], e["to_status"]) for e in _events(topology, project_id)
                 if e["kind"] == "operator"]
        assert moves == [("running", "paused"), ("paused", "running")]
    finally:
        topology.fake.faults.latency = 0.0


def _new_task(title: str, agent: str, deps: list[Any]) -> dict[str, Any]:
    return {"title": title, "agent_type": agent, "description": f"{title}, added later.",
            "dependencies": deps, "deliverables": [title], "acceptance_criteria": [title]}


def test_tasks_added_to_a_running_project_run_in_order(topology: Topology,
                                                       tmp_path: Path) -> None:
    assert topology.fake is not None
    # The last task asks a person and waits: the project is running for as long as the test
    # needs, however slow the machine, until the question is answered.
    topology.fake.faults.questions = {"QA and launch readiness": ("Launch on a weekday?",
                                                                  "yes, a Tuesday")}
    try:
        submitted = topology.agency("run", "--no-wait", "Build a website for a bakery")
        assert submitted.returncode == 0, submitted.stderr
        project_id = project_id_of(submitted.stdout)
        wait_until(lambda: _status(topology, project_id)["status"] == "running",
                   "the project running", 60, every=0.2)
        tasks = _status(topology, project_id)["tasks"]
        n, first = len(tasks), next(t for t in tasks if t["index"] == 0)
        bad = {"cycle": [_new_task("A", "marketing", [n + 1]), _new_task("B", "marketing", [n])],
               "missing": [_new_task("A", "marketing", ["ffffffff"])],
               "agent": [_new_task("A", "wizard", [0])]}
        for name, new in bad.items():
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps({"tasks": new}))
            refused = topology.agency("add-task", project_id, "--plan", str(path), "--no-wait")
            assert refused.returncode == 2, (name, refused.stderr)
            assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert len(_status(topology, project_id)["tasks"]) == n  # nothing was added
        path = tmp_path / "more.json"
        path.write_text(json.dumps({"tasks": [
            _new_task("Press kit", "content_writer", [first["id"][:8]]),
            _new_task("Press outreach", "marketing", [n, n - 1])]}))
        adding = subprocess.Popen([*AGENCY, "add-task", project_id, "--plan", str(path)],
                                  cwd=topology.home, env=topology.env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: bool(_questions(topology, project_id)), "QA's question", 120,
                       alive=lambda: _exited(adding), every=0.3)
            [question] = _questions(topology, project_id)
            answered = topology.agency("answer", question["task_id"][:8], "Tuesday it is")
            assert answered.returncode == 0, answered.stderr
            out, err = adding.communicate(timeout=180)
        finally:
            if adding.poll() is None:
                adding.kill()
                adding.communicate()
        assert adding.returncode == 0, err
        assert f"Project {project_id} completed" in out
        data = _status(topology, project_id)
        assert len(data["tasks"]) == n + 2 and all(t["status"] == "completed"
                                                   for t in data["tasks"])
        assert_exact_order(data)
        by_index = {t["index"]: t for t in data["tasks"]}
        assert sorted(by_index[n + 1]["dependencies"]) == sorted(
            [by_index[n]["id"], by_index[n - 1]["id"]])
        assert by_index[n]["dependencies"] == [first["id"]]
    finally:
        topology.fake.faults.questions = {}


def _questions(topology: Topology, project_id: str) -> list[dict[str, Any]]:
    listed = topology.agency("questions", project_id[:8], "--json")
    assert listed.returncode == 0, listed.stderr
    found: list[dict[str, Any]] = json.loads(listed.stdout)
    return found


def test_an_agents_question_waits_for_the_answer(topology: Topology) -> None:
    assert topology.fake is not None
    asked = ("Which pages must the site have?", "home, menu and contact")
    topology.fake.faults.questions = {"Sitemap": asked}
    try:
        submitted = topology.agency("run", "--no-wait", "Build a website for a bakery")
        assert submitted.returncode == 0, submitted.stderr
        project_id = project_id_of(submitted.stdout)
        open_: list[dict[str, Any]] = []

        def asked_() -> bool:
            listed = topology.agency("questions", project_id[:8], "--json")
            assert listed.returncode == 0, listed.stderr
            open_[:] = json.loads(listed.stdout)
            return bool(open_)
        wait_until(asked_, "a question asked", 90, every=0.3)
        [question] = open_
        assert question["question"] == asked[0] and question["assumption"] == asked[1]
        task = next(t for t in _status(topology, project_id)["tasks"]
                    if t["id"] == question["task_id"])
        assert task["status"] == "needs_input"
        # The rest of the project goes on meanwhile: every task that does not build on the
        # question's completes, while the question's waits and the project runs.
        after = _downstream(_status(topology, project_id)["tasks"], task["id"])
        wait_until(lambda: all(t["status"] == "completed" for t in
                               _status(topology, project_id)["tasks"]
                               if t["id"] not in after | {task["id"]}),
                   "the tasks that do not wait on the question completed", 90, every=0.3)
        data = _status(topology, project_id)
        assert data["status"] == "running" and after
        assert {t["id"]: t["status"] for t in data["tasks"]}[task["id"]] == "needs_input"
        assert all(t["status"] in ("pending", "blocked") for t in data["tasks"]
                   if t["id"] in after)
        assert topology.agency("answer", question["task_id"][:8], "  ").returncode == 2
        answered = topology.agency("answer", question["task_id"][:8],
                                   "Home, menu, online orders and contact")
        assert answered.returncode == 0, answered.stderr
        again = topology.agency("answer", question["task_id"][:8], "twice")
        assert again.returncode == 2 and "no open question" in again.stderr
        watched = topology.agency("watch", project_id, timeout=180)
        assert f"Project {project_id} completed" in watched.stdout, watched.stderr
        assert json.loads(topology.agency("questions", "--json").stdout) == []
        # The agent read the answer: its next turn carried it as the tool's result.
        results = [b for r in topology.fake.requests for m in r["body"].get("messages", [])
                   if isinstance(m.get("content"), list) for b in m["content"]
                   if b.get("type") == "tool_result"]
        assert any("Home, menu, online orders and contact" in str(b.get("content"))
                   for b in results)
    finally:
        topology.fake.faults.questions = {}


def _downstream(tasks: list[dict[str, Any]], task_id: str) -> set[str]:
    """The ids of the tasks that build on `task_id`, directly or not."""
    found: set[str] = set()
    while True:
        more = {t["id"] for t in tasks if t["id"] not in found
                and ({task_id} | found) & set(t["dependencies"])}
        if not more:
            return found
        found |= more


def _events(topology: Topology, project_id: str) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(topology.env["AGENCY_DATABASE_URL"], row_factory=dict_row) as conn:
        return list(conn.execute("SELECT kind, from_status, to_status, detail FROM events "
                                 "WHERE project_id = %s ORDER BY id", (project_id,)))


def test_run_warns_when_a_needed_queue_has_no_worker(topology: Topology, tmp_path: Path,
                                                     private_redis: PrivateRedis,
                                                     pg_url: str) -> None:
    """On a broker where only the orchestrator is served, agent tasks wait. (A store of its
    own too: the topology's reconciler would otherwise send the waiting task to its fleet.)"""
    env = {**topology.env, "AGENCY_BROKER_URL": private_redis.url, "AGENCY_DATABASE_URL": pg_url}
    upgraded = subprocess.run([*AGENCY, "db", "upgrade"], cwd=topology.home, env=env,
                              capture_output=True, text=True, timeout=60, check=False)
    assert upgraded.returncode == 0, upgraded.stderr
    log = (tmp_path / "orchestrator.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "orchestrator",
         "-n", "lonely@%h", "-l", "INFO"], cwd=REPO, env=env, stdout=log,
        stderr=subprocess.STDOUT)
    run = subprocess.Popen([*AGENCY, "run", "Build a website for a bakery"], cwd=topology.home,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert run.stderr is not None
        # The orchestrator's worker may still be starting: a first warning may name its queue.
        warning = Lines(run.stderr).wait_for(lambda line: "frontend_developer" in line,
                                             "with a warning naming frontend_developer", 60)
        assert "no live worker on queue(s)" in warning and "frontend_developer" in warning
        assert "orchestrator" not in warning.split("queue(s)")[1]
        assert run.poll() is None  # the project waits; it does not fail
        queues: dict[str, Any] = {}

        def first_task_waits() -> bool:
            shown = subprocess.run([*AGENCY, "workers", "--json"], cwd=topology.home, env=env,
                                   capture_output=True, text=True, timeout=60, check=True)
            queues.update({q["queue"]: q for q in json.loads(shown.stdout)})
            return bool(queues["project_manager"]["depth"] >= 1)
        # The warning may come before the plan's first task reached its queue: it waits there.
        wait_until(first_task_waits, "the plan's first task queued", 60, every=0.3)
        assert queues["project_manager"]["workers"] == []
        assert run.poll() is None
        assert [w["name"] for w in queues["orchestrator"]["workers"]] == [f"lonely@{HOST}"]
    finally:
        run.kill()
        run.communicate()
        worker.terminate()
        worker.wait(timeout=30)
        log.close()


def _exited(proc: subprocess.Popen[Any]) -> str | None:
    return None if proc.poll() is None else f"exit code {proc.returncode}"


def _published_messages(monitor_log: str) -> list[str]:
    """The decoded bodies and headers of every message pushed to Redis during the capture."""
    import ast
    import base64
    import re

    found = []
    for line in monitor_log.splitlines():
        if '"LPUSH"' not in line:
            continue
        args = re.findall(r'"((?:[^"\\]|\\.)*)"', line)
        envelope = json.loads(ast.literal_eval('b"' + args[-1] + '"'))
        body = base64.b64decode(envelope["body"]).decode()
        found.append(body + json.dumps(envelope["headers"]))
    return found


def test_no_key_url_or_prompt_in_messages_flower_or_logs(topology: Topology,
                                                         tmp_path: Path) -> None:
    assert topology.fake is not None
    capture = (tmp_path / "monitor.log").open("wb")
    monitor = subprocess.Popen(["redis-cli", "-u", topology.env["AGENCY_BROKER_URL"],
                                "monitor"], stdout=capture, stderr=subprocess.STDOUT)
    try:
        # MONITOR answers OK once it is attached: from then on it sees every command.
        wait_until(lambda: b"OK" in (tmp_path / "monitor.log").read_bytes(),
                   "redis-cli monitor attached", 30, alive=lambda: _exited(monitor))
        result = topology.agency("run", "Run a social media campaign for our new sneakers")
        assert result.returncode == 0, result.stderr
    finally:
        monitor.terminate()
        monitor.wait(timeout=10)
        capture.close()
    project_id = project_id_of(result.stdout)
    assert any(r["body"]["model"] == "claude-haiku-5-5" for r in topology.fake.requests)
    messages = _published_messages((tmp_path / "monitor.log").read_text(errors="replace"))
    ours = [m for m in messages if project_id in m]
    assert len(ours) >= 9, "every agent task's message was captured"
    _, flower_tasks = topology.flower("/api/tasks", AUTH)
    logs = (topology.home / "honcho.log").read_text(errors="replace")
    secrets = [SECRET_KEY, topology.fake.url.removeprefix("http://"), "You are the CEO",
               "Decompose this project", "Project request:", "Task Results"]
    for where, text in [("messages", "\n".join(messages)), ("flower", json.dumps(flower_tasks)),
                        ("logs", logs)]:
        for secret in secrets:
            assert secret not in text, f"{secret!r} found in {where}"
    assert "INFO" in logs and "succeeded" in logs  # the logs were at INFO and were read


def test_agent_tasks_send_progress_events(topology: Topology, tmp_path: Path) -> None:
    capture = (tmp_path / "events.log").open("wb")
    dumper = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers.app", "events",
                               "--dump"], cwd=REPO, env=topology.env, stdout=capture,
                              stderr=subprocess.STDOUT)
    events = tmp_path / "events.log"
    try:
        # Listening once it shows an event: the workers' heartbeats come every two seconds.
        wait_until(lambda: "heartbeat" in events.read_text(errors="replace"),
                   "celery events --dump receiving", 60, alive=lambda: _exited(dumper))
        result = topology.agency("run", "Build a website for a bakery")
        assert result.returncode == 0, result.stderr
        project_id = project_id_of(result.stdout)
        # A reviewed task's agent message ends parked: its review is its reviewer's message.
        wait_until(lambda: any("parked: waiting for review" in line and project_id in line
                               for line in events.read_text(errors="replace").splitlines()),
                   "the project's progress events dumped", 30)
    finally:
        dumper.terminate()
        dumper.wait(timeout=10)
        capture.close()
    dump = events.read_text(errors="replace")
    progress = [line for line in dump.splitlines()
                if "agency progress" in line and project_id in line]
    assert any("calling model" in line for line in progress), dump[-2000:]
    assert any("parked: waiting for review round 1" in line for line in progress)


def _flower_tasks(topology: Topology, project_id: str, port: str | None = None,
                  at_least: int = 1, timeout: float = 30) -> dict[str, Any]:
    """Flower's tasks of a project (by root id), once it has at least `at_least`."""
    env = topology.env if port is None else {**topology.env, "FLOWER_PORT": port}
    ours: dict[str, Any] = {}

    def enough() -> bool:
        try:
            status, tasks = Topology(topology.home, env).flower("/api/tasks", AUTH)
        except (urllib.error.URLError, ConnectionError):  # still starting
            status, tasks = 0, None
        ours.clear()
        ours.update({k: t for k, t in (tasks or {}).items() if t.get("root_id") == project_id})
        return status == 200 and len(ours) >= at_least
    with contextlib.suppress(TimeoutError):  # the caller's assertions say what was missing
        wait_until(enough, f"Flower listing {at_least} tasks of the project", timeout,
                   every=0.5)
    return ours


def _page(url: str, png: Path | None = None) -> str:
    """A page's DOM after headless Chromium ran its scripts (and a screenshot of it)."""
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--virtual-time-budget=8000", "--window-size=1400,900"]
    if png is not None:
        shot = subprocess.run([*args, f"--screenshot={png}", url], capture_output=True,
                              text=True, timeout=90, check=False)
        assert png.exists(), shot.stderr[-2000:]
    done = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True,
                          timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_flower_shows_projects_their_progress_and_running_tasks(topology: Topology,
                                                                tmp_path: Path) -> None:
    assert topology.fake is not None
    topology.fake.faults.slow_tasks = {"Frontend implementation": 4.0}
    try:
        result = topology.agency("run", "Build a website for a bakery", "--no-wait")
        assert result.returncode == 0, result.stderr
        project_id = project_id_of(result.stdout)
        running: list[str] = []

        def started() -> bool:
            running[:] = [t["state"] for t in _flower_tasks(topology, project_id).values()
                          if "Frontend implementation" in str(t.get("kwargs"))
                          and t["state"] not in ("RECEIVED", "PENDING")]
            return bool(running)
        wait_until(started, "Flower showing the slow task taken", 60, every=0.3)
        assert running[0] == "STARTED"  # not PROGRESS: progress is not a task event
        assert topology.agency("watch", project_id).returncode == 0
    finally:
        topology.fake.faults.slow_tasks = {}
    tasks = _flower_tasks(topology, project_id, at_least=11)
    assert project_id in tasks  # the planning message's id is the project's
    agents = [t for t in tasks.values() if t["name"].startswith("agency.agent.")]
    reviews = [t for t in tasks.values() if t["name"].startswith("agency.review.")]
    # Every task is reviewed: its agent's message ends parked (IGNORED: the canvas goes no
    # further), and its review, on the reviewer's queue, completes it.
    assert len(agents) >= 9 and all(t["state"] in ("SUCCESS", "IGNORED") for t in agents)
    assert len(reviews) >= 9 and all(t["state"] == "SUCCESS" for t in reviews)
    assert {t["name"] for t in reviews} == {"agency.review.qa_engineer",
                                            "agency.review.orchestrator"}
    passed = [t for t in reviews if "passed review" in str(t["result"])]
    assert len(passed) == 9 and all(re.fullmatch(
        rf"'project {project_id[:8]}: \d/9 done, task \w{{8}} passed review round \d'",
        str(t["result"])) for t in passed), [t["result"] for t in passed]
    # The tasks page, as a person sees it in a browser: titles and the project, side by side.
    user, password = AUTH.split(":", 1)
    url = f"http://{user}:{password}@127.0.0.1:{topology.env['FLOWER_PORT']}/tasks"
    dom = _page(url, REPO / "docs" / "flower-tasks.png" if os.environ.get(
        "AGENCY_SCREENSHOTS") else None)
    # The newest rows come first (a page of 15: reviews made the project longer than that).
    assert f"Integration | project {project_id[:8]}" in dom, dom[-3000:]
    assert dom.count(f"| project {project_id[:8]}") >= 10, dom[-3000:]
    # Flower's search box still finds a project's tasks by an id prefix.
    query = urllib.parse.urlencode({
        "draw": 1, "start": 0, "length": 100, "search[value]": project_id[:8],
        "order[0][column]": 0, "order[0][dir]": "asc", "columns[0][data]": "name"})
    status, page = topology.flower(f"/tasks/datatable?{query}", AUTH)
    assert status == 200
    names = {row["name"] for row in page["data"]}
    for title in ("Frontend implementation", "Planning", "Integration"):
        assert f"{title} | project {project_id[:8]}" in names, names
    assert any(n.startswith("Review round 1 of task ") for n in names), names


def test_flower_keeps_its_history_across_a_restart(topology: Topology, tmp_path: Path) -> None:
    """A Flower of its own (the Procfile's one lives and dies with honcho) on the same broker."""
    port = str(free_port())
    env = {**topology.env, "FLOWER_PORT": port, "AGENCY_HOME": str(tmp_path / "home")}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([*AGENCY, "flower"], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    flower = start()
    try:
        # Listening for events once a worker's heartbeat (every 2 s) showed it online.
        wait_until(lambda: _workers_online(port) > 0, "Flower receiving events", 60,
                   alive=lambda: _exited(flower))
        result = topology.agency("run", "Write a blog series about sourdough")
        assert result.returncode == 0, result.stderr
        project_id = project_id_of(result.stdout)
        before = _flower_tasks(topology, project_id, port, at_least=11)
        assert len(before) >= 11
        flower.terminate()
        flower.wait(timeout=30)
        assert list((tmp_path / "home").glob("flower.db*"))  # shelve picks the suffixes
        flower = start()
        after = _flower_tasks(topology, project_id, port, at_least=len(before))
        assert set(after) >= set(before)
    finally:
        flower.terminate()
        flower.wait(timeout=30)


def _workers_online(port: str) -> float:
    """The workers Flower has seen online, from their events (/metrics needs no credentials)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError):  # still starting
        return 0
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == "flower_worker_online")


def test_flower_metrics_answer_without_credentials_and_hold_no_project_data(
        topology: Topology) -> None:
    """The choice (flowerconfig.py): Prometheus scrapes /metrics without credentials; it
    carries task names, workers, counts and times, never ids, titles, arguments or results."""
    result = topology.agency("run", "Write a blog series about sourdough")
    assert result.returncode == 0, result.stderr
    project_id = project_id_of(result.stdout)
    _flower_tasks(topology, project_id, at_least=11)
    url = f"http://127.0.0.1:{topology.env['FLOWER_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    assert "flower_events_total" in text and "agency.agent.content_writer" in text
    assert project_id not in text and project_id[:8] not in text
    assert "Articles" not in text and "sourdough" not in text.lower()
    assert topology.flower("/api/tasks", None)[0] == 401


def test_metrics_show_every_queue_with_its_depth_and_live_workers(topology: Topology) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from tests.integration.test_stats import scrape

    port = free_port()
    exporter = subprocess.Popen([*AGENCY, "metrics", "--port", str(port)], cwd=topology.home,
                                env=topology.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    try:
        text = scrape(f"http://127.0.0.1:{port}/metrics", exporter)
    finally:
        exporter.terminate()
        exporter.communicate(timeout=30)
    found = {(s.name, s.labels.get("queue")): s.value
             for family in text_string_to_metric_families(text) for s in family.samples}
    assert found[("agency_broker_up", None)] == 1
    for queue in ALL_QUEUES:
        assert found[("agency_queue_depth", queue)] >= 0
        assert found[("agency_queue_workers", queue)] >= 1, queue
        assert found[("agency_queue_concurrency", queue)] >= DEFAULT_CONCURRENCY[queue]
