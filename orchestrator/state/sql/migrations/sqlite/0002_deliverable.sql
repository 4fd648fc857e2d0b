-- The integrated deliverable, so any machine can write the files from the store.
ALTER TABLE projects ADD COLUMN deliverable text;
