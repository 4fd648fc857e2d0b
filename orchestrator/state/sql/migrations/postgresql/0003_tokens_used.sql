-- Tokens spent so far, kept beside the budget: admission is one comparison on one row, and
-- each ledger row adds to it in the same transaction.
ALTER TABLE projects ADD COLUMN tokens_used bigint NOT NULL DEFAULT 0;
