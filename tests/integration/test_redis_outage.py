"""Real `celery worker` processes of workers.app survive Redis being killed and restarted empty.

Before the fix in workers/app.py, a worker with a late-acked task in flight and a free thread
exited with `Unrecoverable error: AttributeError("'NoneType' object has no attribute
'hostname'")` once that task finished; an idle worker survived. The timing of an outage is the
scenario itself; everything else waits for a state (store, log line, ping), never for a sleep.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
import redis
from celery import Celery

from orchestrator.domain.constants import (
    ORCHESTRATOR_QUEUE,
    PLAN_TASK,
    AgentType,
    ProjectStatus,
    TaskStatus,
)
from orchestrator.state.store import Store, open_connector
from tests.conftest import REPO, agency_env, make_plan
from tests.services import PrivateRedis, wait_until

LATENCY = 3  # seconds per offline model call, so a task is still running when Redis dies
HOST = socket.gethostname()


class Worker:
    """One `celery -A workers.app worker` subprocess serving one queue, logging to a file."""

    def __init__(self, env: dict[str, str], queue: str, concurrency: int, log: Path) -> None:
        self.name, self.log_path = f"{queue}-chaos@{HOST}", log
        self._log: IO[bytes] = log.open("wb")
        # Concurrency above one: the crash needs a free thread, whose pending BRPOP the lost
        # connection interrupts, beside the task in flight (production runs 2 to 4 threads).
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", queue,
             "-n", self.name, "-c", str(concurrency), "-l", "INFO"],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


class Fleet:
    """The private Redis, a SQLite store, the workers and a Celery client that sends to them."""

    def __init__(self, redis: PrivateRedis, tmp_path: Path) -> None:
        self.redis, self.tmp_path = redis, tmp_path
        db_url = f"sqlite:///{tmp_path / 'agency.db'}"
        self.env = agency_env(tmp_path, AGENCY_BROKER_URL=redis.url, AGENCY_DATABASE_URL=db_url,
                              AGENCY_LLM="offline", AGENCY_OFFLINE_LATENCY=str(LATENCY))
        self.store = Store(open_connector(db_url))
        self.client = Celery("agency-chaos-client", broker=redis.url, set_as_current=False)
        self.workers: list[Worker] = []

    def start_worker(self, queue: str, concurrency: int = 2) -> Worker:
        worker = Worker(self.env, queue, concurrency, self.tmp_path / f"{queue}.log")
        self.workers.append(worker)
        wait_for(lambda: self.ping(worker), f"{worker.name} to answer a ping", worker)
        return worker

    def ping(self, worker: Worker) -> bool:
        # A fresh connection each time: a pooled one may still hold a socket to the dead server.
        with self.client.connection_for_write() as conn:
            replies = self.client.control.ping([worker.name], timeout=1, connection=conn)
        return any(worker.name in reply for reply in replies or [])

    def submit(self, one_agent_task: bool = False) -> str:
        """A pending project in the store, and its planning sent to the orchestrator queue."""
        project_id = str(uuid.uuid4())
        plan = make_plan({}, 1, ["content_writer"]) if one_agent_task else None
        self.store.insert_project(project_id, "Build a website for a bakery", None,
                                  "website" if plan else None,
                                  str(self.tmp_path / "out" / project_id), plan)
        with self.client.connection_for_write() as conn:
            self.client.send_task(PLAN_TASK, kwargs={"project_id": project_id},
                                  queue=ORCHESTRATOR_QUEUE, connection=conn)
        return project_id

    def status(self, project_id: str) -> ProjectStatus:
        return self.store.project(project_id).status

    def outage(self, seconds: float, *watching: Worker) -> None:
        """Kill Redis; once every worker noticed, keep it down that long; start it empty."""
        self.redis.kill()
        for worker in watching:
            wait_for(lambda w=worker: "Connection to broker lost" in w.log(),  # type: ignore[misc]
                     f"{worker.name} to notice the lost broker", worker)
        time.sleep(seconds)  # the outage's length is the scenario under test
        self.redis.start()

    def dispatched(self) -> int:
        """Messages waiting in the agent queues: what planning sent on."""
        client = redis.Redis.from_url(self.redis.url)
        try:
            return sum(int(client.llen(agent.value)) for agent in AgentType)
        finally:
            client.close()

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.client.close()
        self.store.db.close()


def wait_for(ready: Callable[[], bool], what: str, worker: Worker, timeout: float = 90) -> None:
    def died() -> str | None:
        return None if worker.alive else f"{worker.name}, code {worker.proc.returncode}"
    try:
        wait_until(ready, what, timeout, alive=died, every=0.2)
    except (TimeoutError, RuntimeError) as exc:
        pytest.fail(f"waiting for {exc}\n{worker.tail()}")


@pytest.fixture
def fleet(private_redis: PrivateRedis, tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(private_redis, tmp_path)
    try:
        yield f
    finally:
        f.close()


def wait_planned(fleet: Fleet, project_id: str, worker: Worker, dispatched_before: int) -> None:
    """The plan task ran to its end: the plan is stored and its first tasks reached Redis."""
    wait_for(lambda: fleet.status(project_id) not in (ProjectStatus.PENDING,
                                                      ProjectStatus.PLANNING),
             f"planning of {project_id} to end", worker)
    assert fleet.status(project_id) is ProjectStatus.RUNNING, fleet.store.project(project_id)
    assert fleet.store.tasks(project_id)
    wait_for(lambda: fleet.dispatched() > dispatched_before,
             f"the tasks of {project_id} to reach the agent queues", worker)


def assert_serves_new_work(fleet: Fleet, worker: Worker) -> None:
    """Alive, answering control messages, and running a task sent after the outage."""
    assert worker.alive, worker.tail()
    wait_for(lambda: fleet.ping(worker), "the worker to reconnect and answer a ping", worker)
    before = fleet.dispatched()
    wait_planned(fleet, fleet.submit(), worker, before)
    assert worker.alive and "Unrecoverable error" not in worker.log(), worker.tail()


@pytest.mark.parametrize("outage", [3, 30])
def test_worker_with_a_task_in_flight_survives_a_redis_restart(fleet: Fleet,
                                                               outage: float) -> None:
    """Planning (two model calls) is in flight; with 30 s it ends while Redis is still down."""
    worker = fleet.start_worker(ORCHESTRATOR_QUEUE)
    busy = fleet.submit()
    wait_for(lambda: fleet.status(busy) is ProjectStatus.PLANNING, "planning to start", worker)
    fleet.outage(outage, worker)
    # The task in flight finishes its work (on the emptied Redis): plan stored, tasks sent.
    wait_planned(fleet, busy, worker, 0)
    assert_serves_new_work(fleet, worker)


def test_idle_worker_reconnects_after_a_redis_restart(fleet: Fleet) -> None:
    worker = fleet.start_worker(ORCHESTRATOR_QUEUE)
    fleet.outage(3, worker)
    assert_serves_new_work(fleet, worker)


def test_agent_task_in_flight_completes_across_an_outage(fleet: Fleet) -> None:
    """Its model call ends while Redis is down: its progress event waits, the work is saved."""
    orchestrator = fleet.start_worker(ORCHESTRATOR_QUEUE)
    agent = fleet.start_worker("content_writer", concurrency=4)
    reviewer = fleet.start_worker("qa_engineer")  # a work product's review runs on its queue
    project_id = fleet.submit(one_agent_task=True)

    def running() -> bool:
        return [t.status for t in fleet.store.tasks(project_id)] == [TaskStatus.IN_PROGRESS]

    wait_for(running, "the agent task to start", agent)
    fleet.outage(LATENCY + 5, agent, orchestrator)
    wait_for(lambda: fleet.status(project_id) is ProjectStatus.COMPLETED,
             "the project to complete", agent)
    task = fleet.store.tasks(project_id)[0]
    assert task.status is TaskStatus.COMPLETED and task.attempts == 1
    for worker in (orchestrator, agent, reviewer):
        assert worker.alive and "Unrecoverable error" not in worker.log(), worker.tail()
