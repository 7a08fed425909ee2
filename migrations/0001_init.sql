-- One row per request that reached the gateway (written after the response; never prompt or completion text).
-- Applied by `wrangler d1 migrations apply DB` on Workers and by `gateway migrate` / `gateway serve` natively.
CREATE TABLE IF NOT EXISTS request_logs (
  id                TEXT PRIMARY KEY,            -- request id, also sent as the x-request-id header
  ts_ms             INTEGER NOT NULL,            -- arrival time, Unix milliseconds
  key_id            TEXT,                        -- the API key's id (never the key), NULL when unauthenticated
  method            TEXT NOT NULL,
  path              TEXT NOT NULL,
  endpoint          TEXT,                        -- chat | embeddings | models
  requested_model   TEXT,                        -- `model` as the client sent it
  provider          TEXT,                        -- provider that was asked
  model             TEXT,                        -- the provider's model id
  status            INTEGER NOT NULL,            -- HTTP status; for a stream that failed after its first byte, the error's status; 499 when the client left
  error_code        TEXT,
  stream            INTEGER NOT NULL DEFAULT 0,
  attempts          INTEGER NOT NULL DEFAULT 0,
  latency_ms        REAL NOT NULL,               -- arrival to last byte
  ttft_ms           REAL,                        -- arrival to first streamed byte
  prompt_tokens     INTEGER,
  completion_tokens INTEGER,
  total_tokens      INTEGER,
  cached_tokens     INTEGER,
  reasoning_tokens  INTEGER,
  truncated         INTEGER NOT NULL DEFAULT 0   -- 1: the stream ended without [DONE]
);
CREATE INDEX IF NOT EXISTS request_logs_ts ON request_logs (ts_ms);
CREATE INDEX IF NOT EXISTS request_logs_key_ts ON request_logs (key_id, ts_ms);

-- API keys by SHA-256 of the key. The native host reads keys here; the Worker reads them from KV
-- (`key/<sha256hex>`), where this table can serve as the index for key management.
CREATE TABLE IF NOT EXISTS api_keys (
  key_hash      TEXT PRIMARY KEY,
  id            TEXT NOT NULL UNIQUE,
  name          TEXT NOT NULL,
  record        TEXT NOT NULL,                   -- the KeyRecord as JSON
  created_at_ms INTEGER NOT NULL
);
