#!/usr/bin/env bash
# Builds the console (console/src, Preact and uPlot from node_modules) into console/dist/console/: index.html,
# app.js and app.css, minified, no source maps, nothing loaded from elsewhere at run time. Workers serve that
# directory as static assets (wrangler.toml [assets]); the native binary embeds it (src/native/build.rs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
out=console/dist/console
rm -rf console/dist
mkdir -p "$out"
node_modules/.bin/esbuild console/src/main.jsx --bundle --minify --format=esm --target=es2020 \
  --jsx=automatic --jsx-import-source=preact --legal-comments=none --log-level=warning \
  --outfile="$out/app.js"
cp console/index.html "$out/index.html"
# Headers Workers static assets send with the console (the native host sends the same, src/native/src/console.rs).
cat > console/dist/_headers <<'HEADERS'
/console/*
  Content-Security-Policy: default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'
  X-Content-Type-Options: nosniff
  Referrer-Policy: no-referrer
  X-Frame-Options: DENY
HEADERS
printf 'console: %s\n' "$(cd "$out" && for f in app.js app.css index.html; do printf '%s %s B (%s B gzip)  ' "$f" "$(wc -c < "$f")" "$(gzip -9c "$f" | wc -c)"; done)"
