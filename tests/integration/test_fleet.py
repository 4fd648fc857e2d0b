"""`python -m workers fleet`: every pool of one machine, forked from one process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.domain.constants import ALL_QUEUES
from tests.conftest import AGENCY, PG_ADMIN_URL, REPO, agency_env
from tests.services import PrivateRedis, wait_until

HOST = socket.gethostname()


class Fleet:
    def __init__(self, home: Path, env: dict[str, str], proc: subprocess.Popen[bytes],
                 log: Path) -> None:
        self.home, self.env, self.proc, self.log = home, env, proc, log

    def agency(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*AGENCY, *args], cwd=self.home, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def live(self) -> dict[str, int]:
        """Live node name -> its pid (from the workers' own stats)."""
        result = self.agency("workers", "--json")
        assert result.returncode == 0, result.stderr
        return {w["name"]: w.get("pid", 0) for q in json.loads(result.stdout)
                for w in q["workers"]}

    def wait_for(self, names: set[str], timeout: float = 90) -> None:
        try:
            wait_until(lambda: names <= set(self.live()), "pools up", timeout, every=0.5)
        except TimeoutError:
            pytest.fail(f"pools never came up: missing {sorted(names - set(self.live()))}\n"
                        f"{self.log.read_text()[-3000:]}")

    def children(self) -> dict[str, int]:
        """Queue -> pid of its worker, as the fleet last reported them."""
        found: dict[str, int] = {}
        for line in self.log.read_text().splitlines():
            if line.startswith("fleet: ") and "worker pools started" in line:
                found.update({q: int(p) for q, p in re.findall(r"(\w+)=(\d+)", line)})
            restarted = re.search(r"fleet: the (\w+) worker restarted as (\d+)",
                                  line)
            if restarted:
                found[restarted.group(1)] = int(restarted.group(2))
        return found


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, pg_admin: Any,
          module_redis: PrivateRedis) -> Iterator[Fleet]:
    """The fleet on a broker of the module's own: its pools' names are nobody else's."""
    home = tmp_path_factory.mktemp("fleet")
    name = f"agency_test_{uuid.uuid4().hex[:12]}"
    pg_admin.execute(f'CREATE DATABASE "{name}"')
    env = agency_env(home, AGENCY_BROKER_URL=module_redis.url,
                     AGENCY_DATABASE_URL=f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    log = home / "fleet.log"
    out = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "workers", "fleet", "-l", "INFO"], cwd=REPO,
                            env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    top = Fleet(home, env, proc, log)
    try:
        top.wait_for({f"{q}@{HOST}" for q in ALL_QUEUES})
        yield top
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        out.close()
        pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_fleet_runs_a_project_on_its_pools(fleet: Fleet) -> None:
    assert set(fleet.children()) == set(ALL_QUEUES)
    result = fleet.agency("run", "Build a website for a bakery", timeout=180)
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout
    # Each pool is a child of the fleet's process, on its own queue.
    pids = fleet.children()
    for pid in pids.values():
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[1]) == fleet.proc.pid  # parent pid


def test_a_killed_pool_is_started_again(fleet: Fleet) -> None:
    before = fleet.children()["frontend_developer"]
    os.kill(before, signal.SIGKILL)
    wait_until(lambda: fleet.children()["frontend_developer"] != before,
               "the fleet restarting the killed pool", 60, every=0.2)
    fleet.wait_for({f"frontend_developer@{HOST}"})
    result = fleet.agency("run", "Build a website for a bakery", timeout=180)
    assert result.returncode == 0 and "completed" in result.stdout, result.stderr


def _start(fleet: Fleet, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = fleet.home / f"fleet-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workers", "fleet", *args], cwd=REPO,
                                env=fleet.env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return proc, log


def test_a_bad_worker_option_stops_the_fleet_with_exit_2(fleet: Fleet) -> None:
    proc, log = _start(fleet, "--queues", "marketing", "--loglevel", "NOPE")
    assert proc.wait(timeout=60) == 2, log.read_text()[-2000:]
    assert "refused its options" in log.read_text()
    unknown, _ = _start(fleet, "--queues", "marketing,nope")
    assert unknown.wait(timeout=30) == 2


def test_pools_stop_when_the_fleet_is_killed(fleet: Fleet) -> None:
    proc, log = _start(fleet, "--queues", "marketing", "-n", "x@%h")
    assert proc.wait(timeout=30) == 2  # a host name, not a node name
    assert "bad --hostname" in log.read_text()
    # A host of its own name: beside the module's fleet on this host, no name is shared.
    proc, log = _start(fleet, "--queues", "marketing", "-l", "INFO", "-n", "second-host")

    def exited() -> str | None:
        return None if proc.poll() is None else log.read_text()[-2000:]
    # Past its start-up: the child is a worker that has said it is ready.
    wait_until(lambda: "worker pools started" in log.read_text()
               and "marketing@second-host ready" in log.read_text(),
               "the fleet's marketing pool ready", 60, alive=exited, every=0.2)
    child = int(re.findall(r"marketing=(\d+)", log.read_text())[0])
    proc.kill()  # SIGKILL: no chance to pass anything on
    proc.wait(timeout=10)
    wait_until(lambda: _gone(child), "the pool gone with its fleet", 30, every=0.2)


def _gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return True


def test_sigterm_stops_every_pool(fleet: Fleet) -> None:
    pids = list(fleet.children().values())
    os.kill(fleet.proc.pid, signal.SIGTERM)
    assert fleet.proc.wait(timeout=60) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text()
