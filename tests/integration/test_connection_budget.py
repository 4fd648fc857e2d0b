"""Many pools on a small PostgreSQL: the Procfile's eleven pools (one fleet) against a private
server started with `max_connections=15`, less than the 44 the pools may want. Connections
flow to the processes that have work: idle ones give theirs back (AGENCY_DB_POOL_IDLE), a
process the server refuses says so once with the numbers, and every project completes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.conftest import AGENCY, REPO, agency_env
from tests.services import PrivatePostgres, PrivateRedis, wait_until

IDLE = 5  # AGENCY_DB_POOL_IDLE here: seconds an unused connection stays open
REQUESTS = ("Build a website for a bakery", "Build a mobile app for a gym",
            "Plan a marketing campaign for a coffee brand")


def _agency(env: dict[str, str], home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A CLI command, again while the server is full (it says "too many clients")."""
    deadline = time.monotonic() + 60
    while True:
        done = subprocess.run([*AGENCY, *args], cwd=home, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        if done.returncode == 0 or "too many clients" not in done.stdout + done.stderr:
            return done
        if time.monotonic() > deadline:
            return done
        time.sleep(0.5)


def _statuses(url: str) -> dict[str, str]:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            return {str(i): str(s) for i, s in conn.execute(
                "SELECT id, status FROM projects").fetchall()}
    except psycopg.OperationalError:  # full: asked again
        return {}


def test_three_projects_on_fifteen_connections(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    pg = PrivatePostgres(settings={"max_connections": "15"})
    log = tmp_path / "fleet.log"
    try:
        pg.start()
        url = pg.create_database("agency")
        env = agency_env(tmp_path, AGENCY_BROKER_URL=redis.url, AGENCY_DATABASE_URL=url,
                         AGENCY_DB_POOL_IDLE=str(IDLE), AGENCY_OFFLINE_LATENCY="0.2")
        with log.open("wb") as out:
            fleet = subprocess.Popen([sys.executable, "-m", "workers", "fleet", "-l", "INFO"],
                                     cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            try:
                wait_until(lambda: log.read_text(errors="replace").count(" ready") >= 11,
                           "the fleet", 120, every=0.5)
                ids = []
                for request in REQUESTS:
                    done = _agency(env, tmp_path, "run", "--no-wait", request)
                    assert done.returncode == 0, done.stdout + done.stderr
                    ids.append(re.search(r"[0-9a-f-]{36}", done.stdout)[0])  # type: ignore[index]
                wait_until(lambda: all(_statuses(url).get(i) in ("completed", "failed",
                                                                 "needs_attention")
                                       for i in ids), "three projects ended", 300, every=1)
                assert {i: _statuses(url)[i] for i in ids} == dict.fromkeys(ids, "completed")
                shown = _agency(env, tmp_path, "workers", "--json")
                assert shown.returncode == 0, shown.stdout + shown.stderr
                stores = [w["store"] for q in json.loads(shown.stdout) for w in q["workers"]]
                assert len(stores) == 11 and all("open" in s for s in stores), stores
                longest = max(float(s["longest_wait_s"]) for s in stores)
            finally:
                os.killpg(fleet.pid, signal.SIGTERM)
                fleet.wait(timeout=60)
    finally:
        redis.stop()
        pg.stop()
        pg.remove()
    text = log.read_text(errors="replace")
    # psycopg_pool's own line for every failed attempt is not let through: one report per
    # process per minute at most, with the numbers.
    assert "error connecting in" not in text
    reports = [line for line in text.splitlines() if "PostgreSQL refused a connection" in line]
    assert len(reports) <= 11, reports  # once a minute at most, per process (under a minute)
    for line in reports:
        assert "too many clients" in line and "of the 4 it may open" in line, line
        assert "max_connections=15" in line, line
    print(f"\n{len(reports)} refusal reports; the longest wait for a connection "
          f"{longest:.1f} s")
    assert longest <= IDLE + 10, stores
