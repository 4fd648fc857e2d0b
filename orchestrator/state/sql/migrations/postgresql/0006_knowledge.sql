-- The project's knowledge base: its request, analysis, plan, task outputs and artifacts, one
-- row each, searchable by words. `ref` tells rows of one kind apart (a task id for an output,
-- "<task id>:<path>" for an artifact, '' otherwise), so that indexing again replaces a row.
-- The database keeps the text-search vector itself: title words weigh more than body words.
CREATE TABLE knowledge (
    id         bigserial PRIMARY KEY,
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    ref        text NOT NULL DEFAULT '',
    source     text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    at         timestamptz NOT NULL,
    tsv        tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(title, '')), 'A')
        || to_tsvector('english', body)) STORED,
    UNIQUE (project_id, kind, ref)
);
CREATE INDEX knowledge_tsv_idx ON knowledge USING GIN (tsv);
