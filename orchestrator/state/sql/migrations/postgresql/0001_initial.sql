-- Projects, tasks, their edges, the event history and the usage ledger.
CREATE TABLE projects (
    id            text PRIMARY KEY,
    request       text NOT NULL,
    project_type  text,
    complexity    text,
    status        text NOT NULL,
    budget_tokens bigint,
    analysis      text,
    plan          text,
    output_dir    text NOT NULL,
    error         text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    finished_at   timestamptz
);

CREATE TABLE tasks (
    id                  text PRIMARY KEY,
    project_id          text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    idx                 integer NOT NULL,
    title               text NOT NULL,
    description         text NOT NULL,
    agent_type          text NOT NULL,
    priority            text NOT NULL,
    estimated_tokens    integer NOT NULL,
    deliverables        text NOT NULL,
    acceptance_criteria text NOT NULL,
    on_critical_path    boolean NOT NULL,
    status              text NOT NULL,
    attempts            integer NOT NULL DEFAULT 0,
    pending_deps        integer NOT NULL,
    worker              text,
    output              text,
    error               text,
    queued_at           timestamptz,
    started_at          timestamptz,
    finished_at         timestamptz,
    UNIQUE (project_id, idx)
);
CREATE INDEX tasks_project_idx ON tasks (project_id);

CREATE TABLE task_edges (
    task_id    text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    depends_on text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, depends_on)
);
CREATE INDEX task_edges_depends_on_idx ON task_edges (depends_on);

CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    project_id  text NOT NULL,
    task_id     text,
    kind        text NOT NULL,
    from_status text,
    to_status   text,
    detail      text,
    at          timestamptz NOT NULL
);
CREATE INDEX events_project_idx ON events (project_id, id);

CREATE TABLE usage (
    id                 bigserial PRIMARY KEY,
    project_id         text NOT NULL,
    task_id            text,
    role               text NOT NULL,
    model              text NOT NULL,
    input_tokens       bigint NOT NULL,
    output_tokens      bigint NOT NULL,
    cache_read_tokens  bigint NOT NULL,
    cache_write_tokens bigint NOT NULL,
    cost_usd           double precision NOT NULL,
    latency_ms         integer NOT NULL,
    attempt            integer NOT NULL,
    at                 timestamptz NOT NULL
);
CREATE INDEX usage_project_idx ON usage (project_id);
