#!/usr/bin/env bash
# Builds the Worker (src/workers → src/workers/build/index.js + index_bg.wasm), offline.
# GATEWAY_SKIP_WORKER_BUILD=1 reuses an existing build (tests build once, then start wrangler several times).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# The console's files, which wrangler serves as the Worker's static assets (fast: esbuild).
bash "$ROOT/scripts/build-console.sh" >/dev/null
cd "$ROOT/src/workers"
if [ "${GATEWAY_SKIP_WORKER_BUILD:-}" = 1 ] && [ -f build/index.js ] && [ -f build/index_bg.wasm ]; then
  exit 0
fi
# Smallest code for the Worker; the native binaries keep the workspace's opt-level 3.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
exec worker-build --release
