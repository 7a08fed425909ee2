-- Image generation (POST /v1/images/generations): how many images a request made, priced per image where the
-- provider prices so (prices.toml `rates.image`); NULL for every other request.
ALTER TABLE request_logs ADD COLUMN images INTEGER;
