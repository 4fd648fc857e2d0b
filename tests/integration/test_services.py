"""The private services chaos tests kill do what they say; the shared ones never notice."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import redis

from tests.services import PrivatePostgres, PrivateRedis


@pytest.fixture
def shared_redis(redis_url: str) -> Any:
    """The shared Redis's identity (its run id changes on any restart) and a key of ours."""
    client = redis.Redis.from_url(redis_url)
    client.set("agency_test_services_canary", "alive")
    yield client, client.info("server")["run_id"]
    client.delete("agency_test_services_canary")
    client.close()


def test_private_redis_restarts_empty_and_leaves_the_shared_one_alone(
        private_redis: PrivateRedis, shared_redis: Any) -> None:
    shared, run_id = shared_redis
    assert private_redis.port != shared.connection_pool.connection_kwargs["port"]
    client = redis.Redis.from_url(private_redis.url, socket_timeout=2)
    client.set("k", "v")
    assert client.get("k") == b"v"

    private_redis.kill()
    assert not private_redis.running
    with pytest.raises(redis.ConnectionError):
        client.get("k")

    private_redis.start()
    assert client.get("k") is None
    assert client.dbsize() == 0
    client.close()
    assert shared.info("server")["run_id"] == run_id
    assert shared.get("agency_test_services_canary") == b"alive"


def test_private_postgres_refuses_while_stopped_and_recovers(
        private_postgres: PrivatePostgres, pg_admin: Any) -> None:
    shared_started = pg_admin.execute("SELECT pg_postmaster_start_time()").fetchone()
    url = private_postgres.create_database("chaos")
    assert url.endswith(f":{private_postgres.port}/chaos")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v text)")
        conn.execute("INSERT INTO t VALUES ('committed')")

    private_postgres.stop_immediate()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)

    private_postgres.start()
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT v FROM t").fetchone()
    assert row == ("committed",)
    assert pg_admin.execute("SELECT pg_postmaster_start_time()").fetchone() == shared_started
