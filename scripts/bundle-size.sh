#!/usr/bin/env bash
# Builds the Worker as `wrangler deploy` would, without deploying, and prints the upload size (and gzip).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
export CI=true
out=$(mktemp -d)
wrangler deploy --dry-run --outdir "$out" </dev/null 2>&1 | grep -E 'Total Upload' || { echo "wrangler deploy --dry-run failed" >&2; exit 1; }
rm -rf "$out"
