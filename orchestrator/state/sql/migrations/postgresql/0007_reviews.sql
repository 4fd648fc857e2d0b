-- Reviews: a reviewer's verdict on a task's output before its dependents start (pass, or
-- revise with notes per acceptance criterion). `attempt` is the task attempt reviewed.
CREATE TABLE reviews (
    id         bigserial PRIMARY KEY,
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    task_id    text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    attempt    integer NOT NULL,
    round      integer NOT NULL,
    reviewer   text NOT NULL,
    verdict    text NOT NULL,
    notes      text NOT NULL,
    summary    text NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX reviews_project_idx ON reviews (project_id, id);
