-- Every upstream attempt of a request (JSON: provider, model, status, ms, error class) and the request
-- attributes the policy decided on (JSON, never prompt text). Health snapshots are aggregated from attempt_log.
ALTER TABLE request_logs ADD COLUMN attempt_log TEXT;
ALTER TABLE request_logs ADD COLUMN decision_attrs TEXT;
