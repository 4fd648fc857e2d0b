-- A call answered through the Message Batches API (half price) says so in its ledger row
-- (0 or 1).
ALTER TABLE usage ADD COLUMN batch integer NOT NULL DEFAULT 0 CHECK (batch IN (0, 1));
