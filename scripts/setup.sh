#!/usr/bin/env bash
# Installs what building, running and testing the gateway need, and nothing that is already there.
# Safe to run again: each step checks first. No step downloads anything but registry packages
# (crates.io, npm, PyPI), so the Worker build works offline afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
say() { printf '==> %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required but not installed ($2)" >&2; exit 2; }; }

need cargo "install Rust with rustup"
need node "install Node.js 20.3 or newer"
need npm "install npm"
need python3 "install Python 3.9 or newer"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown Rust target"
  rustup target add wasm32-unknown-unknown
fi

# worker-build runs the wasm-bindgen CLI at exactly the version in Cargo.lock.
bindgen_want=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
bindgen_have=$("$WASM_BINDGEN_BIN" --version 2>/dev/null | awk '{print $2}' || true)
if [ "$bindgen_have" != "$bindgen_want" ]; then
  say "installing wasm-bindgen-cli $bindgen_want (was: ${bindgen_have:-none}); takes a few minutes once"
  cargo install wasm-bindgen-cli --version "=$bindgen_want" --locked
fi

if [ "$("$CARGO_BIN/worker-build" --version 2>/dev/null || true)" != "0.8.7" ]; then
  say "installing worker-build 0.8.7; takes a few minutes once"
  cargo install worker-build --version =0.8.7 --locked
fi

# npm ci when package-lock.json changed since the last install.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.setup-stamp 2>/dev/null || true)" != "$lock_sum" ]; then
  say "installing wrangler, esbuild and binaryen (npm ci)"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.setup-stamp
fi

# Debian's Chromium for the console's browser tests (Playwright drives it; Playwright's own browser download is
# not reachable from every machine). Only the test command asks for it (GATEWAY_SETUP_BROWSER=1): running the
# gateway does not need a browser.
if [ "${GATEWAY_SETUP_BROWSER:-}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || {
    echo "setup: the console's browser tests need Chromium at /usr/bin/chromium (Debian: apt-get install chromium)" >&2
    exit 2
  }
  say "installing Debian's chromium (apt-get)"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi

# Python packages for the end-to-end and SDK tests, in the project's own virtualenv.
req_sum=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.setup-stamp 2>/dev/null || true)" != "$req_sum" ]; then
  say "creating .venv with the test requirements (openai and anthropic SDKs, pytest, playwright)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
  echo "$req_sum" > .venv/.setup-stamp
fi
