-- What a running task, or a project's own step (planning, integrating), is doing right now:
-- a streamed call's output so far. Transient: shown while the work runs.
ALTER TABLE tasks ADD COLUMN activity text;
ALTER TABLE projects ADD COLUMN activity text;
