-- The payload archive (src/core/src/archive.rs): the key of the request's archived bodies, `YYYY-MM-DD/<id>.json`
-- (the day the retention ends; R2 on Workers, a directory natively); NULL when they were not archived.
ALTER TABLE request_logs ADD COLUMN archive TEXT;
