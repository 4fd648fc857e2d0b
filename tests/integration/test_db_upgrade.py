"""`agency db upgrade` migrates the configured database and says what it did."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.state.connector import migrations
from orchestrator.state.store import display_url
from tests.integration.test_hostile_input import agency


def _versions(dialect: str) -> list[int]:
    return [version for version, _ in migrations(dialect)]


def _upgrade(tmp_path: Path, url: str) -> str:
    result = agency(tmp_path, "db", "upgrade", AGENCY_DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_sqlite_is_migrated_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'agency.db'}"
    versions = _versions("sqlite")
    assert _upgrade(tmp_path, url) == (
        f"Database {url}: applied migrations {', '.join(map(str, versions))}.")
    assert (tmp_path / "state" / "agency.db").is_file()
    assert _upgrade(tmp_path, url) == (
        f"Database {url}: already up to date at version {versions[-1]}.")


def test_postgresql_is_migrated_once(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    versions = _versions("postgresql")
    assert _upgrade(tmp_path, pg_url) == (
        f"Database {display_url(pg_url)}: applied migrations {', '.join(map(str, versions))}.")
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == versions
    assert _upgrade(tmp_path, pg_url) == (
        f"Database {display_url(pg_url)}: already up to date at version {versions[-1]}.")


def test_the_password_is_never_printed() -> None:
    assert display_url("postgresql://agency:hunter2@db:5432/agency?password=hunter2") == (
        "postgresql://agency@db:5432/agency")
    assert display_url("sqlite:///.agency/agency.db") == "sqlite:///.agency/agency.db"


def _fails(tmp_path: Path, url: str) -> str:
    result = agency(tmp_path, "db", "upgrade", AGENCY_DATABASE_URL=url)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("agency: error: "), result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    return lines[0]


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://agency:hunter2@127.0.0.1:9/agency", "cannot connect to PostgreSQL"),
    ("sqlite:////proc/no-such-folder/agency.db", "cannot open SQLite database"),
])
def test_a_database_that_cannot_be_reached(tmp_path: Path, url: str, message: str) -> None:
    assert message in _fails(tmp_path, url)


def test_a_file_that_is_no_database(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not a database\n" * 100)
    assert "file is not a database" in _fails(tmp_path, f"sqlite:///{tmp_path / 'notes.db'}")
