-- Checks (orchestrator/checks): each review round runs the task's files and keeps every
-- result (path, check, ok, detail, seconds) with its verdict, as a JSON list; a failed check
-- makes the verdict "revise" whatever the reviewing model said.
ALTER TABLE reviews ADD COLUMN checks text NOT NULL DEFAULT '[]';
-- The screenshot of each HTML page as its latest check saw it (PNG), by its artifact path;
-- integration writes them beside the deliverable (checks/<path>.png) and the report shows them.
CREATE TABLE screenshots (
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    path       text NOT NULL,
    task_id    text REFERENCES tasks (id) ON DELETE CASCADE,
    png        blob NOT NULL,
    at         text NOT NULL,
    PRIMARY KEY (project_id, path)
);
