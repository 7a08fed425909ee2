-- The response cache (src/core/src/cache.rs): whether the answer came from the cache (`hit`), was stored in it
-- (`miss`, `refresh`) or the client opted out (`bypass`); NULL when the deciding rule does not cache. A hit costs
-- nothing (its cost columns are 0) and records what the cached answer cost when it was made, in the reporting
-- currency's pico-units.
ALTER TABLE request_logs ADD COLUMN cache TEXT;
ALTER TABLE request_logs ADD COLUMN cache_saved_pico INTEGER;
