"""Engines added and removed by configuration, on both hosts: providers declared in a catalog that is published
while the gateway runs (nothing rebuilt, nothing restarted) take traffic by rules; the mock's OpenAI-compatible
shapes stand for a keyed vLLM, a keyless Ollama and a hosted service with every quirk a declaration can state.

Tests run in file order for each host and share its gateway and published policy.
"""

import json
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest

from harness import BIN_DIR, ROOT, SELECTED_HOSTS, NativeGateway, start_gateway
from test_gateway import sse_events

# The secrets the declarations name, set before any catalog declares them (`wrangler secret put` on Workers).
SECRETS = {"VLLM_BOX_KEY": "sk-vllm", "STRICT_CO_KEY": "sk-strict"}

DECLARATIONS = """
[providers.vllm_box]
dialect = "openai"
base_url = "{mock}/compat/vllm/v1"
key = "VLLM_BOX_KEY"
default_model = "qwen3-8b"
quirks = {{ max_tokens = "max_tokens" }}

[providers.vllm_box.models."qwen3-8b"]
context = 32768
tools = true

[providers.vllm_open]
dialect = "openai"
base_url = "{mock}/compat/vllm-open/v1"
default_model = "qwen3-8b"

[providers.vllm_open.models."qwen3-8b"]
context = 32768

[providers.ollama_box]
dialect = "openai"
base_url = "{mock}/compat/ollama/v1"
default_model = "qwen3:8b"

[providers.ollama_box.models."qwen3:8b"]
context = 40960
tools = true

[providers.strict_co]
dialect = "openai"
base_url = "{mock}/compat/strict/v1"
key = "STRICT_CO_KEY"
headers = {{ "X-Team" = "gateway-e2e" }}
default_model = "llama-4"
quirks = {{ max_tokens = "max_tokens", stream_usage = "always", strip = ["user"], model_prefix = "accounts/acme/models/", auth = "x-api-key" }}

[providers.strict_co.models."llama-4"]
context = 131072

[providers.moonshot]
dialect = "openai"
base_url = "https://api.moonshot.cn/v1"
key = "MOONSHOT_API_KEY"
default_model = "kimi-k2"

[providers.moonshot.models."kimi-k2"]
context = 131072
"""

POLICY = """
rule private: when tags contains "private" -> ollama_box:"qwen3:8b"
rule vllm: when tags contains "vllm" -> vllm_box:"qwen3-8b"
rule vllm_open: when tags contains "vllm-open" -> vllm_open:"qwen3-8b"
rule strict: when tags contains "strict" -> strict_co:"llama-4"
rule chain: when tags contains "chain" -> vllm_box:"qwen3-8b" fallback openai:gpt-4o-mini
rule chain_back: when tags contains "chain-back" -> openai:gpt-4o-mini fallback ollama_box:"qwen3:8b"
rule kimi: when tags contains "kimi" -> moonshot:kimi-k2 fallback openai:gpt-4o-mini
default -> requested
"""


def policy_dir(mock, declarations: str = DECLARATIONS, policy: str = POLICY) -> Path:
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="gateway-engines-"))
    catalog = (ROOT / "policies" / "catalog.toml").read_text() + declarations.format(mock=mock.url)
    (d / "catalog.toml").write_text(catalog)
    (d / "main.policy").write_text(policy)
    return d


@pytest.fixture(scope="module", params=SELECTED_HOSTS)
def gw(request, mock):
    gateway = start_gateway(request.param, mock, SECRETS)
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def clean_faults(mock):
    mock.reset_faults()
    yield
    mock.reset_faults()


def chat(gw, tags, body=None, stream=False):
    body = {"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "hello engines"}],
            **(body or {})}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=30,
                      headers={"authorization": f"Bearer {gw.key}", "x-gateway-tags": tags})


def client(gw, tags):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30,
                         default_headers={"x-gateway-tags": tags})


def attempts(row):
    return [(a["provider"], a["status"]) for a in json.loads(row["attempt_log"])]


def wait_for(gw, expected_hash, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        r = chat(gw, "probe")
        if r.headers.get("x-gateway-policy") == expected_hash:
            return
        assert time.monotonic() < deadline, f"{gw.name} still decides with {r.headers.get('x-gateway-policy')}"
        time.sleep(0.2)


def test_before_the_catalog_declares_it_a_provider_is_unknown(gw):
    r = chat(gw, "", {"provider": "ollama_box"})
    assert r.status_code == 400, r.text
    assert "unknown provider `ollama_box`" in r.json()["error"]["message"]


def test_a_published_catalog_adds_engines_without_a_restart(gw, mock):
    gw.engines_hash = gw.publish(policy_dir(mock))
    t0 = time.monotonic()
    wait_for(gw, gw.engines_hash)
    # Within the policy refresh interval (300 ms in the tests) plus the publish's own propagation.
    assert time.monotonic() - t0 < 10
    status = gw.admin_status()["providers"]
    configured = {p["name"]: p["dialect"] for p in status["configured"]}
    assert {"vllm_box": "openai", "ollama_box": "openai", "strict_co": "openai", "openai": "openai"}.items() \
        <= configured.items(), configured
    assert {"name": "moonshot", "why": "no key: the secret `MOONSHOT_API_KEY` is not set"} in status["unconfigured"]
    models = httpx.get(gw.url + "/v1/models", headers={"authorization": f"Bearer {gw.key}"}).json()
    ids = {m["id"] for m in models["data"]}
    assert {"ollama_box/qwen3:8b", "vllm_box/qwen3-8b", "strict_co/llama-4"} <= ids
    assert "moonshot/kimi-k2" not in ids


def test_a_keyless_private_server_serves_a_rule_and_gets_no_key(gw, mock):
    r = chat(gw, "private")
    assert r.status_code == 200, r.text
    assert (r.headers["x-gateway-provider"], r.headers["x-gateway-model"]) == ("ollama_box", "qwen3:8b")
    assert r.json()["choices"][0]["message"]["content"].startswith("This is the mock provider answering")
    assert mock.stats()["last_auth"]["ollama"] is None
    row = gw.log_row(r.headers["x-request-id"])
    assert (row["provider"], row["model"], row["status"]) == ("ollama_box", "qwen3:8b", 200)
    assert row["prompt_tokens"] > 0


def test_a_keyless_vllm_serves_a_rule(gw, mock):
    r = chat(gw, "vllm-open", stream=True)
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-provider"] == "vllm_open"
    events = [json.loads(e) for e in sse_events(r.text)[:-1]]
    assert any(e["choices"] and e["choices"][0]["delta"].get("reasoning") for e in events)
    assert mock.stats()["last_auth"]["vllm-open"] is None


def test_a_keyed_vllm_streams_through_the_sdk_with_its_declared_secret(gw, mock):
    stream = client(gw, "vllm").chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi vllm"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("This is the mock provider answering: hi vllm")
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert mock.stats()["last_auth"]["vllm"] == "Bearer sk-vllm"


def test_a_tool_call_round_trip_through_a_custom_provider(gw):
    c = client(gw, "vllm")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    messages = [{"role": "user", "content": "Weather in Boston?"}]
    first = c.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert (first.choices[0].finish_reason, call.function.name) == ("tool_calls", "get_weather")
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    second = c.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    assert second.choices[0].message.content == "The tool said: sunny, 21 C"


def test_declared_quirks_make_a_picky_service_work(gw, mock):
    # The service refuses `max_completion_tokens`, `stream_options` and `user`, wants its key in `x-api-key` and
    # its model ids under a prefix: the declaration's quirks say so, and the client sends what it always sends.
    r = chat(gw, "strict", {"max_completion_tokens": 50, "user": "u-42"})
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-provider"] == "strict_co"
    assert r.json()["model"] == "accounts/acme/models/llama-4"
    assert mock.stats()["last_auth"]["strict"] is None  # the key went in x-api-key, not authorization
    # It sends usage on the finish chunk unasked: the client gets OpenAI's usage chunk only when it asks.
    asked = chat(gw, "strict", {"stream_options": {"include_usage": True}}, stream=True)
    events = [json.loads(e) for e in sse_events(asked.text)[:-1]]
    assert events[-1]["choices"] == [] and events[-1]["usage"]["total_tokens"] > 0
    assert not any("usage" in e and e["choices"] for e in events)
    unasked = chat(gw, "strict", stream=True)
    assert not any(json.loads(e).get("usage") for e in sse_events(unasked.text)[:-1])
    row = gw.log_row(unasked.headers["x-request-id"])
    assert row["completion_tokens"] > 0  # the row has the usage anyway


def test_the_seed_fallback_chain_crosses_built_in_and_custom_providers(gw, mock):
    mock.faults(compat_vllm="mock-500")
    r = chat(gw, "chain")
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-provider"] == "openai"
    assert attempts(gw.log_row(r.headers["x-request-id"])) == [("vllm_box", 500), ("openai", 200)]
    mock.reset_faults()
    mock.faults(openai="mock-503")
    r = chat(gw, "chain-back")
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-provider"] == "ollama_box"
    assert attempts(gw.log_row(r.headers["x-request-id"])) == [("openai", 503), ("ollama_box", 200)]


def test_a_declared_provider_without_its_secret_is_skipped(gw):
    r = chat(gw, "kimi")
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-provider"] == "openai"


def check(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN_DIR / "gateway-policy"), "check", str(directory)], capture_output=True, text=True,
                          timeout=60)


def test_taking_a_provider_out_fails_check_on_the_rules_that_still_use_it(mock):
    without = DECLARATIONS[:DECLARATIONS.index("[providers.ollama_box]")] + \
        DECLARATIONS[DECLARATIONS.index("[providers.strict_co]"):]
    out = check(policy_dir(mock, without))
    assert out.returncode != 0
    said = out.stdout + out.stderr
    assert "ollama_box" in said and "main.policy" in said, said
    assert check(policy_dir(mock)).returncode == 0


def test_a_provider_taken_out_and_published_is_gone_without_a_restart(gw, mock):
    without = DECLARATIONS[:DECLARATIONS.index("[providers.strict_co]")] + \
        DECLARATIONS[DECLARATIONS.index("[providers.moonshot]"):]
    policy = "\n".join(line for line in POLICY.splitlines() if "strict_co" not in line)
    new_hash = gw.publish(policy_dir(mock, without, policy))
    wait_for(gw, new_hash)
    r = chat(gw, "", {"provider": "strict_co"})
    assert r.status_code == 400, r.text
    names = {p["name"] for p in gw.admin_status()["providers"]["configured"]}
    assert "strict_co" not in names and "ollama_box" in names


@pytest.mark.skipif("native" not in SELECTED_HOSTS, reason="the native host's secrets file")
def test_a_key_added_to_the_secrets_file_takes_effect_without_a_restart(mock, tmp_path):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("# provider keys\n")
    declarations = """
[providers.kimi_box]
dialect = "openai"
base_url = "{mock}/compat/vllm/v1"
key = "KIMI_BOX_KEY"
default_model = "qwen3-8b"

[providers.kimi_box.models."qwen3-8b"]
context = 32768
"""
    policy = 'rule kimi: when tags contains "kimi" -> kimi_box:"qwen3-8b" fallback openai:gpt-4o-mini\ndefault -> requested\n'
    gw = NativeGateway(mock, threads=1, settings={"GATEWAY_SECRETS_FILE": str(secrets)})
    try:
        wait_for(gw, gw.publish(policy_dir(mock, declarations, policy)))
        assert chat(gw, "kimi").headers["x-gateway-provider"] == "openai"  # no key yet: skipped
        secrets.write_text("# provider keys\nexport KIMI_BOX_KEY='sk-vllm'\n")
        deadline = time.monotonic() + 10
        while (r := chat(gw, "kimi")).headers["x-gateway-provider"] != "kimi_box":
            assert time.monotonic() < deadline, r.headers
            time.sleep(0.2)
        assert r.status_code == 200 and mock.stats()["last_auth"]["vllm"] == "Bearer sk-vllm"
    finally:
        gw.stop()
