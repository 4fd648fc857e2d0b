-- Leases and fencing: each claim of a task (or of a project's planning or integration) bumps
-- `attempts`, which is the attempt's token; `lease_until` is renewed while the attempt works.
-- `sent_epoch` is the broker epoch in which a message for the row was last published: a
-- broker that restarted empty has a new epoch, so the reconciler knows what it lost.
-- `ready_at` is when a task last became ready: one ready for long with its queue empty lost
-- its message some other way. A ledger row of an attempt that was fenced out is `stale`: the
-- money was spent (the project's total counts it) but the task's usage does not.
ALTER TABLE tasks ADD COLUMN lease_until text;
ALTER TABLE tasks ADD COLUMN sent_epoch text;
ALTER TABLE tasks ADD COLUMN model_calls integer NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN ready_at text;
ALTER TABLE usage ADD COLUMN stale integer NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN lease_until text;
ALTER TABLE projects ADD COLUMN sent_epoch text;
ALTER TABLE projects ADD COLUMN attempts integer NOT NULL DEFAULT 0;
CREATE INDEX tasks_status_idx ON tasks (status);
CREATE INDEX projects_status_idx ON projects (status);
