-- The database refuses an illegal status move, as the scheduler does before it asks: the legal
-- moves of orchestrator/domain/lifecycle.py, one row each (a move onto the status a row is in
-- changes nothing and is not checked). tests/integration/test_store.py checks these rows
-- against the table; a change of the table needs a migration that changes them.
CREATE TABLE lifecycle_moves (
    entity text NOT NULL,
    source text NOT NULL,
    target text NOT NULL,
    PRIMARY KEY (entity, source, target)
);
INSERT INTO lifecycle_moves (entity, source, target) VALUES
    ('project', 'planning', 'pending'),
    ('project', 'budget_exhausted', 'pending'),
    ('project', 'failed', 'pending'),
    ('project', 'pending', 'planning'),
    ('project', 'planning', 'running'),
    ('project', 'awaiting_approval', 'running'),
    ('project', 'paused', 'running'),
    ('project', 'budget_exhausted', 'running'),
    ('project', 'failed', 'running'),
    ('project', 'needs_attention', 'running'),
    ('project', 'running', 'paused'),
    ('project', 'running', 'integrating'),
    ('project', 'budget_exhausted', 'integrating'),
    ('project', 'failed', 'integrating'),
    ('project', 'integrating', 'completed'),
    ('project', 'planning', 'failed'),
    ('project', 'integrating', 'failed'),
    ('project', 'pending', 'failed'),
    ('project', 'running', 'failed'),
    ('project', 'pending', 'cancelled'),
    ('project', 'planning', 'cancelled'),
    ('project', 'running', 'cancelled'),
    ('project', 'integrating', 'cancelled'),
    ('project', 'budget_exhausted', 'cancelled'),
    ('project', 'failed', 'cancelled'),
    ('project', 'needs_attention', 'cancelled'),
    ('project', 'awaiting_approval', 'cancelled'),
    ('project', 'paused', 'cancelled'),
    ('project', 'planning', 'awaiting_approval'),
    ('project', 'planning', 'budget_exhausted'),
    ('project', 'integrating', 'budget_exhausted'),
    ('project', 'running', 'budget_exhausted'),
    ('project', 'paused', 'budget_exhausted'),
    ('project', 'running', 'needs_attention'),
    ('project', 'paused', 'needs_attention'),
    ('task', 'blocked', 'pending'),
    ('task', 'failed', 'pending'),
    ('task', 'pending', 'in_progress'),
    ('task', 'in_progress', 'review'),
    ('task', 'review', 'in_progress'),
    ('task', 'in_progress', 'needs_input'),
    ('task', 'needs_input', 'in_progress'),
    ('task', 'review', 'needs_input'),
    ('task', 'needs_input', 'review'),
    ('task', 'in_progress', 'completed'),
    ('task', 'review', 'completed'),
    ('task', 'needs_input', 'completed'),
    ('task', 'in_progress', 'failed'),
    ('task', 'review', 'failed'),
    ('task', 'needs_input', 'failed'),
    ('task', 'in_progress', 'pending'),
    ('task', 'review', 'pending'),
    ('task', 'needs_input', 'pending'),
    ('task', 'pending', 'cancelled'),
    ('task', 'blocked', 'cancelled'),
    ('question', 'open', 'answered'),
    ('question', 'open', 'expired');
CREATE TRIGGER projects_legal_move BEFORE UPDATE OF status ON projects
WHEN old.status <> new.status AND NOT EXISTS (
    SELECT 1 FROM lifecycle_moves
    WHERE entity = 'project' AND source = old.status AND target = new.status)
BEGIN
    SELECT RAISE(ABORT, 'illegal project move');
END;
CREATE TRIGGER tasks_legal_move BEFORE UPDATE OF status ON tasks
WHEN old.status <> new.status AND NOT EXISTS (
    SELECT 1 FROM lifecycle_moves
    WHERE entity = 'task' AND source = old.status AND target = new.status)
BEGIN
    SELECT RAISE(ABORT, 'illegal task move');
END;
CREATE TRIGGER questions_legal_move BEFORE UPDATE OF status ON questions
WHEN old.status <> new.status AND NOT EXISTS (
    SELECT 1 FROM lifecycle_moves
    WHERE entity = 'question' AND source = old.status AND target = new.status)
BEGIN
    SELECT RAISE(ABORT, 'illegal question move');
END;
