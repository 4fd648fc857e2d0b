"""Shared fixtures: plans, a SQLite store, and access to the real services."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from orchestrator.domain.models import Plan
from orchestrator.state.store import Store, open_connector
from tests.services import PrivatePostgres, PrivateRedis, ServiceUnavailable

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_ADMIN_URL = os.environ.get("AGENCY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_DATABASES = 16  # redis-server's default `databases`


def worker_redis_url(base: str, worker: str | None) -> str:
    """The shared Redis database of this pytest process: the base URL's number, plus the
    xdist worker's index (gw0 -> +0, gw1 -> +1), so that parallel workers never share queues,
    rate-limit buckets or worker names."""
    if not worker:
        return base
    parts = urlsplit(base)
    number = int(parts.path.strip("/") or 0) + int(worker.removeprefix("gw"))
    if number >= REDIS_DATABASES:
        raise pytest.UsageError(
            f"xdist worker {worker} would use Redis database {number} of {base}: give "
            f"AGENCY_TEST_REDIS a lower database number or run fewer workers")
    return urlunsplit(parts._replace(path=f"/{number}"))


REDIS_URL = worker_redis_url(os.environ.get("AGENCY_TEST_REDIS", "redis://127.0.0.1:6379/11"),
                             os.environ.get("PYTEST_XDIST_WORKER"))
INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration is `integration`: `-m "not integration"` leaves
    the unit tests."""
    for item in items:
        if item.path.is_relative_to(INTEGRATION):
            item.add_marker(pytest.mark.integration)
# The settings read `.env` from the current directory; never a developer's in the checkout,
# here or in the commands tests start (agency_env keeps this too).
os.environ["AGENCY_ENV_FILE"] = ""


def need(service: str, reason: str) -> None:
    """Skip without a service on a laptop; fail in CI, where the services must be up."""
    if IN_CI:
        pytest.fail(f"{service} is required in CI but unavailable: {reason}")
    pytest.skip(f"{service} unavailable: {reason}")


def make_plan(edges: dict[int, list[int]], size: int, agents: list[str] | None = None) -> Plan:
    """A plan of `size` tasks with the given dependencies."""
    pool = agents or ["ux_designer", "frontend_developer", "backend_developer", "qa_engineer"]
    return Plan.model_validate({"tasks": [
        {"title": f"Task {i}", "agent_type": pool[i % len(pool)],
         "dependencies": edges.get(i, []), "estimated_tokens": 1000 + 100 * i}
        for i in range(size)]})


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(open_connector(f"sqlite:///{tmp_path / 'agency.db'}"))
    yield store
    store.db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on each database the product supports."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'agency.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    s = Store(open_connector(url))
    yield s
    s.db.close()


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Any]:
    import psycopg

    try:
        conn = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        need("PostgreSQL", str(exc).splitlines()[0])
    yield conn
    conn.close()


@pytest.fixture
def pg_url(pg_admin: Any) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    name = f"agency_test_{uuid.uuid4().hex[:12]}"
    pg_admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    pg_admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        need("Redis", str(exc))

    # Only the keys this suite's queues create in its own database number.
    client.delete(*queue_keys())
    client.close()
    return REDIS_URL


def agency_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment for running `agency` as a subprocess: no key, embedded unless told."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENCY_", "ANTHROPIC_"))}
    env.update({"AGENCY_ENV_FILE": "", "AGENCY_HOME": str(tmp_path / ".agency"),
                "AGENCY_OUTPUT_DIR": str(tmp_path / "out"), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


AGENCY = [sys.executable, "-m", "orchestrator"]


def queue_keys() -> list[str]:
    """The Redis keys of this suite's queues: each queue's priority lists (kombu names them
    `queue` + "\x06\x16" + step) and the unacked index."""
    from orchestrator.domain.constants import ALL_QUEUES

    return [*ALL_QUEUES, *(f"{q}\x06\x16{step}" for q in ALL_QUEUES for step in (3, 6, 9)),
            "unacked", "unacked_index"]


@contextmanager
def _running_redis(workdir: Path) -> Iterator[PrivateRedis]:
    workdir.mkdir(exist_ok=True)
    try:
        server = PrivateRedis(workdir)
    except ServiceUnavailable as exc:
        need("A private Redis", str(exc))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A running Redis of this test's own, to kill and restart at will."""
    with _running_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture(scope="module")
def module_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A running Redis of this module's own: a broker that only its workers use, and that
    may be watched with MONITOR (the shared server carries everyone's traffic)."""
    with _running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running PostgreSQL cluster of this test's own, to stop and start at will."""
    try:
        server = PrivatePostgres()
    except ServiceUnavailable as exc:
        need("A private PostgreSQL", str(exc))
    try:
        server.start()
        yield server
    finally:
        server.remove()


def chromium() -> str:
    """Debian's headless browser, for tests of what a person looks at (.ci/run installs it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    return found
