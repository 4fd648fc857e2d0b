"""Migration scripts split into the statements the adapters run one by one; named queries."""

from __future__ import annotations

import sqlite3

from orchestrator.state.connector import migrations, queries, split_script

SCRIPT = """
-- A comment; with a semicolon.
CREATE TABLE notes (id integer PRIMARY KEY, body text);
CREATE TABLE log (id integer PRIMARY KEY, note integer, what text);
CREATE TRIGGER notes_inserted AFTER INSERT ON notes BEGIN
    INSERT INTO log (note, what) VALUES (new.id, 'inserted');
    INSERT INTO log (note, what) VALUES (new.id, 'twice');
END;
create temp trigger notes_deleted after delete on notes begin
    insert into log (note, what) values (old.id, 'deleted');
end;
CREATE INDEX log_note_idx ON log (note);
"""


def test_plain_statements_split_on_semicolons() -> None:
    assert list(split_script("CREATE TABLE a (x int);\n\nCREATE TABLE b (y int);\n")) == [
        "CREATE TABLE a (x int)", "CREATE TABLE b (y int)"]


def test_a_trigger_body_stays_whole() -> None:
    statements = list(split_script(SCRIPT))
    assert len(statements) == 5
    assert statements[2].startswith("CREATE TRIGGER notes_inserted")
    assert statements[2].endswith("END") and statements[2].count(";") == 2
    assert statements[3].startswith("create temp trigger") and statements[3].endswith("end")
    assert statements[4] == "CREATE INDEX log_note_idx ON log (note)"


def test_the_statements_run() -> None:
    conn = sqlite3.connect(":memory:")
    for statement in split_script(SCRIPT):
        conn.execute(statement)
    conn.execute("INSERT INTO notes (body) VALUES ('x')")
    conn.execute("DELETE FROM notes")
    assert [r[0] for r in conn.execute("SELECT what FROM log ORDER BY id")] == [
        "inserted", "twice", "deleted"]


def test_a_dollar_quoted_body_stays_whole_and_a_postgresql_trigger_has_no_end() -> None:
    script = """CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.x THEN RAISE EXCEPTION 'no'; END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER t BEFORE UPDATE ON a FOR EACH ROW EXECUTE FUNCTION f();
CREATE INDEX i ON a (x);"""
    statements = list(split_script(script))
    assert len(statements) == 3
    assert statements[0].startswith("CREATE FUNCTION") and statements[0].endswith("$$")
    assert statements[1] == "CREATE TRIGGER t BEFORE UPDATE ON a FOR EACH ROW EXECUTE FUNCTION f()"
    assert statements[2] == "CREATE INDEX i ON a (x)"


def test_a_trigger_without_its_end_is_not_dropped() -> None:
    statements = list(split_script("CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1;"))
    assert len(statements) == 1 and statements[0].startswith("CREATE TRIGGER t")


def test_every_sqlite_migration_runs_on_a_fresh_database() -> None:
    conn = sqlite3.connect(":memory:")
    for _, script in migrations("sqlite"):
        for statement in split_script(script):
            conn.execute(statement)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert names == {"knowledge_inserted", "knowledge_deleted", "knowledge_updated",
                     "projects_legal_move", "tasks_legal_move", "questions_legal_move"}



def test_an_included_query_is_written_once_and_filled_in() -> None:
    found = queries()
    assert found["insert_attempt_usage"] in found["record_attempt_usage"]
    assert found["add_tokens_used"] in found["record_attempt_usage"]
    assert not [name for name, sql in found.items() if "-- include:" in sql]
