#!/usr/bin/env bash
# Runs every test: formatting and lints, unit, pipeline and policy-language tests (with property tests), the
# example policy's own tests, then end-to-end tests over real
# HTTP against the native host (SQLite) and the Worker in workerd (wrangler dev, local KV and D1), including
# the official OpenAI and Anthropic Python SDKs. Installs what is missing first (scripts/setup.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
export CI="${CI:-true}"
say() { printf '\n==> %s\n' "$*" >&2; }

GATEWAY_SETUP_BROWSER=1 bash scripts/setup.sh

say "building the console (console/src → console/dist)"
bash scripts/build-console.sh

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy (native and wasm32)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy -p gateway-workers --target wasm32-unknown-unknown --quiet -- -D warnings

say "unit and pipeline tests"
cargo test --workspace --quiet

say "building the binaries and the Worker"
cargo build --quiet -p gateway-native -p gateway-mock -p gateway-policy
bash scripts/build-worker.sh

say "the example policy: check (warnings fail), its tests, formatting"
./target/debug/gateway-policy check --deny-warnings policies
./target/debug/gateway-policy test policies
./target/debug/gateway-policy fmt --check policies

say "the Workers AI binding path in Miniflare (workerd) with a fake AI binding; the console's texts"
node --test tests/workerd/ tests/console/

say "end-to-end tests: native host and workerd, with the OpenAI and Anthropic SDKs"
.venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider
