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
INSERT INTO projects (id, request, project_type, status, budget_tokens, budget_explicit,
                      output_dir, plan, needs_approval, deadline, economy, created_at,
                      updated_at)
VALUES (:id, :request, :project_type, :status, :budget_tokens, :budget_explicit, :output_dir,
        :plan, :needs_approval, :deadline, :economy, :now, :now)

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
    budget_tokens = CASE WHEN budget_explicit THEN budget_tokens ELSE :budget_tokens END, updated_at = :now
WHERE id = :id

-- name: replace_waiting_plan
-- A person's edit: only a plan still waiting for approval can be replaced.
UPDATE projects SET plan = :plan, updated_at = :now,
    budget_tokens = CASE WHEN budget_explicit THEN budget_tokens ELSE :budget_tokens END
WHERE id = :id AND status = :status
RETURNING id

-- name: set_project_deadline
UPDATE projects SET deadline = :deadline WHERE id = :id

-- name: set_task_activity
UPDATE tasks SET activity = :activity WHERE id = :id

-- name: set_project_activity
UPDATE projects SET activity = :activity WHERE id = :id

-- name: set_task_deadline
UPDATE tasks SET deadline = :deadline WHERE id = :id

-- name: set_plan_only
UPDATE projects SET plan = :plan, updated_at = :now WHERE id = :id

-- name: delete_project_edges
-- Before delete_project_tasks: SQLite cascades only with foreign keys switched on.
DELETE FROM task_edges WHERE task_id IN (SELECT id FROM tasks WHERE project_id = :project_id)

-- name: delete_project_tasks
DELETE FROM tasks WHERE project_id = :project_id

-- name: project_status_locked
-- Before a compare-and-set of the project: its status, with the row locked (PostgreSQL; SQLite's
-- transactions are serial already) so the compare-and-set is judged against this very status,
-- and a refusal says why from it. Writes no value.
UPDATE projects SET status = status WHERE id = :id
RETURNING status

-- name: transition_project
-- A project that moves on (running again, completed) keeps no error of an earlier failure.
UPDATE projects
SET status = :to_status,
    error = CASE WHEN :clear_error THEN NULL ELSE COALESCE(:error, error) END,
    updated_at = :now, finished_at = COALESCE(:finished_at, finished_at), lease_until = NULL,
    sent_epoch = NULL,
    -- Carried on after failing for good: its planning and integration start new conversations.
    conversation_from = CASE WHEN status = :failed THEN attempts + 1 ELSE conversation_from END
WHERE id = :id AND status = ANY(:allowed)
RETURNING status

-- name: claim_project
-- Planning or integration takes the project: a new attempt (the fencing token) and a lease.
UPDATE projects
SET status = :to_status, attempts = attempts + 1, lease_until = :lease_until, updated_at = :now
WHERE id = :id AND status = ANY(:allowed)
  AND (lease_until IS NULL OR lease_until < :now)
RETURNING attempts

-- name: move_claimed_project
-- A fenced transition: only the attempt that holds the project may move it.
UPDATE projects
SET status = :to_status,
    error = CASE WHEN :clear_error THEN NULL ELSE COALESCE(:error, error) END,
    updated_at = :now, finished_at = COALESCE(:finished_at, finished_at), lease_until = NULL
WHERE id = :id AND attempts = :attempt AND status = :from_status
RETURNING status

-- name: renew_project_lease
UPDATE projects SET lease_until = :lease_until
WHERE id = :id AND attempts = :attempt AND status = ANY(:allowed)
RETURNING id

-- name: holds_project
-- An update, not a read: in PostgreSQL it locks the row until the holder's transaction ends.
UPDATE projects SET updated_at = :now
WHERE id = :id AND attempts = :attempt AND status = :status
RETURNING id

-- name: mark_project_sent
UPDATE projects SET sent_epoch = :epoch WHERE id = :id

-- name: expire_project_leases
-- Planning or integration whose attempt stopped renewing: back to where it can be sent again.
UPDATE projects SET status = :to_status, lease_until = NULL, sent_epoch = NULL
WHERE status = :from_status AND lease_until < :now
RETURNING id

-- name: lost_projects
-- Projects waiting for a planning or integration message that the broker no longer holds.
SELECT id, status FROM projects
WHERE status = ANY(:statuses) AND lease_until IS NULL
  AND (sent_epoch IS NULL OR sent_epoch <> :epoch) AND updated_at < :settled

-- name: insert_task
INSERT INTO tasks (id, project_id, idx, title, description, agent_type, priority,
                   estimated_tokens, deliverables, acceptance_criteria, on_critical_path,
                   status, pending_deps, ready_at)
VALUES (:id, :project_id, :idx, :title, :description, :agent_type, :priority,
        :estimated_tokens, :deliverables, :acceptance_criteria, :on_critical_path,
        :status, :pending_deps, :ready_at)

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

-- name: dependency_tasks
-- The tasks one task depends on, whole rows, in one query (an agent's inputs).
SELECT d.* FROM task_edges e JOIN tasks d ON d.id = e.depends_on
WHERE e.task_id = :id

-- name: project_of_task
SELECT p.* FROM projects p JOIN tasks t ON t.project_id = p.id WHERE t.id = :id

-- name: every_task_verdict
-- Every verdict of the task, over all its attempts: the caller keeps those of its conversation.
SELECT round, verdict, notes, summary, attempt FROM reviews WHERE task_id = :task_id ORDER BY id

-- name: unit_heads
-- Which of these tasks head their own launch unit (the store releases them, with their unit).
SELECT id FROM tasks WHERE id = ANY(:ids) AND unit = id

-- name: mark_sent
-- After publishing: these tasks are carried by a message of the broker's current epoch.
UPDATE tasks SET queued_at = COALESCE(queued_at, :now), sent_epoch = :epoch
WHERE id = ANY(:ids)

-- name: assign_unit
UPDATE tasks SET unit = :unit WHERE id = ANY(:ids)

-- name: lock_project
-- Serializes completions within one project (a row lock in PostgreSQL; SQLite's
-- transactions are serial already), so exactly one completer sees the last task done.
UPDATE projects SET updated_at = :now WHERE id = :id
RETURNING status

-- name: count_unfinished_and_live
-- count_unfinished and count_live_tasks in one pass over the project's tasks.
SELECT COALESCE(SUM(CASE WHEN status <> :completed THEN 1 ELSE 0 END), 0) AS unfinished,
       COALESCE(SUM(CASE WHEN status = ANY(:live) OR (status = :blocked AND error IS NULL)
                         THEN 1 ELSE 0 END), 0) AS live,
       COUNT(*) AS total
FROM tasks WHERE project_id = :project_id

-- name: count_live_tasks
-- Tasks that can still make progress: ready, running, or waiting on work that has not failed.
SELECT COUNT(*) AS n FROM tasks
WHERE project_id = :project_id
  AND (status = ANY(:live) OR (status = :blocked AND error IS NULL))

-- name: start_task
-- A claim: a new attempt (the fencing token) with a lease the attempt renews while it works.
UPDATE tasks
SET status = :to_status, attempts = attempts + 1, worker = :worker, started_at = :now,
    error = NULL, lease_until = :lease_until, parked = NULL, detached = false
WHERE id = :id AND status = ANY(:allowed) AND pending_deps = 0
  AND EXISTS (SELECT 1 FROM projects p WHERE p.id = tasks.project_id AND p.status = :running)
RETURNING project_id, attempts

-- name: start_task_noted
-- PostgreSQL only: start_task and its `task` event in one statement (one round trip, one
-- commit, the same atomicity as both in one transaction).
WITH started AS (
    UPDATE tasks
    SET status = :to_status, attempts = attempts + 1, worker = :worker, started_at = :now,
        error = NULL, lease_until = :lease_until, parked = NULL, detached = false
    WHERE id = :id AND status = ANY(:allowed) AND pending_deps = 0
      AND EXISTS (SELECT 1 FROM projects p WHERE p.id = tasks.project_id
                                             AND p.status = :running)
    RETURNING project_id, attempts),
noted AS (
    INSERT INTO events (project_id, task_id, kind, from_status, to_status, detail, at)
    SELECT project_id, CAST(:id AS text), 'task', CAST(:from_status AS text),
           CAST(:to_status AS text), CAST(:worker AS text) || ', attempt ' || attempts, :now
    FROM started)
SELECT project_id, attempts FROM started

-- name: finish_attempt
-- Every write of an attempt is fenced: accepted only while its token is current.
UPDATE tasks
SET status = :to_status, output = COALESCE(:output, output), error = :error,
    finished_at = :finished_at, lease_until = NULL, ready_at = :ready_at, parked = NULL,
    draft = NULL
WHERE id = :id AND attempts = :attempt AND status = ANY(:held)
RETURNING project_id, idx, title, agent_type, detached

-- name: renew_task_lease
-- A parked task has no lease to renew (its wait is not an attempt's to lose).
UPDATE tasks SET lease_until = :lease_until
WHERE id = :id AND attempts = :attempt AND status = ANY(:held) AND lease_until IS NOT NULL
RETURNING id

-- name: count_model_call
-- One more model call for this attempt, within the task's cap over all its attempts.
UPDATE tasks SET model_calls = model_calls + 1
WHERE id = :id AND attempts = :attempt AND status = ANY(:held) AND model_calls < :cap
RETURNING model_calls

-- name: admit_model_call
-- count_model_call and within_budget in one statement (one round trip per model call): the
-- call is counted only while the project's budget has room, the project is not cancelled,
-- and the task's cap is not reached.
UPDATE tasks SET model_calls = model_calls + 1
WHERE id = :id AND attempts = :attempt AND status = ANY(:held) AND model_calls < :cap
  AND EXISTS (SELECT 1 FROM projects WHERE id = :project_id AND status <> :cancelled
              AND (budget_tokens IS NULL OR tokens_used < budget_tokens))
RETURNING model_calls

-- name: holds_task
SELECT model_calls FROM tasks WHERE id = :id AND attempts = :attempt AND status = ANY(:held)

-- name: expire_task_leases
-- Attempts that stopped renewing (their worker died or lost the store): ready to run again.
UPDATE tasks SET status = :to_status, lease_until = NULL, sent_epoch = NULL, ready_at = :now,
    parked = NULL
WHERE status = ANY(:held) AND lease_until < :now
  AND project_id IN (SELECT id FROM projects WHERE status = :running)
RETURNING id, project_id, idx, attempts

-- name: lost_tasks
-- Ready tasks of running projects whose message the broker no longer holds (or never got).
SELECT t.id, t.project_id FROM tasks t JOIN projects p ON p.id = t.project_id
WHERE p.status = :running AND t.status = :pending
  AND (t.sent_epoch IS NULL OR t.sent_epoch <> :epoch) AND t.ready_at < :settled

-- name: long_ready_tasks
-- Ready for long without a claim: a message lost some other way (a chain whose next link was
-- never published), or a long queue; the reconciler checks the queue before re-sending.
SELECT t.id, t.project_id, t.agent_type FROM tasks t JOIN projects p ON p.id = t.project_id
WHERE p.status = :running AND t.status = :pending AND t.ready_at < :before

-- name: touch_ready
UPDATE tasks SET ready_at = :now WHERE id = ANY(:ids)

-- name: descendants
WITH RECURSIVE down(id) AS (
    SELECT task_id FROM task_edges WHERE depends_on = :id
    UNION SELECT e.task_id FROM task_edges e JOIN down d ON e.depends_on = d.id)
SELECT id FROM down

-- name: mark_waiting_on
-- The descendants of a failed task wait on it: blocked, with the reason.
UPDATE tasks SET error = :error
WHERE status = :blocked AND id IN (
    WITH RECURSIVE down(id) AS (
        SELECT task_id FROM task_edges WHERE depends_on = :id
        UNION SELECT e.task_id FROM task_edges e JOIN down d ON e.depends_on = d.id)
    SELECT id FROM down)
RETURNING id

-- name: clear_waiting_errors
UPDATE tasks SET error = NULL
WHERE project_id = :project_id AND status = :blocked AND error IS NOT NULL

-- name: failed_tasks
SELECT id, idx, title, error FROM tasks WHERE project_id = :project_id AND status = :failed
ORDER BY idx

-- name: transition_task
UPDATE tasks SET status = :to_status, lease_until = NULL, ready_at = :ready_at
WHERE id = :id AND status = ANY(:allowed)
RETURNING project_id

-- name: transition_project_tasks
UPDATE tasks SET status = :to_status, lease_until = NULL, error = NULL
WHERE project_id = :project_id AND status = ANY(:allowed)
RETURNING id

-- name: cancel_idle_held_tasks
-- At a cancel, the held tasks that no attempt is running (parked for a question, a review or a
-- batch, or waiting for their next message) end now; a running one stops at its next model
-- call (the runtime's admission refuses it).
UPDATE tasks SET status = :to_status, parked = NULL, error = :error, finished_at = :now
WHERE project_id = :project_id AND status = ANY(:held) AND lease_until IS NULL
RETURNING id

-- name: cancel_expired_tasks
-- Attempts of a cancelled project whose lease ran out (their worker died after the cancel):
-- not run again, cancelled.
UPDATE tasks SET status = :to_status, lease_until = NULL, parked = NULL, error = :error,
    finished_at = :now
WHERE status = ANY(:held) AND lease_until < :now
  AND project_id IN (SELECT id FROM projects WHERE status = :cancelled)
RETURNING id, project_id

-- name: ready_dependents
SELECT t.id FROM tasks t JOIN task_edges e ON e.task_id = t.id
WHERE e.depends_on = :id AND t.status = :pending

-- name: count_down_dependents
UPDATE tasks SET pending_deps = pending_deps - 1
WHERE id IN (SELECT task_id FROM task_edges WHERE depends_on = :id)
RETURNING id, pending_deps

-- name: release_dependents
-- After count_down_dependents, in its transaction (it sees the count-down): the dependents it
-- left with nothing pending move, as transition_task would move each.
UPDATE tasks SET status = :to_status, lease_until = NULL, ready_at = :ready_at
WHERE id IN (SELECT task_id FROM task_edges WHERE depends_on = :id)
  AND pending_deps = 0 AND status = ANY(:allowed)
RETURNING id, project_id, unit

-- name: insert_event
INSERT INTO events (project_id, task_id, kind, from_status, to_status, detail, at)
VALUES (:project_id, :task_id, :kind, :from_status, :to_status, :detail, :now)

-- name: project_events
SELECT * FROM events WHERE project_id = :project_id ORDER BY id

-- name: insert_usage
INSERT INTO usage (project_id, task_id, role, model, input_tokens, output_tokens,
                   cache_read_tokens, cache_write_tokens, thinking_tokens,
                   cache_write_1h_tokens, cost_usd, latency_ms, attempt, at, request_id,
                   message_id, stop_reason, outcome, batch)
VALUES (:project_id, :task_id, :role, :model, :input_tokens, :output_tokens,
        :cache_read_tokens, :cache_write_tokens, :thinking_tokens, :cache_write_1h_tokens,
        :cost_usd, :latency_ms, :attempt, :now, :request_id, :message_id, :stop_reason,
        :outcome, :batch)

-- name: insert_attempt_usage
-- A ledger row of a task's attempt. The money was spent either way, so the row is kept, but
-- the row of an attempt that no longer holds its task is `stale`: not the task's usage.
INSERT INTO usage (project_id, task_id, role, model, input_tokens, output_tokens,
                   cache_read_tokens, cache_write_tokens, thinking_tokens,
                   cache_write_1h_tokens, cost_usd, latency_ms, attempt, at, request_id,
                   message_id, stop_reason, outcome, batch, stale)
SELECT :project_id, :task_id, :role, :model, :input_tokens, :output_tokens,
       :cache_read_tokens, :cache_write_tokens, :thinking_tokens, :cache_write_1h_tokens,
       :cost_usd, :latency_ms, :attempt, :now, :request_id, :message_id, :stop_reason,
       :outcome, :batch, NOT EXISTS (SELECT 1 FROM tasks WHERE id = :task_id AND attempts = :holder
                                         AND status = ANY(:held))
RETURNING stale

-- name: record_attempt_usage
-- PostgreSQL only: insert_attempt_usage and add_tokens_used in one statement (one round trip,
-- one commit, the same atomicity as both in one transaction).
WITH ledger AS (
-- include: insert_attempt_usage
),
spent AS (
-- include: add_tokens_used
)
SELECT stale FROM ledger

-- name: project_calls
-- A project's ledger rows in time order (the time each call was recorded), each with the
-- task it served.
SELECT u.at, u.task_id, t.idx AS task_index, t.title AS task_title, u.role, u.model,
       u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens,
       u.thinking_tokens, u.cache_write_1h_tokens, u.cost_usd, u.latency_ms, u.attempt,
       u.request_id, u.message_id, u.stop_reason, u.outcome, u.batch, u.stale
FROM usage u LEFT JOIN tasks t ON t.id = u.task_id
WHERE u.project_id = :project_id ORDER BY u.at, u.id

-- name: try_reconciler_lock
-- PostgreSQL only: one reconciler pass at a time across every machine. Held by a transaction
-- open for the pass (a pooler in transaction mode keeps its server connection bound to it;
-- a session lock would stay on a server connection the pooler hands to someone else).
SELECT pg_try_advisory_xact_lock(:key) AS locked

-- name: usage_by_task
SELECT task_id, SUM(input_tokens) AS input, SUM(output_tokens) AS output,
       SUM(cache_read_tokens) AS cache_read, SUM(cache_write_tokens) AS cache_write,
       SUM(thinking_tokens) AS thinking, SUM(cache_write_1h_tokens) AS cache_write_1h,
       SUM(cost_usd) AS cost_usd
FROM usage WHERE project_id = :project_id AND NOT stale GROUP BY task_id

-- name: usage_by_project
SELECT project_id, SUM(input_tokens) AS input, SUM(output_tokens) AS output,
       SUM(cache_read_tokens) AS cache_read, SUM(cache_write_tokens) AS cache_write,
       SUM(thinking_tokens) AS thinking, SUM(cache_write_1h_tokens) AS cache_write_1h,
       SUM(cost_usd) AS cost_usd
FROM usage WHERE project_id = ANY(:ids) GROUP BY project_id

-- name: set_project_deliverable
-- Fenced: only the integration attempt that holds the project saves its deliverable.
UPDATE projects SET deliverable = :deliverable, updated_at = :now
WHERE id = :id AND attempts = :attempt AND status = :status
RETURNING id

-- name: recent_spend
-- The latest completed projects: their tasks' estimates and what everything after planning
-- spent (budgeted: a cache read counts a tenth), the calibration of a new plan's budget.
SELECT p.id,
       (SELECT COALESCE(SUM(t.estimated_tokens), 0) FROM tasks t
        WHERE t.project_id = p.id) AS estimated,
       (SELECT COALESCE(SUM(u.input_tokens + u.output_tokens + u.cache_write_tokens
                            + (u.cache_read_tokens + 9) / 10), 0) FROM usage u
        WHERE u.project_id = p.id AND u.role NOT IN ('analyze', 'decompose')) AS spent
FROM (SELECT id, updated_at FROM projects WHERE status = :completed
      ORDER BY updated_at DESC LIMIT :limit) p
ORDER BY p.updated_at DESC

-- name: calls_since_cancel
-- A cancelled project's ledger rows recorded after its cancel (calls that were in flight).
SELECT COUNT(*) AS n FROM usage
WHERE project_id = :project_id AND (CAST(:task_id AS text) IS NULL OR task_id = :task_id)
  AND at >= (SELECT MAX(at) FROM events WHERE project_id = :project_id
             AND to_status = :cancelled AND task_id IS NULL)

-- name: within_budget
SELECT tokens_used, budget_tokens FROM projects
WHERE id = :id AND (budget_tokens IS NULL OR tokens_used < budget_tokens)

-- name: add_tokens_used
UPDATE projects SET tokens_used = tokens_used + :tokens WHERE id = :id

-- name: grow_budget
UPDATE projects SET budget_tokens = budget_tokens + :tokens, updated_at = :now
WHERE id = :id AND budget_tokens IS NOT NULL
RETURNING budget_tokens

-- name: unwritten_projects
-- Projects integrated whose output folder could not be written (needs_attention with a
-- stored deliverable): the reconciler writes them out once there is room.
SELECT id FROM projects WHERE status = :needs_attention AND deliverable IS NOT NULL

-- name: set_unwritten_error
UPDATE projects SET error = :error, updated_at = :now
WHERE id = :id AND status = :needs_attention

-- name: set_output_dir
UPDATE projects SET output_dir = :output_dir, updated_at = :now WHERE id = :id

-- name: set_budget
-- A person's budget (`resume --budget`): it stands from now on, whatever the plan.
UPDATE projects SET budget_tokens = :budget_tokens, budget_explicit = :explicit,
    updated_at = :now WHERE id = :id

-- name: task_events
SELECT task_id, kind, detail, at FROM events
WHERE project_id = :project_id AND kind = ANY(:kinds) ORDER BY id

-- name: count_project_tasks
SELECT COUNT(*) AS tasks FROM tasks WHERE project_id = :project_id

-- name: project_progress
SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN status = :completed THEN 1 ELSE 0 END), 0)
       AS done
FROM tasks WHERE project_id = :project_id

-- name: revive_tasks
-- Failed tasks of a project (or one of them) run again with a fresh model-call allowance.
-- A task that failed for good starts a new conversation (its journal is not replayed).
UPDATE tasks SET status = :to_status, error = NULL, model_calls = 0, lease_until = NULL,
    sent_epoch = NULL, ready_at = :now, conversation_from = attempts + 1, parked = NULL,
    draft = NULL
WHERE project_id = :project_id AND status = :from_status AND (CAST(:id AS text) IS NULL OR id = :id)
RETURNING id

-- name: lifecycle_moves
-- The moves the database's triggers let through (a test checks them against the lifecycle table).
SELECT entity, source, target FROM lifecycle_moves

-- name: database_time
SELECT CURRENT_TIMESTAMP AS now

-- Reviews ---------------------------------------------------------------------------------

-- name: move_held_task
-- An attempt moves its own task between in_progress and review (fenced by its token).
UPDATE tasks SET status = :to_status
WHERE id = :id AND attempts = :attempt AND status = ANY(:held)
RETURNING project_id

-- name: insert_review
-- Fenced: the verdict of an attempt that no longer holds its task is not recorded.
INSERT INTO reviews (project_id, task_id, attempt, round, reviewer, verdict, notes, summary, at,
                     worker, checks)
SELECT :project_id, :task_id, :attempt, :round, :reviewer, :verdict, :notes, :summary, :now,
       :worker, :checks
WHERE EXISTS (SELECT 1 FROM tasks WHERE id = :task_id AND attempts = :attempt
                                    AND status = ANY(:held))
RETURNING id

-- name: project_reviews
SELECT task_id, attempt, round, reviewer, verdict, notes, summary, at, worker, checks
FROM reviews WHERE project_id = :project_id ORDER BY id

-- name: upsert_screenshot
INSERT INTO screenshots (project_id, path, task_id, png, at)
VALUES (:project_id, :path, :task_id, :png, :now)
ON CONFLICT (project_id, path) DO UPDATE
SET task_id = excluded.task_id, png = excluded.png, at = excluded.at

-- name: project_screenshots
SELECT path, task_id, png FROM screenshots WHERE project_id = :project_id ORDER BY path

-- Knowledge base -------------------------------------------------------------------------------

-- name: upsert_knowledge
-- One row per (project, kind, ref): indexing the same thing again replaces its text.
INSERT INTO knowledge (project_id, kind, ref, source, title, body, at)
VALUES (:project_id, :kind, :ref, :source, :title, :body, :now)
ON CONFLICT (project_id, kind, ref) DO UPDATE
SET source = excluded.source, title = excluded.title, body = excluded.body, at = excluded.at

-- name: search_knowledge_postgresql
-- :query is a tsquery the code builds from plain words joined by `|`, never the user's syntax.
-- Headlines are costly on long bodies: only the rows that make the cut get one.
SELECT source, kind, ref, title, rank,
       ts_headline('english', body, to_tsquery('english', :query),
                   'StartSel=**, StopSel=**, MaxFragments=2, MaxWords=24, MinWords=8') AS snippet
FROM (SELECT source, kind, ref, title, body, id, ts_rank_cd(tsv, found) AS rank
      FROM knowledge, to_tsquery('english', :query) AS found
      WHERE project_id = :project_id AND tsv @@ found
      ORDER BY rank DESC, id LIMIT :limit) AS hits
ORDER BY rank DESC, id

-- name: search_knowledge_sqlite
-- :query is an FTS5 query the code builds from quoted words joined by OR, never the user's
-- syntax. bm25 is smaller for better matches; title words weigh more, as in PostgreSQL.
SELECT k.source, k.kind, k.ref, k.title, -bm25(knowledge_fts, 4.0, 1.0) AS rank,
       snippet(knowledge_fts, -1, '**', '**', ' … ', 24) AS snippet
FROM knowledge_fts JOIN knowledge AS k ON k.id = knowledge_fts.rowid
WHERE knowledge_fts MATCH :query AND k.project_id = :project_id
ORDER BY bm25(knowledge_fts, 4.0, 1.0), k.id LIMIT :limit

-- Statistics (`agency stats`, `agency metrics`) ------------------------------------------------
-- :project_id NULL means every project. Durations are computed in Python: SQLite keeps times
-- as ISO text.

-- name: stats_tasks
SELECT id, project_id, idx, title, agent_type, status, attempts, queued_at, started_at,
       finished_at
FROM tasks WHERE CAST(:project_id AS text) IS NULL OR project_id = :project_id

-- name: stats_edges
SELECT e.task_id, e.depends_on FROM task_edges e JOIN tasks t ON t.id = e.task_id
WHERE CAST(:project_id AS text) IS NULL OR t.project_id = :project_id

-- name: stats_usage
-- Every ledger row counts (spent is spent, a fenced-out attempt's too); calls without a task
-- (analysis, decomposition, integration) have no agent type.
SELECT t.agent_type, u.role, u.model, COUNT(*) AS calls, SUM(u.input_tokens) AS input,
       SUM(u.output_tokens) AS output, SUM(u.cache_read_tokens) AS cache_read,
       SUM(u.cache_write_tokens) AS cache_write, SUM(u.thinking_tokens) AS thinking,
       SUM(u.cache_write_1h_tokens) AS cache_write_1h, SUM(u.cost_usd) AS cost_usd
FROM usage u LEFT JOIN tasks t ON t.id = u.task_id
WHERE CAST(:project_id AS text) IS NULL OR u.project_id = :project_id
GROUP BY t.agent_type, u.role, u.model

-- name: stats_events
-- Events of some kinds (retries), counted per agent type (none: the project's own calls).
SELECT t.agent_type, COUNT(*) AS n FROM events e LEFT JOIN tasks t ON t.id = e.task_id
WHERE e.kind = ANY(:kinds) AND (CAST(:project_id AS text) IS NULL OR e.project_id = :project_id)
GROUP BY t.agent_type

-- name: stats_reviews
SELECT t.agent_type, r.verdict, COUNT(*) AS n FROM reviews r JOIN tasks t ON t.id = r.task_id
WHERE CAST(:project_id AS text) IS NULL OR r.project_id = :project_id
GROUP BY t.agent_type, r.verdict

-- name: stats_checks
-- Every round's checks (a JSON list per review), with the agent type of the task checked.
SELECT t.agent_type, r.checks FROM reviews r JOIN tasks t ON t.id = r.task_id
WHERE CAST(:project_id AS text) IS NULL OR r.project_id = :project_id

-- name: stats_project_statuses
SELECT status, COUNT(*) AS n FROM projects GROUP BY status

-- name: stats_task_statuses
SELECT agent_type, status, COUNT(*) AS n FROM tasks GROUP BY agent_type, status

-- Questions -------------------------------------------------------------------------------------

-- name: insert_question
-- Fenced: only the attempt that holds its task may ask.
INSERT INTO questions (project_id, task_id, attempt, question, assumption, status, asked_at,
                       tool_use_id, expires_at)
SELECT :project_id, :task_id, :attempt, :question, :assumption, 'open', :now, :tool_use_id,
       :expires_at
WHERE EXISTS (SELECT 1 FROM tasks WHERE id = :task_id AND attempts = :attempt
                                    AND status = ANY(:held))
RETURNING id

-- name: get_question
SELECT * FROM questions WHERE id = :id

-- name: answer_question
UPDATE questions SET status = 'answered', answer = :answer, answered_by = :by,
    answered_at = :now
WHERE task_id = :task_id AND status = 'open'
  AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = questions.task_id
                                      AND t.status = 'needs_input'
                                      AND t.attempts = questions.attempt)
RETURNING id, project_id, question, attempt

-- name: expire_question
UPDATE questions SET status = 'expired', answered_at = :now
WHERE id = :id AND status = 'open'
RETURNING id

-- name: open_questions
SELECT q.id, q.project_id, q.task_id, q.question, q.assumption, q.asked_at, t.idx, t.title
FROM questions q JOIN tasks t ON t.id = q.task_id
WHERE q.status = 'open' AND t.status = 'needs_input' AND t.attempts = q.attempt
  AND (CAST(:project_id AS text) IS NULL OR q.project_id = CAST(:project_id AS text))
ORDER BY q.id

-- name: record_attempt_turn
-- PostgreSQL only: a task attempt's ledger row, the project's total and the turn's journal row
-- in one statement; the journal keeps the turn only while the attempt holds its task.
WITH ledger AS (
-- include: insert_attempt_usage
),
spent AS (
-- include: add_tokens_used
),
turn AS (
    INSERT INTO journal (project_id, task_id, conv, seq, kind, attempt, digest, sent, body,
                         bytes, at)
    SELECT :project_id, :task_id, :conv, :seq, 'turn', :holder, :digest, :sent, :body,
           :bytes, :now
    FROM ledger WHERE NOT ledger.stale
    ON CONFLICT (conv, seq) DO NOTHING
)
SELECT stale FROM ledger

-- name: insert_journal
-- A journal row; a row already at (conv, seq) wins (a duplicate attempt wrote it first).
INSERT INTO journal (project_id, task_id, conv, seq, kind, attempt, digest, sent, body, bytes,
                     at)
VALUES (:project_id, :task_id, :conv, :seq, :kind, :attempt, :digest, :sent, :body, :bytes,
        :now)
ON CONFLICT (conv, seq) DO NOTHING

-- name: journal_rows
SELECT seq, kind, digest, body, attempt FROM journal WHERE conv = :conv ORDER BY seq

-- name: task_journal_rows
-- journal_rows of a task's conversation named :before, its current run, :after.
SELECT seq, kind, digest, body, attempt FROM journal
WHERE conv = :before || (SELECT CAST(conversation_from AS TEXT) FROM tasks WHERE id = :id)
             || :after
ORDER BY seq

-- name: drop_journal_from
-- A conversation that diverged from its journal: the rows from there on describe another one.
DELETE FROM journal WHERE conv = :conv AND seq >= :seq

-- name: journal_size
SELECT COUNT(*) AS rows, COALESCE(SUM(bytes), 0) AS bytes,
       COUNT(DISTINCT conv) AS conversations,
       COALESCE(SUM(CASE WHEN compacted THEN 1 ELSE 0 END), 0) AS compacted_rows,
       COUNT(DISTINCT CASE WHEN compacted THEN conv END) AS compacted_conversations
FROM journal

-- name: compact_journal
-- Retention: the journal of a project that ended (:ended) before :before keeps each
-- conversation's last answered turn (what it concluded) and drops what was sent and answered
-- on the way there; such a project never runs again, so nothing will replay it.
UPDATE journal SET sent = NULL, body = NULL, compacted = true, bytes = 0
WHERE NOT compacted
  AND project_id IN (SELECT p.id FROM projects p
                     WHERE p.status = ANY(:ended) AND p.finished_at < :before)
  AND seq <> COALESCE((SELECT MAX(last.seq) FROM journal last
                       WHERE last.conv = journal.conv AND last.kind = 'turn'), -1)

-- name: park_task
-- The attempt's task waits for something outside it (`parked` says what): no lease, no
-- thread; the canvas that sent it goes no further (`detached`). Fenced by its token.
UPDATE tasks SET status = :to_status, parked = :parked, lease_until = NULL,
    draft = COALESCE(:draft, draft), detached = true, sent_epoch = NULL, ready_at = :now
WHERE id = :id AND attempts = :attempt AND status = ANY(:held)
RETURNING project_id

-- name: take_review
-- A reviewer takes the task's review round: the wait becomes a lease of the reviewer's.
UPDATE tasks SET parked = NULL, lease_until = :lease_until
-- A paused project's started work finishes: its reviews and resumed tasks go on.
WHERE id = :id AND status = :review AND parked = :parked
  AND EXISTS (SELECT 1 FROM projects p WHERE p.id = tasks.project_id
                                         AND p.status = ANY(:running))
RETURNING project_id, attempts, draft, conversation_from

-- name: wake_task
-- The wait is over: the task's agent is due again (its next message resumes it).
UPDATE tasks SET parked = NULL, lease_until = NULL, sent_epoch = NULL, ready_at = :now
WHERE id = :id AND attempts = :attempt AND status = ANY(:held)
RETURNING project_id

-- name: resume_task
-- A woken task's agent takes it back, as the same attempt (its journal holds its work).
UPDATE tasks SET status = :to_status, worker = :worker, lease_until = :lease_until
WHERE id = :id AND status = ANY(:held) AND parked IS NULL AND lease_until IS NULL
  AND EXISTS (SELECT 1 FROM projects p WHERE p.id = tasks.project_id
                                         AND p.status = ANY(:running))
RETURNING project_id, attempts

-- name: parked_unsent
-- Parked or woken tasks of running projects whose next message (a review, or the agent's
-- own) no message of the broker's epoch carries.
SELECT t.id, t.project_id, t.parked FROM tasks t JOIN projects p ON p.id = t.project_id
WHERE p.status = :running AND t.status = ANY(:held) AND t.lease_until IS NULL
  AND (t.parked IS NULL OR t.parked LIKE 'review:%')
  AND (t.sent_epoch IS NULL OR t.sent_epoch <> :epoch) AND t.ready_at < :settled

-- name: due_questions
SELECT id, project_id, task_id, attempt FROM questions
WHERE status = 'open' AND expires_at < :now

-- name: question_for_use
SELECT * FROM questions WHERE task_id = :task_id AND tool_use_id = :tool_use_id
ORDER BY id DESC LIMIT 1

-- name: rebind_question
UPDATE questions SET attempt = :attempt WHERE id = :id

-- name: insert_batch_call
INSERT INTO batch_calls (batch_id, custom_id, project_id, task_id, attempt, conv, seq, digest,
                         sent, role, model, submitted_at)
VALUES (:batch_id, :custom_id, :project_id, :task_id, :attempt, :conv, :seq, :digest, :sent,
        :role, :model, :now)

-- name: batch_call
SELECT * FROM batch_calls WHERE conv = :conv AND seq = :seq

-- name: open_batch_calls
SELECT * FROM batch_calls WHERE collected_at IS NULL AND submitted_at < :before ORDER BY id

-- name: finish_batch_call
UPDATE batch_calls SET collected_at = :now WHERE id = :id AND collected_at IS NULL
RETURNING id

-- name: rebind_batch_call
UPDATE batch_calls SET attempt = :attempt WHERE id = :id
