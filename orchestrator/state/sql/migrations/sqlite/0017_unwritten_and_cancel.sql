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

-- Whether the budget is a person's (`--budget`, `resume --budget`): else it is what the plan
-- needs (orchestrator/domain/estimates.py, plan_budget), set once the plan is saved (a
-- provisional one, the complexity's floor, while planning) and again when the plan is edited.
ALTER TABLE projects ADD COLUMN budget_explicit integer NOT NULL DEFAULT 0;
UPDATE projects SET budget_explicit = 1 WHERE budget_tokens IS NOT NULL;
