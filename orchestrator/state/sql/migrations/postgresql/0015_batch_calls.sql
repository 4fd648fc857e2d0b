-- A call answered through the Message Batches API (half price) says so in its ledger row.
ALTER TABLE usage ADD COLUMN batch boolean NOT NULL DEFAULT false;
