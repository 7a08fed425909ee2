-- What each request cost, priced with the published price table (policies/prices.toml): in the provider's
-- billing currency and in the reporting currency (REPORTING_CURRENCY), as whole pico-units (10^-12 of the
-- currency) so that sums are exact; whether the usage was estimated (a stream cut before its usage chunk); and
-- the version of the price table used. cost_pico is NULL when the model has no price or nothing was charged.
ALTER TABLE request_logs ADD COLUMN cost_pico INTEGER;
ALTER TABLE request_logs ADD COLUMN cost_currency TEXT;
ALTER TABLE request_logs ADD COLUMN cost_reporting_pico INTEGER;
ALTER TABLE request_logs ADD COLUMN reporting_currency TEXT;
ALTER TABLE request_logs ADD COLUMN cost_estimated INTEGER;
ALTER TABLE request_logs ADD COLUMN price_version TEXT;
-- The key's team when the request was made (a key can change teams later).
ALTER TABLE request_logs ADD COLUMN team TEXT;

-- Sums of request_logs per hour and per day × key × team × provider × model × rule, kept up to date as rows are
-- written (src/core/src/rollup.rs), so that usage reports never scan the log. lat_N / ttft_N count requests whose
-- latency / time to first token fell in bucket N (bounds in rollup.rs); '' stands for none.
CREATE TABLE usage_rollups (
  period TEXT NOT NULL,              -- 'hour' or 'day'
  start_ms INTEGER NOT NULL,         -- the period's start, UTC
  key_id TEXT NOT NULL,
  team TEXT NOT NULL,
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  reporting_currency TEXT NOT NULL,
  requests INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  cached_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  cost_reporting_pico INTEGER NOT NULL,
  estimated INTEGER NOT NULL,        -- requests whose cost was estimated
  lat_0 INTEGER NOT NULL, lat_1 INTEGER NOT NULL, lat_2 INTEGER NOT NULL, lat_3 INTEGER NOT NULL,
  lat_4 INTEGER NOT NULL, lat_5 INTEGER NOT NULL, lat_6 INTEGER NOT NULL, lat_7 INTEGER NOT NULL,
  lat_8 INTEGER NOT NULL, lat_9 INTEGER NOT NULL, lat_10 INTEGER NOT NULL, lat_11 INTEGER NOT NULL,
  lat_12 INTEGER NOT NULL,
  ttft_0 INTEGER NOT NULL, ttft_1 INTEGER NOT NULL, ttft_2 INTEGER NOT NULL, ttft_3 INTEGER NOT NULL,
  ttft_4 INTEGER NOT NULL, ttft_5 INTEGER NOT NULL, ttft_6 INTEGER NOT NULL, ttft_7 INTEGER NOT NULL,
  ttft_8 INTEGER NOT NULL, ttft_9 INTEGER NOT NULL, ttft_10 INTEGER NOT NULL, ttft_11 INTEGER NOT NULL,
  ttft_12 INTEGER NOT NULL,
  PRIMARY KEY (period, start_ms, key_id, team, provider, model, rule_id, reporting_currency)
);
