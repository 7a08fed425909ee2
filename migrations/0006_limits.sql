-- Limits and budgets (src/core/src/limits.rs). A request refused by one says which: `key:requests_per_minute`,
-- `team:budget_day`, ... (NULL when no limit refused it).
ALTER TABLE request_logs ADD COLUMN limited_by TEXT;
-- A team's spend is summed from its rows when the native host first needs it after a restart.
CREATE INDEX IF NOT EXISTS request_logs_team_ts ON request_logs (team, ts_ms);

-- When a key record last changed: the native host looks for changes made by another process (`gateway keys`).
ALTER TABLE api_keys ADD COLUMN updated_at_ms INTEGER NOT NULL DEFAULT 0;

-- Teams by name: limits and an allow-list shared by their keys (the Worker keeps them in KV `team/<name>`, with
-- this table as the index the key admin API lists).
CREATE TABLE IF NOT EXISTS teams (
  name          TEXT PRIMARY KEY,
  record        TEXT NOT NULL,                   -- the TeamRecord as JSON
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL DEFAULT 0
);
