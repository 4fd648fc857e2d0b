-- An agent's question to a person (the `ask_person` tool): its task waits in needs_input
-- until `agency answer` or, after AGENCY_QUESTION_TIMEOUT, goes on on the stated assumption.
CREATE TABLE questions (
    id          integer PRIMARY KEY AUTOINCREMENT,
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    task_id     text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    question    text NOT NULL,
    assumption  text NOT NULL,
    status      text NOT NULL,
    answer      text,
    answered_by text,
    asked_at    text NOT NULL,
    answered_at text
);
CREATE INDEX questions_open_idx ON questions (status, project_id);
CREATE INDEX questions_task_idx ON questions (task_id, id);
