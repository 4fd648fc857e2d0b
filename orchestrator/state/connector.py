"""The narrow storage port: named queries in, rows out. Adapters implement it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any, Protocol

Row = dict[str, Any]
Params = Mapping[str, Any]

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
# A line `-- include: other` stands for the named query `other` (one level: an included query
# includes nothing), so that a statement made of others (a CTE) does not copy them.
_INCLUDE = re.compile(r"^[ \t]*-- include: (\w+)[ \t]*$", re.MULTILINE)
_TRIGGER = re.compile(r"\s*CREATE\s+(?:TEMP(?:ORARY)?\s+)?TRIGGER\b", re.IGNORECASE)
_BEGIN = re.compile(r"\bBEGIN\b", re.IGNORECASE)
_END = re.compile(r"\bEND\s*$", re.IGNORECASE)


@lru_cache(maxsize=1)
def queries() -> dict[str, str]:
    """The named queries of `sql/queries.sql`, their includes filled in."""
    text = resources.files("orchestrator.state").joinpath("sql/queries.sql").read_text()
    parts = _NAME.split(text)
    found = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    return {name: _INCLUDE.sub(lambda m: found[m.group(1)], body)
            for name, body in found.items()}


def migrations(dialect: str) -> list[tuple[int, str]]:
    """Numbered migration scripts for a dialect, in order."""
    folder = resources.files("orchestrator.state").joinpath(f"sql/migrations/{dialect}")
    found = [(int(f.name.split("_", 1)[0]), f.read_text()) for f in folder.iterdir()
             if f.name.endswith(".sql")]
    return sorted(found)


def split_script(script: str) -> Iterator[str]:
    """The statements of a migration script (no semicolons inside literals, by convention).

    A SQLite trigger's body holds statements of its own: it runs on to its closing `END` (so no
    statement inside it may end with a `CASE ... END`); so does a PostgreSQL function's body,
    quoted in `$$`, to its closing `$$`.
    """
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    pending = ""
    for piece in body.split(";"):
        pending = f"{pending};{piece}" if pending else piece
        if _TRIGGER.match(pending) and _BEGIN.search(pending) and not _END.search(pending):
            continue
        if pending.count("$$") % 2:
            continue
        if pending.strip():
            yield pending.strip()
        pending = ""
    if pending.strip():  # an unclosed trigger or $$ body: the database will say so
        yield pending.strip()


def apply_migrations(tx: Session, dialect: str, run: Callable[[str], object]) -> list[int]:
    """Run, inside `tx`, the migrations not applied yet; return their numbers."""
    tx.execute("create_migrations_table", {})
    done = {r["version"] for r in tx.fetch_all("applied_migrations", {})}
    applied: list[int] = []
    for version, script in migrations(dialect):
        if version in done:
            continue
        for statement in split_script(script):
            run(statement)
        tx.execute("record_migration", {"version": version,
                                        "now": datetime.now(UTC).isoformat()})
        applied.append(version)
    return applied


class Session(Protocol):
    """One connection's worth of work; inside `transaction()` all of it commits together."""

    def execute(self, query: str, params: Params) -> int: ...

    def send(self, query: str, params: Params) -> None:
        """Run a statement whose result nobody reads: inside a PostgreSQL transaction it goes
        out with the next statement whose result is read, or with the COMMIT (a pipeline),
        instead of costing a round trip of its own; an error it meets is raised there."""
        ...

    def fetch_one(self, query: str, params: Params) -> Row | None: ...

    def fetch_all(self, query: str, params: Params) -> list[Row]: ...

    def fetch_later(self, query: str, params: Params) -> Callable[[], list[Row]]:
        """Send a query now and read its rows when called: inside a PostgreSQL transaction,
        the queries sent before the first read all travel in that read's round trip."""
        ...


class Connector(Session, Protocol):
    """A database: sessions, transactions and migrations."""

    dialect: str

    def fetch_many(self, reads: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        """The rows of each read, in order, in one round trip (PostgreSQL: a pipeline, one
        implicit transaction); SQLite reads them one after another."""
        ...

    def transaction(self) -> AbstractContextManager[Session]: ...

    def migrate(self) -> list[int]: ...

    def exclusive(self, key: int) -> AbstractContextManager[bool]:
        """Try to hold a named lock across processes for the body; yields whether it is held."""
        ...

    def close(self) -> None: ...
