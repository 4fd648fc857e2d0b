-- The project's knowledge base: its request, analysis, plan, task outputs and artifacts, one
-- row each, searchable by words. `ref` tells rows of one kind apart (a task id for an output,
-- "<task id>:<path>" for an artifact, '' otherwise), so that indexing again replaces a row.
-- An FTS5 index over the table's own text (external content), kept in step by triggers.
CREATE TABLE knowledge (
    id         integer PRIMARY KEY,
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    ref        text NOT NULL DEFAULT '',
    source     text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    at         text NOT NULL,
    UNIQUE (project_id, kind, ref)
);
CREATE VIRTUAL TABLE knowledge_fts USING fts5(
    title, body, content='knowledge', content_rowid='id', tokenize='porter unicode61');
CREATE TRIGGER knowledge_inserted AFTER INSERT ON knowledge BEGIN
    INSERT INTO knowledge_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;
CREATE TRIGGER knowledge_deleted AFTER DELETE ON knowledge BEGIN
    INSERT INTO knowledge_fts (knowledge_fts, rowid, title, body)
    VALUES ('delete', old.id, old.title, old.body);
END;
CREATE TRIGGER knowledge_updated AFTER UPDATE ON knowledge BEGIN
    INSERT INTO knowledge_fts (knowledge_fts, rowid, title, body)
    VALUES ('delete', old.id, old.title, old.body);
    INSERT INTO knowledge_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;
