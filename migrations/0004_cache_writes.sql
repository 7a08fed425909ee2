-- Prompt tokens written to the provider's cache (Anthropic's cache_creation_input_tokens): billed apart from
-- plain input, and a part of prompt_tokens like cached_tokens (the tokens read from the cache).
ALTER TABLE request_logs ADD COLUMN cache_write_tokens INTEGER;
