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

from orchestrator.domain.constants import ALL_QUEUES
from tests.conftest import AGENCY, REPO, agency_env
from tests.netns import Bridge, Host, logged
from tests.services import PrivatePostgres, PrivateRedis, wait_until

CUT_SECONDS = 25  # longer than a connection's health check and keepalive take to notice
BAD = re.compile(r"ERROR|CRITICAL|Traceback|ConnectionError|Broken pipe|could not publish")


@dataclass
class Cluster:
    net: Bridge
    home: Path
    env: dict[str, str]
    fleets: dict[str, tuple[subprocess.Popen[bytes], Path, IO[bytes]]] = field(
        default_factory=dict)

    def start_fleet(self, host: Host, name: str) -> Path:
        log = self.home / f"{name}.log"
        out = log.open("wb")
        proc = host.popen([sys.executable, "-m", "workers", "fleet", "-n", name, "-l", "INFO"],
                          out, env=self.env, cwd=REPO)
        self.fleets[name] = (proc, log, out)
        wait_until(lambda: all(f"{q}@{name} ready" in logged(log) for q in ALL_QUEUES),
                   f"the fleet of {name} ready", 120, every=0.5,
                   alive=lambda: None if proc.poll() is None else logged(log)[-2000:])
        return log

    def run(self, request: str) -> dict[str, object]:
        done = subprocess.run([*AGENCY, "run", request], cwd=self.home, env=self.env,
                              capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
        project_id = re.search(r"Project (\S+) completed", done.stdout)
        assert project_id, done.stdout
        shown = subprocess.run([*AGENCY, "status", project_id[1], "--json"], cwd=self.home,
                               env=self.env, capture_output=True, text=True, timeout=60,
                               check=True)
        found: dict[str, object] = json.loads(shown.stdout)
        return found

    def stop(self) -> None:
        for proc, _, out in self.fleets.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            out.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with Bridge() as net:
        redis = PrivateRedis(tmp_path, host=net.address)
        redis.start()
        pg = PrivatePostgres(host=net.address)
        try:
            pg.start()
            env = agency_env(tmp_path, AGENCY_BROKER_URL=redis.url,
                             AGENCY_DATABASE_URL=pg.create_database("agency"))
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
