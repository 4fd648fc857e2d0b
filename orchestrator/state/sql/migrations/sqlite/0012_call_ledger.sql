-- Each call's ledger row says which call it was (the API's request id, what support asks for,
-- and the message id), why the answer stopped, the part of its output spent thinking and the
-- part of its cache writes written for an hour (priced apart). `outcome` is 'answered', or
-- 'lost': the call timed out or lost its connection while the model may have been generating,
-- so it may have been billed for tokens nobody knows.
ALTER TABLE usage ADD COLUMN request_id text;
ALTER TABLE usage ADD COLUMN message_id text;
ALTER TABLE usage ADD COLUMN stop_reason text;
ALTER TABLE usage ADD COLUMN thinking_tokens bigint NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN cache_write_1h_tokens bigint NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN outcome text NOT NULL DEFAULT 'answered'
    CHECK (outcome IN ('answered', 'lost'));
