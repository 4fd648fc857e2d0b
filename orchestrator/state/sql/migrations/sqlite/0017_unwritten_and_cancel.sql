-- The lifecycle's new moves (orchestrator/domain/lifecycle.py): a project integrated whose
-- output folder could not be written (a full disk) needs attention until its stored
-- deliverable is written out; a task whose project was cancelled stops before its next model
-- call.
INSERT INTO lifecycle_moves (entity, source, target) VALUES
    ('project', 'integrating', 'needs_attention'),
    ('project', 'needs_attention', 'completed'),
    ('task', 'in_progress', 'cancelled'),
    ('task', 'review', 'cancelled'),
    ('task', 'needs_input', 'cancelled');
