"""Workers on several hosts: network namespaces on a bridge (tests/netns.py), Redis and
PostgreSQL on the bridge's address, a fleet per host. A host cut off from the services comes
back cleanly: its next project runs with no error line, no connection error and no re-run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from orchestrator.domain.constants import (
    ALL_QUEUES,
    KEEPALIVE_INTERVAL,
    ORCHESTRATOR_QUEUE,
    SEND_TIMEOUT_MS,
)
from orchestrator.services.reconciler import RECONCILER_LOCK
from tests.conftest import AGENCY, REPO, agency_env
from tests.netns import Bridge, Host, logged
from tests.services import PrivatePostgres, PrivateRedis, wait_until

CUT_SECONDS = 60  # the partition: far longer than a dead connection takes to be found
# A session of a cut-off host is dropped by the server within this (tcp_user_timeout and the
# keepalives the store asks the server for), and with it the session's locks.
SERVER_DROPS = SEND_TIMEOUT_MS / 1000 + KEEPALIVE_INTERVAL
BAD = re.compile(r"ERROR|CRITICAL|Traceback|ConnectionError|Broken pipe|could not publish")


@dataclass
class Cluster:
    net: Bridge
    home: Path
    env: dict[str, str]
    fleets: dict[str, tuple[subprocess.Popen[bytes], Path, IO[bytes]]] = field(
        default_factory=dict)

    def start_fleet(self, host: Host, name: str, queues: tuple[str, ...] = ALL_QUEUES) -> Path:
        log = self.home / f"{name}.log"
        out = log.open("wb")
        proc = host.popen([sys.executable, "-m", "workers", "fleet", "-n", name, "-l", "INFO",
                           "--queues", ",".join(queues)], out, env=self.env, cwd=REPO)
        self.fleets[name] = (proc, log, out)
        wait_until(lambda: all(f"{q}@{name} ready" in logged(log) for q in queues),
                   f"the fleet of {name} ready", 120, every=0.5,
                   alive=lambda: None if proc.poll() is None else logged(log)[-2000:])
        return log

    def submit(self, request: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*AGENCY, "run", request], cwd=self.home, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, running: subprocess.Popen[str]) -> dict[str, object]:
        out, err = running.communicate(timeout=300)
        assert running.returncode == 0, out[-1500:] + err[-1500:]
        project_id = re.search(r"Project (\S+) completed", out)
        assert project_id, out
        shown = subprocess.run([*AGENCY, "status", project_id[1], "--json"], cwd=self.home,
                               env=self.env, capture_output=True, text=True, timeout=60,
                               check=True)
        found: dict[str, object] = json.loads(shown.stdout)
        return found

    def run(self, request: str) -> dict[str, object]:
        return self.finish(self.submit(request))

    def in_progress_on(self, host: str) -> bool:
        import psycopg

        with psycopg.connect(self.env["AGENCY_DATABASE_URL"], connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT worker FROM tasks WHERE status = 'in_progress'").fetchall()
        return any(str(worker).endswith(f"@{host}") for (worker,) in rows)

    def stop(self) -> None:
        for proc, _, out in self.fleets.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            out.close()


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    settings = getattr(request, "param", {})
    with Bridge() as net:
        redis = PrivateRedis(tmp_path, host=net.address)
        redis.start()
        pg = PrivatePostgres(host=net.address)
        try:
            pg.start()
            env = agency_env(tmp_path, AGENCY_BROKER_URL=redis.url,
                             AGENCY_DATABASE_URL=pg.create_database("agency"), **settings)
            top = Cluster(net, tmp_path, env)
            try:
                yield top
            finally:
                top.stop()
        finally:
            redis.stop()
            pg.stop()
            pg.remove()


def test_a_host_back_from_a_partition_fails_nothing(cluster: Cluster) -> None:
    host = cluster.net.host("a")
    log = cluster.start_fleet(host, "host-a")
    cluster.run("Build a website for a bakery")  # every connection of the pools in use
    host.cut()
    time.sleep(CUT_SECONDS)
    host.heal()
    mark = len(logged(log))
    started = time.monotonic()
    project = cluster.run("Build a website for a bakery")
    seconds = time.monotonic() - started
    tasks = project["tasks"]
    assert isinstance(tasks, list) and len(tasks) >= 8
    assert all(t["status"] == "completed" and t["attempts"] == 1 for t in tasks), tasks
    after = logged(log)[mark:]
    bad = [line for line in after.splitlines() if BAD.search(line)]
    assert not bad, "\n".join(bad[:20])
    assert "clocks are out of sync" not in logged(log)
    print(f"\nafter a {CUT_SECONDS} s partition: {len(tasks)} tasks in {seconds:.1f} s")


def test_two_hosts_share_the_work(cluster: Cluster) -> None:
    logs = {name: cluster.start_fleet(cluster.net.host(name[-1]), name)
            for name in ("host-a", "host-b")}
    workers: set[str] = set()
    for request in ("Build a website for a bakery", "Build a mobile app for a gym",
                    "Plan a marketing campaign for a coffee brand"):
        project = cluster.run(request)
        tasks = project["tasks"]
        assert isinstance(tasks, list)
        workers |= {str(t["worker"]) for t in tasks}
    hosts = {w.rsplit("@", 1)[-1] for w in workers}
    assert hosts == {"host-a", "host-b"}, workers
    for name, log in logs.items():
        assert not [line for line in logged(log).splitlines() if BAD.search(line)], name


SHORT_LEASES = {"AGENCY_LEASE_SECONDS": "4", "AGENCY_RECONCILE_INTERVAL": "1",
                "AGENCY_OFFLINE_LATENCY": "0.5"}


@pytest.mark.parametrize("cluster", [SHORT_LEASES], indirect=True)
def test_a_host_cut_past_its_lease_loses_its_work_and_rejoins(cluster: Cluster) -> None:
    """Host a is cut off while it runs tasks, for longer than a lease: host b runs them again
    and the project completes; back on the network, host a takes work and fails none."""
    a, b = cluster.net.host("a"), cluster.net.host("b")
    log_a = cluster.start_fleet(a, "host-a")
    cluster.start_fleet(b, "host-b")
    running = cluster.submit("Build a website for a bakery")
    wait_until(lambda: cluster.in_progress_on("host-a"), "a task running on host a", 120,
               every=0.1)
    a.cut()
    # Past a lease, and past the server's dropping the sessions of a (one may hold the
    # reconciler's lock: then b's reconciler waits for that).
    time.sleep(SERVER_DROPS + 3 * 4)
    a.heal()
    project = cluster.finish(running)
    tasks = project["tasks"]
    assert isinstance(tasks, list)
    assert all(t["status"] == "completed" for t in tasks), tasks
    assert any(t["attempts"] > 1 for t in tasks), "no task was taken from the cut host"
    mark = len(logged(log_a))
    workers: set[str] = set()
    for _ in range(2):
        again = cluster.run("Build a website for a bakery")
        more = again["tasks"]
        assert isinstance(more, list)
        assert all(t["status"] == "completed" and t["attempts"] == 1 for t in more), more
        workers |= {str(t["worker"]) for t in more}
    assert any(w.endswith("@host-a") for w in workers), workers  # it rejoined
    bad = [line for line in logged(log_a)[mark:].splitlines() if BAD.search(line)]
    assert not bad, "\n".join(bad[:20])


@pytest.mark.parametrize("cluster", [{"AGENCY_OFFLINE_LATENCY": "0.5"}], indirect=True)
def test_a_host_added_mid_project_takes_work(cluster: Cluster) -> None:
    cluster.start_fleet(cluster.net.host("a"), "host-a")
    running = cluster.submit("Build a website for a bakery")
    wait_until(lambda: cluster.in_progress_on("host-a"), "a task running on host a", 120,
               every=0.1)
    cluster.start_fleet(cluster.net.host("b"), "host-b")
    project = cluster.finish(running)
    tasks = project["tasks"]
    assert isinstance(tasks, list)
    assert any(str(t["worker"]).endswith("@host-b") for t in tasks), tasks


@pytest.mark.parametrize("cluster", [SHORT_LEASES], indirect=True)
def test_the_orchestrators_host_cut_and_healed(cluster: Cluster) -> None:
    """The host of the orchestrator queue (planning, reviews of plans, integration, the
    reconciler) is cut off mid-project for three leases: the agents' host goes on with what
    it can, and once healed the project completes with no error on either host."""
    a, b = cluster.net.host("a"), cluster.net.host("b")
    log_a = cluster.start_fleet(a, "host-a", (ORCHESTRATOR_QUEUE,))
    agents = tuple(q for q in ALL_QUEUES if q != ORCHESTRATOR_QUEUE)
    log_b = cluster.start_fleet(b, "host-b", agents)
    running = cluster.submit("Build a website for a bakery")
    wait_until(lambda: cluster.in_progress_on("host-b"), "an agent's task on host b", 120,
               every=0.1)
    mark = {log: len(logged(log)) for log in (log_a, log_b)}
    a.cut()
    time.sleep(12)
    a.heal()
    project = cluster.finish(running)
    tasks = project["tasks"]
    assert isinstance(tasks, list)
    assert all(t["status"] == "completed" for t in tasks), tasks
    assert project["status"] == "completed"
    for log, since in mark.items():
        bad = [line for line in logged(log)[since:].splitlines()
               if re.search(r"ERROR|CRITICAL|Traceback", line)]
        assert not bad, f"{log.name}:\n" + "\n".join(bad[:20])


def test_a_cut_hosts_lock_is_freed_by_the_server(tmp_path: Path) -> None:
    """A host cut off while its reconciler holds the pass's advisory lock: the server drops
    that session within SERVER_DROPS, so the other machines' reconcilers go on."""
    with Bridge() as net:
        pg = PrivatePostgres(host=net.address)
        try:
            pg.start()
            url = pg.create_database("agency")
            holder = (
                "import sys, time\n"
                "from orchestrator.state.postgres import PostgresConnector\n"
                f"with PostgresConnector({url!r}).exclusive({RECONCILER_LOCK}) as mine:\n"
                "    print('held' if mine else 'refused', flush=True)\n"
                "    time.sleep(600)\n")
            host, log = net.host("a"), tmp_path / "holder.log"
            with log.open("wb") as out:
                proc = host.popen([sys.executable, "-c", holder], out, cwd=REPO)
                try:
                    wait_until(lambda: "held" in logged(log), "the lock held on host a", 60,
                               alive=lambda: None if proc.poll() is None else logged(log))

                    def free() -> bool:
                        import psycopg

                        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                            row = conn.execute("SELECT pg_try_advisory_lock(%s)",
                                               (RECONCILER_LOCK,)).fetchone()
                        return bool(row and row[0])

                    assert not free(), "the lock is not held"
                    host.cut()
                    cut = time.monotonic()
                    wait_until(free, "the server dropping the cut host's session",
                               SERVER_DROPS + 10, every=0.5)
                    print(f"\nthe lock freed {time.monotonic() - cut:.1f} s after the cut")
                finally:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
        finally:
            pg.stop()
            pg.remove()
