"""Chaos: faults on the production topology heal with nobody acting.

Each case runs real `celery worker` processes started from the Procfile's own command lines,
against a Redis and a PostgreSQL of the test's own (private instances on free ports, which the
test kills and restarts; the shared services are never touched), with the local Messages API
server standing in for Claude. Each ends with the project completed, every task's model called
once (the call in flight at the fault may be repeated), and every output and ledger row present.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from orchestrator.domain.constants import ORCHESTRATOR_QUEUE
from tests.conftest import AGENCY, REPO, agency_env
from tests.fake_anthropic import FakeAnthropic
from tests.integration.test_embedded_cli import assert_exact_order, project_id_of
from tests.services import PrivatePostgres, PrivateRedis, wait_until

KEY = "sk-test-chaos-5b1e"
HOST = socket.gethostname()
RECOVERY: dict[str, float] = {}  # what the cases measured, printed at the end (pytest -s)


def procfile() -> dict[str, str]:
    """The Procfile's command line for each process name."""
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))


class Fleet:
    """Worker processes started from the Procfile's lines, each killable on its own."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[IO[bytes]] = []
        self.commands = procfile()

    def start(self, queue: str, node: str | None = None) -> str:
        """Start the Procfile's worker for `queue`, as node `node` (default: the queue)."""
        node = node or queue
        argv = shlex.split(self.commands[queue].replace(f"-n {queue}@%h", f"-n {node}@%h"))
        if argv[0] == "exec":  # the shell's `exec` (honcho runs each line with `sh -c`)
            argv = argv[1:]
        log = (self.home / f"{node}.log").open("ab")
        self.logs.append(log)
        self.procs[node] = subprocess.Popen(argv, cwd=REPO, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return f"{node}@{HOST}"

    def kill(self, node: str) -> None:
        proc = self.procs[node]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def alive(self) -> dict[str, bool]:
        return {node: proc.poll() is None for node, proc in self.procs.items()}

    def logged(self, node: str, text: str) -> int:
        """How many times the node's log says `text`."""
        return (self.home / f"{node}.log").read_text(errors="replace").count(text)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for log in self.logs:
            log.close()


class Chaos:
    def __init__(self, home: Path, redis: PrivateRedis, pg: PrivatePostgres,
                 fake: FakeAnthropic, **settings: str) -> None:
        self.home, self.redis, self.pg, self.fake = home, redis, pg, fake
        database = pg.create_database(f"agency_{uuid.uuid4().hex[:8]}")
        self.env = agency_env(home, **{
            "AGENCY_BROKER_URL": redis.url, "AGENCY_DATABASE_URL": database,
            "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.url,
            "AGENCY_MODEL_BACKOFF": "0.05", "AGENCY_RECONCILE_INTERVAL": "0.5",
            "AGENCY_LEASE_SECONDS": "3", **settings})
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env['PATH']}"
        self.fleet = Fleet(home, self.env)

    def agency(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*AGENCY, *args], cwd=self.home, env=self.env, text=True,
                              capture_output=True, timeout=timeout, check=False)

    def up(self, *queues: str) -> None:
        """Start a worker per queue and wait until each answers."""
        names = {self.fleet.start(q) for q in queues}
        self.wait_for_workers(names)

    def wait_for_workers(self, names: set[str], timeout: float = 60) -> None:
        def up() -> bool:
            result = self.agency("workers", "--json")
            return result.returncode == 0 and names <= {
                w["name"] for q in json.loads(result.stdout) for w in q["workers"]}
        wait_until(up, f"workers {sorted(names)} up", timeout, every=0.5)

    def submit(self, plan: dict[str, Any] | None = None, request: str | None = None) -> str:
        args = ["run", "--no-wait"]
        if plan is not None:
            path = self.home / f"plan-{uuid.uuid4().hex[:6]}.json"
            path.write_text(json.dumps(plan))
            args += ["--plan", str(path)]
        if request is not None:
            args.append(request)
        result = self.agency(*args)
        assert result.returncode == 0, result.stderr
        return project_id_of(result.stdout)

    def status(self, project_id: str) -> dict[str, Any] | None:
        """The project, or None while the store cannot be reached."""
        result = self.agency("status", project_id, "--json")
        return json.loads(result.stdout) if result.returncode == 0 else None

    def wait(self, project_id: str, until: Callable[[dict[str, Any]], bool],
             timeout: float = 90) -> dict[str, Any]:
        seen: list[dict[str, Any] | None] = [None]

        def reached() -> bool:
            seen[0] = self.status(project_id)
            return seen[0] is not None and until(seen[0])
        try:
            wait_until(reached, "the project's state", timeout, every=0.3)
        except TimeoutError:
            pytest.fail(f"timed out; last seen: {seen[0]}")
        assert seen[0] is not None
        return seen[0]

    def done(self, project_id: str, timeout: float = 90) -> dict[str, Any]:
        data = self.wait(project_id, lambda d: d["status"] in (
            "completed", "failed", "needs_attention", "cancelled"), timeout)
        assert data["status"] == "completed", data
        return data

    def task_status(self, project_id: str, index: int, status: str) -> dict[str, Any]:
        data = self.wait(project_id, lambda d: bool(d["tasks"])
                         and d["tasks"][index]["status"] == status)
        task: dict[str, Any] = data["tasks"][index]
        return task


@pytest.fixture
def chaos(tmp_path: Path, private_redis: PrivateRedis,
          private_postgres: PrivatePostgres) -> Iterator[Callable[..., Chaos]]:
    made: list[Chaos] = []
    fake = FakeAnthropic(api_key=KEY).__enter__()

    def make(**settings: str) -> Chaos:
        made.append(Chaos(tmp_path, private_redis, private_postgres, fake, **settings))
        return made[-1]

    try:
        yield make
    finally:
        for c in made:
            c.fleet.stop()
        fake.__exit__()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if RECOVERY:
        print("\nchaos recovery times (s):", json.dumps(RECOVERY, indent=1))


def assert_whole(c: Chaos, data: dict[str, Any], repeatable: set[str] = frozenset()) -> None:
    """Every task completed once in the model's eyes (bar the call in flight at the fault),
    with its output and ledger rows."""
    assert all(t["status"] == "completed" for t in data["tasks"]), data
    calls = c.fake.task_calls()
    for task in data["tasks"]:
        limit = 2 if task["title"] in repeatable else 1
        assert 1 <= calls.get(task["title"], 0) <= limit, (task["title"], calls)
        assert sum(task["tokens"].values()) > 0, task  # its ledger rows
        assert task["error"] is None
    assert data["error"] is None
    deliverable = Path(data["output_dir"]) / "deliverable.md"
    wait_until(deliverable.is_file, f"{deliverable} written", 30)
    assert_exact_order(data)


FAN_IN = {"request": "Research and design, then write", "tasks": [
    {"title": "Slow research", "agent_type": "marketing"},
    {"title": "Wireframes", "agent_type": "ux_designer"},
    {"title": "Write the copy", "agent_type": "content_writer", "dependencies": [0, 1]}]}
# qa_engineer: work products (the copy) are reviewed on its queue.
FAN_IN_QUEUES = (ORCHESTRATOR_QUEUE, "marketing", "ux_designer", "content_writer", "qa_engineer")


def recovered(c: Chaos, project_id: str, what: str) -> None:
    """After a service came back: the project completes whole, no worker exited, and a project
    submitted right after completes too."""
    back = time.monotonic()
    data = c.done(project_id)
    RECOVERY[what] = round(time.monotonic() - back, 1)
    assert_whole(c, data)
    assert all(c.fleet.alive().values()), c.fleet.alive()
    after = c.submit(FAN_IN)
    assert_whole(c, c.done(after), repeatable={t["title"] for t in FAN_IN["tasks"]})


def test_1_a_killed_worker_task_runs_again_on_the_spare(chaos: Callable[..., Chaos]) -> None:
    c = chaos()
    c.fake.faults.slow_tasks = {"Slow research": 4.0}
    c.up(ORCHESTRATOR_QUEUE, "ux_designer", "content_writer", "qa_engineer")
    nodes = {c.fleet.start("marketing", "marketing-a"), c.fleet.start("marketing", "marketing-b")}
    c.wait_for_workers(nodes)
    project_id = c.submit(FAN_IN)
    running = c.task_status(project_id, 0, "in_progress")
    doomed = running["worker"].split("@")[0]
    c.fleet.kill(doomed)
    killed = time.monotonic()
    again = c.wait(project_id, lambda d: d["tasks"][0]["attempts"] == 2
                   and d["tasks"][0]["status"] != "pending")
    RECOVERY["worker SIGKILL -> task claimed again"] = round(time.monotonic() - killed, 1)
    assert again["tasks"][0]["worker"] != running["worker"]
    data = c.done(project_id)
    assert_whole(c, data, repeatable={"Slow research"})
    assert [t["attempts"] for t in data["tasks"]] == [2, 1, 1]
    assert all(alive for node, alive in c.fleet.alive().items() if node != doomed)


def test_2_redis_restarted_empty_mid_project(chaos: Callable[..., Chaos]) -> None:
    c = chaos()
    c.fake.faults.slow_tasks = {"Slow research": 4.0}
    c.up(*FAN_IN_QUEUES)
    project_id = c.submit(FAN_IN)
    c.task_status(project_id, 0, "in_progress")
    c.wait(project_id, lambda d: d["tasks"][1]["status"] == "completed")
    lost = "Connection to broker lost"
    before = {node: c.fleet.logged(node, lost) for node in c.fleet.procs}
    c.redis.kill()
    # Down until every worker noticed (and began reconnecting), not for a guessed while.
    wait_until(lambda: all(c.fleet.logged(n, lost) > before[n] for n in before),
               "every worker noticing the lost broker", 60, every=0.2)
    c.redis.start()
    # The fan-in's chord state died with Redis; the store released it. The answer that came
    # back during the outage was kept, so nothing was asked twice.
    recovered(c, project_id, "Redis restarted empty -> project completed")


def test_3_postgres_crash_mid_project(chaos: Callable[..., Chaos]) -> None:
    c = chaos(AGENCY_LEASE_SECONDS="20")
    c.fake.faults.slow_tasks = {"Slow research": 3.0}
    c.up(*FAN_IN_QUEUES)
    project_id = c.submit(FAN_IN)
    # In progress once the model has it (polling the store can miss three seconds on a
    # loaded machine: each look is a process of its own).
    wait_until(lambda: "Slow research" in c.fake.task_calls(), "the slow task at the model",
               60, every=0.05)
    answers = c.fake.answered.count("Slow research")
    c.pg.stop_immediate()
    # Down until the model has answered "Slow research": its worker must keep the answer.
    wait_until(lambda: c.fake.answered.count("Slow research") > answers,
               "the model answering while the database is down", 60, every=0.1)
    c.pg.start()
    recovered(c, project_id, "PostgreSQL down while a task's answer came -> completed")


def test_4_orchestrator_killed_while_planning(chaos: Callable[..., Chaos]) -> None:
    c = chaos()
    c.fake.faults.slow_schemas = {"Plan": 3.0}
    queues = [q for q in procfile() if q != "flower"]
    c.up(*queues)
    project_id = c.submit(request="Write a blog series about sourdough")
    wait_until(lambda: any((r["body"].get("output_config") or {}).get("format", {}).get(
        "schema", {}).get("title") == "Plan" for r in c.fake.requests),
        "planning asking for a plan", 30, every=0.1)
    c.fleet.kill(ORCHESTRATOR_QUEUE)
    killed = time.monotonic()
    assert c.status(project_id)["status"] == "planning"  # type: ignore[index]
    c.up(ORCHESTRATOR_QUEUE)
    data = c.done(project_id)
    RECOVERY["orchestrator SIGKILL while planning -> completed"] = round(
        time.monotonic() - killed, 1)
    assert_whole(c, data)
    titles = [((r["body"].get("output_config") or {}).get("format") or {}).get(
        "schema", {}).get("title") for r in c.fake.requests]
    assert titles.count("Analysis") == 1  # stored before the kill: not paid for again
    assert titles.count("Plan") == 2  # the call in flight at the kill, then once more


def test_5_a_failure_stops_only_what_depends_on_it(chaos: Callable[..., Chaos]) -> None:
    c = chaos()
    c.fake.faults.task_modes = {"Brief": deque(["bad_request"])}
    c.fake.faults.slow_tasks = {"Wireframes": 2.0}
    plan = {"request": "Two branches", "tasks": [
        {"title": "Brief", "agent_type": "marketing"},
        {"title": "Copy", "agent_type": "content_writer", "dependencies": [0]},
        {"title": "Wireframes", "agent_type": "ux_designer"},
        {"title": "Page", "agent_type": "frontend_developer", "dependencies": [2]}]}
    c.up(ORCHESTRATOR_QUEUE, "marketing", "content_writer", "ux_designer", "frontend_developer",
         "qa_engineer")
    project_id = c.submit(plan)
    data = c.wait(project_id, lambda d: d["status"] not in ("pending", "planning", "running"))
    assert data["status"] == "needs_attention", data
    brief, copy, wireframes, page = data["tasks"]
    assert brief["status"] == "failed" and "HTTP 400" in brief["error"]
    assert copy["status"] == "blocked" and copy["error"] == "waits on failed task 0 ('Brief')"
    assert wireframes["status"] == page["status"] == "completed"  # the other branch ran on
    assert page["started_at"] > brief["finished_at"]  # and kept starting work after the failure
    assert f"agency retry {brief['id'][:8]}" in data["error"]
    retried = c.agency("retry", brief["id"][:8])
    assert retried.returncode == 0, retried.stderr
    final = c.done(project_id)
    assert [t["attempts"] for t in final["tasks"]] == [2, 1, 1, 1]
    assert c.fake.task_calls() == {"Brief": 2, "Copy": 1, "Wireframes": 1, "Page": 1}
    assert final["error"] is None


def test_6_hostile_artifact_paths_stay_inside(chaos: Callable[..., Chaos]) -> None:
    c = chaos()
    hostile = ["../../etc/passwd", "/etc/x", "x", "x/y", "nul\x00byte.txt", "."]
    c.fake.faults.artifacts = {"Page": hostile}
    plan = {"request": "A page", "tasks": [{"title": "Page", "agent_type": "frontend_developer"}]}
    c.up(ORCHESTRATOR_QUEUE, "frontend_developer", "qa_engineer")
    before = {p: p.stat().st_mtime for p in (Path("/etc/passwd"),)}
    data = c.done(c.submit(plan))
    root = Path(data["output_dir"])
    written = [p for p in (root / "artifacts").rglob("*") if p.is_file()]
    assert len(written) == len(hostile)
    assert all(p.resolve().is_relative_to(root.resolve()) for p in written)
    contents = sorted(p.read_text() for p in written)
    assert contents == sorted(f"proposed as {p!r}\n" for p in hostile)
    assert not Path("/etc/x").exists() and Path("/etc/passwd").stat().st_mtime == before[
        Path("/etc/passwd")]
    outside = [p for p in c.home.rglob("*") if p.is_file() and "proposed as" in p.read_text(
        errors="replace") and not p.resolve().is_relative_to(root.resolve())]
    assert outside == []  # not even relative to the home folder
