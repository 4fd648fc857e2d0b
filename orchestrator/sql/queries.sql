-- Named queries, shared by the PostgreSQL and SQLite adapters.
-- Parameters are `:name`; `= ANY(:name)` takes a list.

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at text NOT NULL)

-- name: lock_migrations
-- PostgreSQL only: held until the migrating transaction ends.
SELECT pg_advisory_xact_lock(:key)

-- name: applied_migrations
SELECT version FROM schema_migrations ORDER BY version

-- name: record_migration
INSERT INTO schema_migrations (version, applied_at) VALUES (:version, :now)

-- name: insert_project
INSERT INTO projects (id, request, project_type, status, budget_tokens, output_dir, plan,
                      created_at, updated_at)
VALUES (:id, :request, :project_type, :status, :budget_tokens, :output_dir, :plan, :now, :now)

-- name: get_project
SELECT * FROM projects WHERE id = :id

-- name: find_projects_by_prefix
-- :prefix has its LIKE wildcards escaped with a backslash and ends with %.
SELECT id FROM projects WHERE id LIKE :prefix ESCAPE '\' ORDER BY created_at DESC LIMIT 2

-- name: list_projects
SELECT * FROM projects ORDER BY created_at DESC LIMIT :limit

-- name: set_project_analysis
UPDATE projects
SET analysis = :analysis, project_type = :project_type, complexity = :complexity,
    budget_tokens = COALESCE(budget_tokens, :budget_tokens), updated_at = :now
WHERE id = :id

-- name: set_project_plan
UPDATE projects SET plan = :plan, project_type = COALESCE(project_type, :project_type),
    budget_tokens = COALESCE(budget_tokens, :budget_tokens), updated_at = :now
WHERE id = :id

-- name: transition_project
UPDATE projects
SET status = :to_status, error = COALESCE(:error, error), updated_at = :now,
    finished_at = COALESCE(:finished_at, finished_at)
WHERE id = :id AND status = ANY(:allowed)
RETURNING status

-- name: insert_task
INSERT INTO tasks (id, project_id, idx, title, description, agent_type, priority,
                   estimated_tokens, deliverables, acceptance_criteria, on_critical_path,
                   status, pending_deps)
VALUES (:id, :project_id, :idx, :title, :description, :agent_type, :priority,
        :estimated_tokens, :deliverables, :acceptance_criteria, :on_critical_path,
        :status, :pending_deps)

-- name: insert_edge
INSERT INTO task_edges (task_id, depends_on) VALUES (:task_id, :depends_on)

-- name: get_task
SELECT * FROM tasks WHERE id = :id

-- name: find_tasks_by_prefix
-- :prefix as in find_projects_by_prefix.
SELECT id FROM tasks WHERE id LIKE :prefix ESCAPE '\' ORDER BY id LIMIT 2

-- name: project_tasks
SELECT * FROM tasks WHERE project_id = :project_id ORDER BY idx

-- name: project_edges
SELECT e.task_id, e.depends_on FROM task_edges e JOIN tasks t ON t.id = e.task_id
WHERE t.project_id = :project_id

-- name: dependency_statuses
SELECT d.id, d.status FROM task_edges e JOIN tasks d ON d.id = e.depends_on
WHERE e.task_id = :id

-- name: mark_queued
UPDATE tasks SET queued_at = :now WHERE id = ANY(:ids) AND queued_at IS NULL

-- name: assign_unit
UPDATE tasks SET unit = :unit WHERE id = ANY(:ids)

-- name: lock_project
-- Serializes completions within one project (a row lock in PostgreSQL; SQLite's
-- transactions are serial already), so exactly one completer sees the last task done.
UPDATE projects SET updated_at = :now WHERE id = :id

-- name: count_unfinished
SELECT COUNT(*) AS n FROM tasks WHERE project_id = :project_id AND status <> :completed

-- name: start_task
UPDATE tasks
SET status = :to_status, attempts = attempts + 1, worker = :worker, started_at = :now,
    error = NULL
WHERE id = :id AND status = ANY(:allowed) AND pending_deps = 0
RETURNING project_id, attempts

-- name: finish_task
UPDATE tasks
SET status = :to_status, output = COALESCE(:output, output), error = :error, finished_at = :now
WHERE id = :id AND status = ANY(:allowed)
RETURNING project_id

-- name: transition_task
UPDATE tasks SET status = :to_status
WHERE id = :id AND status = ANY(:allowed)
RETURNING project_id

-- name: transition_project_tasks
UPDATE tasks SET status = :to_status
WHERE project_id = :project_id AND status = ANY(:allowed)
RETURNING id

-- name: count_down_dependents
UPDATE tasks SET pending_deps = pending_deps - 1
WHERE id IN (SELECT task_id FROM task_edges WHERE depends_on = :id)
RETURNING id, pending_deps

-- name: insert_event
INSERT INTO events (project_id, task_id, kind, from_status, to_status, detail, at)
VALUES (:project_id, :task_id, :kind, :from_status, :to_status, :detail, :now)

-- name: project_events
SELECT * FROM events WHERE project_id = :project_id ORDER BY id

-- name: insert_usage
INSERT INTO usage (project_id, task_id, role, model, input_tokens, output_tokens,
                   cache_read_tokens, cache_write_tokens, cost_usd, latency_ms, attempt, at)
VALUES (:project_id, :task_id, :role, :model, :input_tokens, :output_tokens,
        :cache_read_tokens, :cache_write_tokens, :cost_usd, :latency_ms, :attempt, :now)

-- name: usage_by_task
SELECT task_id, SUM(input_tokens) AS input, SUM(output_tokens) AS output,
       SUM(cache_read_tokens) AS cache_read, SUM(cache_write_tokens) AS cache_write,
       SUM(cost_usd) AS cost_usd
FROM usage WHERE project_id = :project_id GROUP BY task_id

-- name: usage_by_project
SELECT project_id, SUM(input_tokens) AS input, SUM(output_tokens) AS output,
       SUM(cache_read_tokens) AS cache_read, SUM(cache_write_tokens) AS cache_write,
       SUM(cost_usd) AS cost_usd
FROM usage WHERE project_id = ANY(:ids) GROUP BY project_id

-- name: set_project_deliverable
UPDATE projects SET deliverable = :deliverable, updated_at = :now WHERE id = :id

-- name: within_budget
SELECT tokens_used, budget_tokens FROM projects
WHERE id = :id AND (budget_tokens IS NULL OR tokens_used < budget_tokens)

-- name: add_tokens_used
UPDATE projects SET tokens_used = tokens_used + :tokens WHERE id = :id

-- name: set_budget
UPDATE projects SET budget_tokens = :budget_tokens, updated_at = :now WHERE id = :id

-- name: task_events
SELECT task_id, kind, detail, at FROM events
WHERE project_id = :project_id AND kind = ANY(:kinds) ORDER BY id

-- name: count_project_tasks
SELECT COUNT(*) AS tasks FROM tasks WHERE project_id = :project_id
