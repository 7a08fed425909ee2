-- What each request cost, priced with the published price table (policies/prices.toml): in the provider's
-- billing currency and in the reporting currency (REPORTING_CURRENCY), as whole pico-units (10^-12 of the
-- currency) so that sums are exact; whether the usage was estimated (a stream cut before its usage chunk); and
-- the version of the price table used. NULL when the model has no price.
ALTER TABLE request_logs ADD COLUMN cost_pico INTEGER;
ALTER TABLE request_logs ADD COLUMN cost_currency TEXT;
ALTER TABLE request_logs ADD COLUMN cost_reporting_pico INTEGER;
ALTER TABLE request_logs ADD COLUMN reporting_currency TEXT;
ALTER TABLE request_logs ADD COLUMN cost_estimated INTEGER;
ALTER TABLE request_logs ADD COLUMN price_version TEXT;
