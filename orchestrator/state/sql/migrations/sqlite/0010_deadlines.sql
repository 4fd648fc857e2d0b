-- Deadlines: a project's, from --deadline or from its
-- analysis's estimated hours, and each task's latest finish that still meets it.
ALTER TABLE projects ADD COLUMN deadline text;
ALTER TABLE tasks ADD COLUMN deadline text;
