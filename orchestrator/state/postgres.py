"""PostgreSQL adapter on psycopg 3 and its connection pool."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from orchestrator.domain.constants import (
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    SEND_TIMEOUT_MS,
)
from orchestrator.domain.errors import IllegalMove, StoreError, StoreUnavailable
from orchestrator.state.connector import Params, Row, apply_migrations, queries

_PARAM = re.compile(r"(?<!:):(\w+)")
_MIGRATION_LOCK = 0x4147454E  # "AGEN": one migrator at a time across processes


def _wrap(query: str, exc: psycopg.Error) -> StoreError | IllegalMove:
    """A lost or refused connection is worth retrying; anything else is a real failure."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.errors.PipelineAborted):  # an earlier statement failed
        return StoreError(f"PostgreSQL query {query} not run: an earlier statement of its "
                          f"transaction failed ({reason})")
    if isinstance(exc, psycopg.OperationalError):
        return StoreUnavailable(f"PostgreSQL unavailable ({query}): {reason}")
    if isinstance(exc, psycopg.errors.CheckViolation) and reason.startswith("illegal "):
        return IllegalMove(f"PostgreSQL refused ({query}): {reason}")  # lifecycle_moves
    return StoreError(f"PostgreSQL query {query} failed: {reason}")


@contextmanager
def _guard(what: str) -> Iterator[None]:
    """Errors from taking, using or committing a connection, mapped once."""
    try:
        yield
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.OperationalError):
            # The server may have restarted: its other connections in the pool are as dead as
            # this one. Check each one again before it is handed out (see `_check`).
            _returned.clear()
        raise _wrap(what, exc) from exc


def _convert(sql: str) -> str:
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


_converted: dict[str, bytes] = {}


def _statement(query: str) -> bytes:
    """A named query in psycopg's placeholders, converted once per process."""
    found = _converted.get(query)
    if found is None:
        found = _converted[query] = _convert(queries()[query]).encode()
    return found


# A connection that sat idle is checked (one round trip) before it is handed out: a restarted
# server breaks them all. One returned moments ago is handed out as is, which halves the round
# trips of a busy worker; if the server went away since, its statement fails as
# StoreUnavailable, the pool drops it, every other connection is checked again before its next
# use (`_guard`), and the caller's retry gets a good one.
FRESH_SECONDS = 2.0
_returned: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
    weakref.WeakKeyDictionary())


def _check(conn: psycopg.Connection[Any]) -> None:
    if time.monotonic() - _returned.get(conn, float("-inf")) > FRESH_SECONDS:
        ConnectionPool.check_connection(conn)


POOL_TIMEOUT = 5.0  # seconds a caller waits for a connection before StoreUnavailable
# The pool tries to make a connection for this long (at 0, 1, 3 and 5 s), then gives up; the
# next caller that finds the pool short starts a new try at once. A server that comes back is
# used within a second or two, not after a backoff that doubled through the outage (up to
# reconnect_timeout: this was an hour).
RECONNECT_SECONDS = POOL_TIMEOUT
# The server drops a session whose client stopped answering (a host cut off from the
# network) after these, and with it the session's locks: the reconciler's advisory lock, the
# row locks of a transaction that was open. Without them it keeps it for hours (the server's
# TCP keepalive defaults), and no other machine's reconciler could run a pass meanwhile.
SERVER_KEEPALIVE = (f"-c tcp_keepalives_idle={KEEPALIVE_IDLE} "
                    f"-c tcp_keepalives_interval={KEEPALIVE_INTERVAL} "
                    f"-c tcp_keepalives_count={KEEPALIVE_COUNT} "
                    f"-c tcp_user_timeout={SEND_TIMEOUT_MS}")


def _mark_returned(conn: psycopg.Connection[Any]) -> None:
    _returned[conn] = time.monotonic()


def _server_limit(conn: psycopg.Connection[Any]) -> str:
    """What the server allows, in words: max_connections and those reserved."""
    try:
        total = conn.execute("SHOW max_connections").fetchone()
        reserved = conn.execute("SHOW superuser_reserved_connections").fetchone()
    except psycopg.Error:
        return "an unknown number (SHOW max_connections failed)"
    return (f"max_connections={total[0] if total else '?'} "
            f"({reserved[0] if reserved else '?'} reserved for superusers)")


def _with_server_keepalive(url: str) -> str:
    """SERVER_KEEPALIVE, then the URL's own `options` (else PGOPTIONS's, which an explicit
    `options` would hide): those stay, and a keepalive of their own wins (it comes later)."""
    own = str(conninfo_to_dict(url).get("options") or os.environ.get("PGOPTIONS", ""))
    return f"{SERVER_KEEPALIVE} {own}".strip()


REPORT_EVERY = 60.0  # seconds between two warnings of a process the server keeps refusing
_pool_log = logging.getLogger("psycopg.pool")
log = logging.getLogger(__name__)


class _Refusals(logging.Filter):
    """psycopg_pool logs every failed connection attempt at WARNING ("error connecting in
    'pool-1': ..."), every second or two for as long as a server refuses. This keeps the
    reason for the connector's `health` and lets one warning through per REPORT_EVERY, with
    the numbers (`PostgresConnector._refused`)."""

    def __init__(self) -> None:
        super().__init__()
        self.pools: dict[str, PostgresConnector] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        args = record.args if isinstance(record.args, tuple) else ()
        owner = self.pools.get(str(args[0])) if args else None
        if owner is None:
            return True
        if message.startswith("error connecting in"):
            owner._refused(str(args[1]) if len(args) > 1 else record.getMessage())
            return False
        # "reconnection attempt in pool ... failed after 5 sec": the next caller tries again
        return not message.startswith("reconnection attempt in pool")


_refusals = _Refusals()
_pool_log.addFilter(_refusals)


MAINTENANCE_DB = "postgres"  # the database `createdb` connects to in order to create one


def create_database(url: str) -> bool:
    """Create the URL's database when its server says it does not exist, from the server's
    maintenance database, as `createdb` does; True when this created it."""
    params = conninfo_to_dict(url)
    name = str(params.get("dbname") or "")
    try:
        psycopg.connect(url, connect_timeout=5).close()
        return False
    except psycopg.OperationalError as exc:
        if not name or f'database "{name}" does not exist' not in str(exc):
            return False  # unreachable, refused, ...: connecting again says why, in one line
    admin = make_conninfo(url, dbname=MAINTENANCE_DB)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        return False  # another process created it a moment ago
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0]
        raise StoreError(f'PostgreSQL database "{name}" does not exist and could not be '
                         f"created ({reason}); create it with: createdb {name} (with the host "
                         "and user of AGENCY_DATABASE_URL)") from exc
    return True


class _Session:
    """Statements on one connection; in a transaction, a pipeline (`send`)."""

    def __init__(self, conn: psycopg.Connection[Any],
                 pipeline: psycopg.Pipeline | None = None) -> None:
        self._conn, self._pipeline = conn, pipeline

    def _run(self, query: str, params: Params) -> psycopg.Cursor[Any]:
        with _guard(query):
            return self._conn.execute(_statement(query), dict(params))

    def execute(self, query: str, params: Params) -> int:
        cursor = self._run(query, params)
        if self._pipeline is not None:  # its row count is known once its result is in
            with _guard(query):
                self._pipeline.sync()
        return cursor.rowcount

    def send(self, query: str, params: Params) -> None:
        self._run(query, params)

    def fetch_later(self, query: str, params: Params) -> Callable[[], list[Row]]:
        cursor = self._run(query, params)

        def rows() -> list[Row]:
            with _guard(query):
                return [dict(r) for r in cursor.fetchall()]

        return rows

    def fetch_one(self, query: str, params: Params) -> Row | None:
        cursor = self._run(query, params)
        with _guard(query):  # in a pipeline, an error arrives with the result
            row = cursor.fetchone()
        return dict(row) if row is not None else None

    def fetch_all(self, query: str, params: Params) -> list[Row]:
        cursor = self._run(query, params)
        with _guard(query):
            return [dict(r) for r in cursor.fetchall()]


class PostgresConnector:
    """The production store; a pool of autocommit connections."""

    dialect = "postgresql"

    def __init__(self, url: str, max_size: int = 4, idle: float = 10.0,
                 pgbouncer: bool = False) -> None:
        """A pool of 0 to `max_size` connections: one unused for `idle` seconds is closed
        (one per `idle` seconds: psycopg_pool's shrink), so an idle process gives its
        connections back to the processes that have work. `pgbouncer`: the URL names a
        PgBouncer in transaction mode (no prepared statements, no `options`)."""
        options: str | None = None if pgbouncer else _with_server_keepalive(url)
        self.max_size, self.idle = max_size, idle
        self.refusal: tuple[str, float] | None = None  # the server's reason, since when
        self._reported = -REPORT_EVERY
        # The longest a caller waited for a connection, over its retries (a thread that timed
        # out and asks again goes on waiting from its first try).
        self.longest_wait = 0.0
        self._waits = threading.local()
        try:
            # One plain connection first: a clear reason at once instead of pool retries.
            try:
                probe = psycopg.connect(url, connect_timeout=5, options=options)
            except psycopg.OperationalError as exc:
                if "options" not in str(exc):
                    raise
                # A pooler in front (PgBouncer) refuses the `options` startup parameter:
                # its own keepalive settings stand for the server's then.
                options = None
                probe = psycopg.connect(url, connect_timeout=5)
            with probe:
                self.server_limit = _server_limit(probe)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0]
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {reason}") from exc
        server_side: dict[str, Any] = {"options": options} if options is not None else {}
        if pgbouncer:
            server_side["prepare_threshold"] = None
        try:
            self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                url, min_size=0, max_size=max_size, max_idle=idle, open=False,
                timeout=POOL_TIMEOUT, configure=self._connected,
                # Connections are checked as they are taken (`_connection`), not by the pool.
                reset=_mark_returned, reconnect_timeout=RECONNECT_SECONDS,
                kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 5,
                        # A dead peer of an idle connection is found by keepalive; one
                        # waiting on an unacknowledged send gives up after 20 s.
                        "keepalives": 1, "keepalives_idle": KEEPALIVE_IDLE,
                        "keepalives_interval": KEEPALIVE_INTERVAL,
                        "keepalives_count": KEEPALIVE_COUNT,
                        "tcp_user_timeout": SEND_TIMEOUT_MS, **server_side},
            )
            _refusals.pools[self._pool.name] = self
            self._pool.open(wait=True, timeout=10)
        except (psycopg.Error, Exception) as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc

    def _connected(self, conn: psycopg.Connection[Any]) -> None:
        """A new connection of the pool: whatever refused the last ones is over."""
        if self.refusal is not None:
            log.info("PostgreSQL connections again after %.0f s of refusals",
                     time.monotonic() - self.refusal[1])
            self.refusal = None  # the next refusal is said again, REPORT_EVERY after this

    def _refused(self, reason: str) -> None:
        """The server refused a connection: said once per REPORT_EVERY, with the numbers."""
        reason = reason.strip().splitlines()[-1] if reason.strip() else reason
        reason = reason.rsplit("FATAL:", 1)[-1].strip()  # the server's words, not libpq's
        at = time.monotonic()
        since = self.refusal[1] if self.refusal is not None else at
        self.refusal = (reason, since)
        if at - self._reported < REPORT_EVERY:
            return
        self._reported = at
        stats = self._pool.get_stats()
        log.warning(
            "PostgreSQL refused a connection: %s; this process has %d of the %d it may open "
            "(AGENCY_DB_POOL_SIZE); the server allows %s; refused for %.0f s so far (next "
            "report in %.0f s; docs/scaling.md: the connection budget)", reason,
            stats.get("pool_size", 0), self.max_size, self.server_limit, at - since,
            REPORT_EVERY)

    def health(self) -> dict[str, Any]:
        """This process's side of the store: connections open, idle, callers waiting for
        one, and the server's reason while it refuses new ones."""
        stats = self._pool.get_stats()
        refusal = self.refusal
        return {"open": int(stats.get("pool_size", 0)),
                "idle": int(stats.get("pool_available", 0)),
                "waiting": int(stats.get("requests_waiting", 0)), "max": self.max_size,
                "longest_wait_s": round(self.longest_wait, 1),
                "refused": refusal[0] if refusal else None,
                "refused_for_s": round(time.monotonic() - refusal[1], 1) if refusal else None}

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the pool, checked (`_check`) before it is handed out, as
        `ConnectionPool.connection()` with `check=` would, except that a dead one is swapped
        for the next at once: the pool's own loop sleeps 1 s, then 2 s, ... between two dead
        connections, which after a partition cost every process seconds on its first query
        (four dead connections each). Each dead one goes back broken, and the pool replaces it.
        """
        started = time.monotonic()
        deadline = started + POOL_TIMEOUT
        while True:
            try:
                conn = self._pool.getconn(timeout=max(deadline - time.monotonic(), 0.01))
            except PoolTimeout:  # the caller retries: its wait goes on (`longest_wait`)
                self._waits.since = getattr(self._waits, "since", None) or started
                raise
            try:
                _check(conn)
                break
            except psycopg.Error:
                self._pool.putconn(conn)
        since = getattr(self._waits, "since", None) or started
        self._waits.since = None
        self.longest_wait = max(self.longest_wait, time.monotonic() - since)
        try:
            with conn:
                yield conn
        finally:
            if not conn.closed and (conn.pgconn.pipeline_status != pq.PipelineStatus.OFF
                                    or conn.info.transaction_status
                                    != pq.TransactionStatus.IDLE):
                conn.close()  # interrupted mid-pipeline or mid-transaction: not reused
            self._pool.putconn(conn)

    def execute(self, query: str, params: Params) -> int:
        with _guard(query), self._connection() as conn:
            return _Session(conn).execute(query, params)

    def send(self, query: str, params: Params) -> None:
        self.execute(query, params)  # outside a transaction, a statement is a round trip

    def fetch_later(self, query: str, params: Params) -> Callable[[], list[Row]]:
        rows = self.fetch_all(query, params)
        return lambda: rows

    def fetch_one(self, query: str, params: Params) -> Row | None:
        with _guard(query), self._connection() as conn:
            return _Session(conn).fetch_one(query, params)

    def fetch_all(self, query: str, params: Params) -> list[Row]:
        with _guard(query), self._connection() as conn:
            return _Session(conn).fetch_all(query, params)

    def fetch_many(self, reads: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        with _guard(reads[0][0] if reads else "reads"), self._connection() as conn:
            with conn.pipeline():
                cursors = [conn.execute(_statement(q), dict(p)) for q, p in reads]
            return [[dict(r) for r in cursor.fetchall()] for cursor in cursors]

    @contextmanager
    def transaction(self) -> Iterator[_Session]:
        """A transaction in a pipeline: BEGIN, the statements sent (`send`) and the COMMIT
        travel with the statements whose results are read, so a transaction costs a round
        trip per result read plus one, not one per statement plus two."""
        # BEGIN and COMMIT by hand: psycopg's `transaction()` waits for the server at both
        # ends in a pipeline (to learn the transaction's state), which costs three round trips
        # more than this. A body that raises leaves the transaction open or failed: the
        # connection's context (`_connection`) rolls it back.
        with _guard("transaction"), self._connection() as conn, conn.pipeline() as pipeline:
            conn.execute(b"BEGIN")
            yield _Session(conn, pipeline)
            conn.execute(b"COMMIT")

    @contextmanager
    def exclusive(self, key: int) -> Iterator[bool]:
        """Hold an advisory lock while the body runs, in a transaction of its own kept open
        for the body (the body's statements go through other connections); False when
        another holds it."""
        with _guard("advisory lock"), self._connection() as conn, conn.transaction():
            row = _Session(conn).fetch_one("try_reconciler_lock", {"key": key})
            yield bool(row and row["locked"])

    def migrate(self) -> list[int]:
        """Apply the migrations not applied yet, one migrator at a time across processes."""
        try:
            with self._connection() as conn, conn.transaction():
                tx = _Session(conn)
                tx.fetch_one("lock_migrations", {"key": _MIGRATION_LOCK})
                return apply_migrations(tx, self.dialect,
                                        lambda statement: conn.execute(statement.encode()))
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL migration failed: {exc}") from exc

    def close(self) -> None:
        _refusals.pools.pop(self._pool.name, None)
        self._pool.close()
