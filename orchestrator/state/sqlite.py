"""SQLite adapter for the embedded mode: one connection, serialized by a lock, WAL journal."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.domain.errors import ConfigError, IllegalMove, StoreError, StoreUnavailable
from orchestrator.state.connector import Params, Row, apply_migrations, queries

_ANY = re.compile(r"= ANY\(:(\w+)\)")


def _adapt(value: Any) -> Any:
    if isinstance(value, datetime):
        # Fixed width, so that text comparison orders times (`lease_until < :now`).
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, bool):
        return int(value)
    return value


def _bind(sql: str, params: Params) -> tuple[str, dict[str, Any]]:
    """Expand `= ANY(:list)` into `IN (...)`, since SQLite has no arrays."""
    bound = {k: _adapt(v) for k, v in params.items() if not isinstance(v, list | tuple)}

    def expand(match: re.Match[str]) -> str:
        name = match.group(1)
        values = list(params[name])
        names = [f"{name}_{i}" for i in range(len(values))]
        bound.update({n: _adapt(v) for n, v in zip(names, values, strict=True)})
        return "IN (" + ", ".join(f":{n}" for n in names) + ")" if names else "IN (NULL)"

    return _ANY.sub(expand, sql), bound


class _Session:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _run(self, query: str, params: Params) -> tuple[list[sqlite3.Row], int]:
        """The rows and the row count; every row is read here, since a RETURNING statement's
        later rows are written (and a trigger may refuse them) only as they are read."""
        sql, bound = _bind(queries()[query], params)
        try:
            cursor = self._conn.execute(sql, bound)
            return cursor.fetchall(), cursor.rowcount
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):  # another process holds it: wait
                raise StoreUnavailable(f"SQLite query {query}: {exc}") from exc
            raise StoreError(f"SQLite query {query} failed: {exc}") from exc
        except sqlite3.IntegrityError as exc:
            if str(exc).startswith("illegal "):  # a lifecycle_moves trigger refused it
                raise IllegalMove(f"SQLite refused ({query}): {exc}") from exc
            raise StoreError(f"SQLite query {query} failed: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query {query} failed: {exc}") from exc

    def execute(self, query: str, params: Params) -> int:
        rows, count = self._run(query, params)  # RETURNING rows are consumed: the update ends
        return len(rows) if rows else count

    def send(self, query: str, params: Params) -> None:
        self._run(query, params)

    def fetch_later(self, query: str, params: Params) -> Callable[[], list[Row]]:
        rows = self.fetch_all(query, params)
        return lambda: rows

    def fetch_one(self, query: str, params: Params) -> Row | None:
        rows = self.fetch_all(query, params)
        return rows[0] if rows else None

    def fetch_all(self, query: str, params: Params) -> list[Row]:
        return [dict(row) for row in self._run(query, params)[0]]


def _open(path: str, create_folder: bool) -> sqlite3.Connection:
    """A connection in autocommit mode, WAL journal, foreign keys on; the folder made if need be
    and `create_folder`, else refused (a mistyped path would make folders and a database)."""
    if path != ":memory:":
        folder = Path(path).parent
        if create_folder:
            folder.mkdir(parents=True, exist_ok=True)
        elif not folder.is_dir():
            raise ConfigError(f"AGENCY_DATABASE_URL: the folder {folder} of the SQLite database "
                              "does not exist; correct the path, or create it (agency db upgrade "
                              "does)")
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")  # fails here on a file that is no database
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


class SQLiteConnector:
    """The embedded store: a file under `.agency/` by default."""

    dialect = "sqlite"

    def __init__(self, url: str, create_folder: bool = True) -> None:
        path = url.removeprefix("sqlite:///")
        try:
            self._conn = _open(path, create_folder)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite database {path}: {exc}") from exc
        self._lock = threading.RLock()
        self._exclusive: dict[int, threading.Lock] = {}
        self._session = _Session(self._conn)

    def execute(self, query: str, params: Params) -> int:
        with self._lock:
            return self._session.execute(query, params)

    def send(self, query: str, params: Params) -> None:
        self.execute(query, params)

    def fetch_later(self, query: str, params: Params) -> Callable[[], list[Row]]:
        rows = self.fetch_all(query, params)
        return lambda: rows

    def fetch_many(self, reads: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        with self._lock:
            return [self._session.fetch_all(q, p) for q, p in reads]

    def fetch_one(self, query: str, params: Params) -> Row | None:
        with self._lock:
            return self._session.fetch_one(query, params)

    def fetch_all(self, query: str, params: Params) -> list[Row]:
        with self._lock:
            return self._session.fetch_all(query, params)

    @contextmanager
    def transaction(self) -> Iterator[_Session]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._session
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def exclusive(self, key: int) -> Iterator[bool]:
        """One holder at a time within this process (the embedded store has one process)."""
        lock = self._exclusive.setdefault(key, threading.Lock())
        locked = lock.acquire(blocking=False)
        try:
            yield locked
        finally:
            if locked:
                lock.release()

    def migrate(self) -> list[int]:
        """Apply the migrations not applied yet; return their numbers."""
        try:
            with self.transaction() as tx:
                return apply_migrations(tx, self.dialect, self._conn.execute)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite migration failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
