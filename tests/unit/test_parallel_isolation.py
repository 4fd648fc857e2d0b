"""Under `pytest -n`, each xdist worker has a Redis database of its own (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.conftest import worker_redis_url


def test_each_xdist_worker_adds_its_index_to_the_database_number() -> None:
    base = "redis://:pw@127.0.0.1:6379/7"
    assert worker_redis_url(base, None) == base  # not under xdist: the URL as given
    assert worker_redis_url(base, "gw0") == base
    assert worker_redis_url(base, "gw2") == "redis://:pw@127.0.0.1:6379/9"
    assert worker_redis_url("redis://127.0.0.1:6379", "gw1") == "redis://127.0.0.1:6379/1"


def test_a_worker_past_the_last_database_is_refused() -> None:
    with pytest.raises(pytest.UsageError, match="database 16"):
        worker_redis_url("redis://127.0.0.1:6379/15", "gw1")
