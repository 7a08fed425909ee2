#!/usr/bin/env bash
# Runs the gateway locally in the real Workers runtime (workerd, via `wrangler dev`) on 127.0.0.1, with local
# KV and D1 (migrations applied) under .wrangler/state, prints a demo API key and a curl line that works.
#
# Upstream: the providers whose keys are in .dev.vars (e.g. OPENAI_API_KEY=sk-...). With none there, the mock
# provider is started, every provider points at it, and the example routing policies in policies/ are published
# to the local KV (with real keys, publish yourself: gateway-policy publish policies --local). Ctrl-C stops
# everything.
#
# Environment: PORT (default 8787, or a free port when 8787 is taken).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
export CI=true   # wrangler: no prompts, no browser
say() { printf '==> %s\n' "$*" >&2; }

bash scripts/setup.sh
say "building the gateway tools and the Worker"
cargo build --quiet -p gateway-native -p gateway-mock -p gateway-policy
bash scripts/build-worker.sh >/dev/null

STATE=.wrangler/state
mkdir -p .gateway
say "applying D1 migrations to the local database"
wrangler d1 migrations apply DB --local --persist-to "$STATE" </dev/null >/dev/null

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_group() {  # start_group LOGFILE CMD...: runs CMD in its own process group (so all of it can be stopped)
  local log=$1; shift
  setsid "$@" </dev/null >"$log" 2>&1 &
  pids+=("$!")
}

vars=()
if [ -f .dev.vars ] && grep -qE '^[A-Z_]+_API_KEY=.+' .dev.vars; then
  say "using the provider keys in .dev.vars"
else
  say "no provider key in .dev.vars: starting the mock provider as OpenAI"
  start_group .gateway/mock.log ./target/debug/mock-provider --listen 127.0.0.1:0
  for _ in $(seq 1 100); do
    mock_url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' .gateway/mock.log | head -n1 || true)
    [ -n "$mock_url" ] && break
    sleep 0.1
  done
  [ -n "${mock_url:-}" ] || { echo "the mock provider did not start:"; cat .gateway/mock.log; exit 1; } >&2
  # Every provider points at the mock's route for its dialect, so `deepseek/…`, `gemini/…` etc. work offline too.
  vars+=(--var "OPENAI_BASE_URL:$mock_url/v1" --var "OPENAI_API_KEY:mock"
         --var "DEEPSEEK_BASE_URL:$mock_url/deepseek" --var "DEEPSEEK_API_KEY:mock"
         --var "SILICONFLOW_BASE_URL:$mock_url/siliconflow/v1" --var "SILICONFLOW_API_KEY:mock"
         --var "OPENROUTER_BASE_URL:$mock_url/openrouter/api/v1" --var "OPENROUTER_API_KEY:mock"
         --var "GEMINI_BASE_URL:$mock_url/gemini/v1beta" --var "GEMINI_API_KEY:mock"
         --var "WORKERS_AI_BASE_URL:$mock_url/workers-ai/client/v4/accounts/local/ai" --var "WORKERS_AI_API_KEY:mock")
fi

# One demo key, kept across runs in .gateway/demo-key while the local KV still holds it.
key=$(cat .gateway/demo-key 2>/dev/null || true)
if [ -n "$key" ]; then
  hash=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
  wrangler kv key get --binding API_KEYS "key/$hash" --local --persist-to "$STATE" </dev/null >/dev/null 2>&1 || key=""
fi
if [ -z "$key" ]; then
  entry=$(./target/debug/gateway keys create --name demo --kv-json)
  field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$entry" "$1"; }
  wrangler kv key put --binding API_KEYS "$(field kv_key)" "$(field kv_value)" --local --persist-to "$STATE" </dev/null >/dev/null
  key=$(field key)
  printf '%s\n' "$key" > .gateway/demo-key
fi

if [ -n "${mock_url:-}" ]; then
  say "publishing the example routing policies (policies/) to the local KV"
  ./target/debug/gateway-policy publish policies --local --persist-to "$STATE" --wrangler wrangler >/dev/null
fi

# The console's sign-in token (GATEWAY_ADMIN_TOKEN), kept across runs in .gateway/admin-token unless .dev.vars sets one.
if ! grep -qE '^GATEWAY_ADMIN_TOKEN=.+' .dev.vars 2>/dev/null; then
  [ -s .gateway/admin-token ] || python3 -c "import secrets; print('adm-' + secrets.token_hex(16))" > .gateway/admin-token
  admin_token=$(cat .gateway/admin-token)
  vars+=(--var "GATEWAY_ADMIN_TOKEN:$admin_token")
else
  admin_token="(GATEWAY_ADMIN_TOKEN in .dev.vars)"
fi

port=${PORT:-8787}
if ! python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))" "$port" 2>/dev/null; then
  port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
fi

say "starting wrangler dev on http://127.0.0.1:$port (log: .gateway/wrangler.log)"
start_group .gateway/wrangler.log env GATEWAY_SKIP_WORKER_BUILD=1 wrangler dev --ip 127.0.0.1 --port "$port" \
  --persist-to "$STATE" --test-scheduled "${vars[@]}"
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "wrangler dev exited:"; tail -n 40 .gateway/wrangler.log; exit 1; } >&2
  sleep 0.2
done

cat <<EOF

  AI gateway running in workerd at http://127.0.0.1:$port
  demo API key: $key

  console: http://127.0.0.1:$port/console/   (sign in with the admin token: $admin_token)
  provider health (the Cron, which wrangler dev does not run by itself): curl http://127.0.0.1:$port/__scheduled

  curl http://127.0.0.1:$port/v1/chat/completions -H "Authorization: Bearer $key" -H "content-type: application/json" -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'

  Other providers (mocked unless .dev.vars has their keys): "model": "deepseek/deepseek-flash",
  "gemini/gemini-3.8-flash", "siliconflow/Qwen/Qwen3-8B", "openrouter/openai/gpt-5.2", "workers_ai/@cf/meta/llama-3.1-8b-instruct"

  Routing: policies/ (publish changes: ./target/debug/gateway-policy publish policies --local --persist-to $STATE --wrangler wrangler)
  Logs: wrangler d1 execute DB --local --persist-to $STATE --command "SELECT * FROM request_logs ORDER BY ts_ms DESC LIMIT 5"
  Press Ctrl-C to stop.

EOF
wait "${pids[-1]}"
