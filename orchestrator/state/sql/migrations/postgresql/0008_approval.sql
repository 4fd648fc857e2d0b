-- A project that waits for a person's approval after planning (`agency run --approve-plan`, or
-- an estimate above AGENCY_APPROVAL_ABOVE_USD) before any task starts.
ALTER TABLE projects ADD COLUMN needs_approval boolean NOT NULL DEFAULT false;
