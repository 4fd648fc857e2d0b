-- Which launch unit a task belongs to: 'root' (sent at dispatch) or its unit head's id (sent by
-- the store when the head's last dependency completes).
ALTER TABLE tasks ADD COLUMN unit text;
