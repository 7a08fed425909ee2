-- The console's log filters read a key's or a team's newest rows first: indexes that end with the id (which
-- begins with the arrival time, so it orders by time and time ranges are id ranges) instead of ts_ms. Reading
-- one team's newest 50 of a million rows no longer sorts all of that team's rows. A key's or team's spend since
-- a day or month began (natively, after a restart) reads the same indexes.
DROP INDEX IF EXISTS request_logs_key_ts;
DROP INDEX IF EXISTS request_logs_team_ts;
CREATE INDEX IF NOT EXISTS request_logs_key_id ON request_logs (key_id, id);
CREATE INDEX IF NOT EXISTS request_logs_team_id ON request_logs (team, id);
