-- Which compiled policy (its content hash) and which of its rules decided each request.
ALTER TABLE request_logs ADD COLUMN policy_hash TEXT;
ALTER TABLE request_logs ADD COLUMN rule_id TEXT;
