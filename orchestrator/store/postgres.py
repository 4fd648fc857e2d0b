"""PostgreSQL adapter on psycopg 3 and its connection pool."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from orchestrator.errors import StoreError
from orchestrator.store.connector import Params, Row, apply_migrations, queries

_PARAM = re.compile(r"(?<!:):(\w+)")
_MIGRATION_LOCK = 0x4147454E  # "AGEN": one migrator at a time across processes


def _convert(sql: str) -> str:
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


class _Session:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def _run(self, query: str, params: Params) -> psycopg.Cursor[Any]:
        try:
            return self._conn.execute(_convert(queries()[query]).encode(), dict(params))
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL query {query} failed: {exc}") from exc

    def execute(self, query: str, params: Params) -> int:
        return self._run(query, params).rowcount

    def fetch_one(self, query: str, params: Params) -> Row | None:
        row = self._run(query, params).fetchone()
        return dict(row) if row is not None else None

    def fetch_all(self, query: str, params: Params) -> list[Row]:
        return [dict(r) for r in self._run(query, params).fetchall()]


class PostgresConnector:
    """The production store; a pool of autocommit connections."""

    dialect = "postgresql"

    def __init__(self, url: str, max_size: int = 8) -> None:
        try:
            # One plain connection first: a clear reason at once instead of pool retries.
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0]
            raise StoreError(f"cannot connect to PostgreSQL: {reason}") from exc
        try:
            self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                url, min_size=1, max_size=max_size, open=True, timeout=30,
                kwargs={"autocommit": True, "row_factory": dict_row},
            )
            self._pool.wait(timeout=10)
        except (psycopg.Error, Exception) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc

    def execute(self, query: str, params: Params) -> int:
        with self._pool.connection() as conn:
            return _Session(conn).execute(query, params)

    def fetch_one(self, query: str, params: Params) -> Row | None:
        with self._pool.connection() as conn:
            return _Session(conn).fetch_one(query, params)

    def fetch_all(self, query: str, params: Params) -> list[Row]:
        with self._pool.connection() as conn:
            return _Session(conn).fetch_all(query, params)

    @contextmanager
    def transaction(self) -> Iterator[_Session]:
        with self._pool.connection() as conn, conn.transaction():
            yield _Session(conn)

    def migrate(self) -> list[int]:
        """Apply the migrations not applied yet, one migrator at a time across processes."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                tx = _Session(conn)
                tx.fetch_one("lock_migrations", {"key": _MIGRATION_LOCK})
                return apply_migrations(tx, self.dialect,
                                        lambda statement: conn.execute(statement.encode()))
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL migration failed: {exc}") from exc

    def close(self) -> None:
        self._pool.close()
