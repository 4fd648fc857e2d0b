-- Durable agent work. The journal keeps every conversation's turns as they were answered (the
-- response as returned, thinking blocks and signatures included, with the digest of the request
-- that got it) and every round of tool results, each row holding only what is new since the
-- row before, so a conversation's journal grows linearly with its turns. A new attempt replays
-- it and pays only for what was never answered. `conv` names one conversation: a task's agent,
-- one of its review rounds, or a project's planning or integration step.
CREATE TABLE journal (
    id         bigserial PRIMARY KEY,
    project_id text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    task_id    text REFERENCES tasks (id) ON DELETE CASCADE,
    conv       text NOT NULL,
    seq        integer NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('turn', 'tools')),
    attempt    integer,
    digest     text,
    sent       text,
    body       text,
    bytes      integer NOT NULL,
    compacted  boolean NOT NULL DEFAULT false,
    at         timestamptz NOT NULL,
    UNIQUE (conv, seq)
);
CREATE INDEX journal_project_idx ON journal (project_id);

-- A parked task waits for something outside it without holding a thread or a lease:
-- `parked` says what ('question', 'review': a reviewer's turn, 'batch'); NULL with no lease on
-- a task in review or needs_input: the wait ended and its agent's next message is due.
-- `draft` is the output (and the agent's notes) under review. `detached`: the task parked, so
-- the canvas that sent it goes no further; what its completion releases is sent by the store.
-- `conversation_from`: the first attempt of the task's current conversation (a retry of a
-- task that failed for good starts a new one).
ALTER TABLE tasks ADD COLUMN parked text;
ALTER TABLE tasks ADD COLUMN draft text;
ALTER TABLE tasks ADD COLUMN detached boolean NOT NULL DEFAULT false;
ALTER TABLE tasks ADD COLUMN conversation_from integer NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN conversation_from integer NOT NULL DEFAULT 0;
-- A question belongs to the tool call that asked it (asking is idempotent by it), and expires.
ALTER TABLE questions ADD COLUMN tool_use_id text;
ALTER TABLE questions ADD COLUMN expires_at timestamptz;
-- The worker that ran a review (reviews are their own messages, on the reviewer's queue).
ALTER TABLE reviews ADD COLUMN worker text;

-- Economy mode (`agency run --economy`): its agents' turns with slack go through the Message
-- Batches API at half price.
ALTER TABLE projects ADD COLUMN economy boolean NOT NULL DEFAULT false;

-- Turns sent through the Message Batches API (economy mode), until their results are in.
CREATE TABLE batch_calls (
    id           bigserial PRIMARY KEY,
    batch_id     text NOT NULL,
    custom_id    text NOT NULL,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    task_id      text REFERENCES tasks (id) ON DELETE CASCADE,
    attempt      integer,
    conv         text NOT NULL,
    seq          integer NOT NULL,
    digest       text NOT NULL,
    sent         text,
    role         text NOT NULL,
    model        text NOT NULL,
    submitted_at timestamptz NOT NULL,
    collected_at timestamptz,
    UNIQUE (conv, seq)
);
-- Open until `collected_at` is set (the batch's result is in, or it gave none).
CREATE INDEX batch_calls_open_idx ON batch_calls (collected_at, batch_id);
