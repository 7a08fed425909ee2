-- Images and audio (POST /v1/images/generations, /v1/audio/transcriptions, /v1/audio/speech): what a request was
-- billed by besides tokens: the images it made, the milliseconds of audio it transcribed, the characters it spoke
-- (prices.toml `rates.image`, `rates.audio_minute`, `rates.characters`); NULL for every other request.
ALTER TABLE request_logs ADD COLUMN images INTEGER;
ALTER TABLE request_logs ADD COLUMN audio_ms INTEGER;
ALTER TABLE request_logs ADD COLUMN characters INTEGER;
