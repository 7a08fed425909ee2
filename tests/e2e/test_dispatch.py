"""Policy-driven dispatch on both hosts, through real fault injection.

Each host gets its own gateway whose policy store starts empty (the built-in default applies). The example
policies in policies/ are then published with `gateway-policy publish` (native: a directory; workerd: local KV
through wrangler) and followed without a restart; later tests publish a policy made for fault injection, and
roll it back. Faults are forced on whole provider routes of the mock, so the policies name real models.

Tests in this module run in file order for each host; they share the gateway (and its published policy).
"""

import json
import time

import httpx
import pytest

from harness import ROOT, SELECTED_HOSTS, policy_sources, start_gateway

# Short enough that a cooled-down model is back within a test's patience.
SETTINGS = {"COOLDOWN_MS": "2000"}

SHORT_ZH = "你好，请用一句话介绍杭州"
# About 900 characters of Chinese: well over the 500-token line of the example policies.
LONG_ZH = "杭州是浙江省的省会，以西湖的自然风光和深厚的历史文化闻名于世。" * 30

FAULT_POLICY = """
# Coding agents: Anthropic's SDK on /v1/messages to Claude, the Responses API to OpenAI, DeepSeek behind both.
rule agents: when endpoint == messages -> anthropic:claude-sonnet-4-6 fallback deepseek:deepseek-flash
rule codex: when endpoint == responses -> openai:gpt-5.5 fallback deepseek:deepseek-flash
rule pictures: when endpoint == images -> openai:gpt-image-1 fallback workers_ai:"@cf/black-forest-labs/flux-1-schnell"
rule listen: when endpoint == transcriptions -> openai:whisper-1 fallback workers_ai:"@cf/openai/whisper-large-v3-turbo"
rule speak: when endpoint == speech -> openai:tts-1 fallback workers_ai:"@cf/deepgram/aura-1"
# The seed rule, as in the example policies.
rule seed: when tokens < 500 and lang == zh -> deepseek:deepseek-flash fallback siliconflow:"deepseek-ai/DeepSeek-V3.2" with timeout 8s, retry_on {429, 5xx, timeout}
rule quick: when tags contains "fast-fail" -> openrouter:"openai/gpt-5.2" fallback gemini:gemini-2.5-flash with first_token_timeout 1s
rule all_down: when tags contains "all-down" -> deepseek fallback siliconflow fallback openrouter
rule canary: when tags contains "canary" -> split { openai:gpt-5.5 70, gemini:gemini-2.5-flash 30 }
deny blocked: when meta["block"] == "yes" -> deny 451 "blocked by the test policy"
default -> requested
"""


@pytest.fixture(scope="module", params=SELECTED_HOSTS)
def gw(request, mock):
    gateway = start_gateway(request.param, mock, SETTINGS)
    gateway.example_hash = None
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def clean_faults(mock):
    mock.reset_faults()
    yield
    mock.reset_faults()


def chat(gw, content, *, model="gpt-4o-mini", stream=False, key=None, headers=None, timeout=30):
    h = {"authorization": f"Bearer {key or gw.key}", **(headers or {})}
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": content}]}
    return httpx.post(gw.url + "/v1/chat/completions", headers=h, json=body, timeout=timeout)


def attempts(row):
    return [(a["provider"], a["status"], a.get("error")) for a in json.loads(row["attempt_log"])]


def wait_for_policy(gw, expected_hash, timeout=20):
    """Sends requests until one is decided by `expected_hash` (the refresh runs in the background)."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        r = chat(gw, "Hello there", headers={"x-gateway-tags": "probe"})
        seen = r.headers.get("x-gateway-policy")
        if seen == expected_hash:
            return
        time.sleep(0.2)
    raise AssertionError(f"{gw.name} still decides with {seen}, not {expected_hash}")


def wait_until_nothing_cools_down(gw, timeout=10):
    """Earlier tests' failures may have cooled a model down (for COOLDOWN_MS): wait it out."""
    deadline = time.monotonic() + timeout
    while gw.admin_status()["cooling_down_seconds"]:
        assert time.monotonic() < deadline, gw.admin_status()["cooling_down_seconds"]
        time.sleep(0.2)


def test_without_a_published_policy_the_builtin_default_routes_to_what_was_requested(gw):
    r = chat(gw, SHORT_ZH)
    assert r.status_code == 200, r.text
    assert (r.headers["x-gateway-policy"], r.headers["x-gateway-rule"]) == ("builtin", "default")
    assert r.headers["x-gateway-provider"] == "openai"


def test_publishing_the_example_policies_takes_effect_without_a_restart(gw):
    gw.example_hash = gw.publish(ROOT / "policies")
    assert len(gw.example_hash) == 64
    wait_for_policy(gw, gw.example_hash)
    assert gw.admin_status()["policy"]["hash"] == gw.example_hash


def test_the_seed_rule_sends_a_short_chinese_prompt_to_deepseek(gw):
    r = chat(gw, SHORT_ZH)
    assert r.status_code == 200, r.text
    assert (r.headers["x-gateway-provider"], r.headers["x-gateway-model"]) == ("deepseek", "deepseek-flash")
    assert r.headers["x-gateway-rule"] == "30-routing.policy:6"
    row = gw.log_row(r.headers["x-request-id"])
    assert (row["policy_hash"], row["rule_id"]) == (gw.example_hash, "30-routing.policy:6")
    decision = json.loads(row["decision_attrs"])
    assert (decision["attrs"]["lang"], decision["attrs"]["tokens"] < 500) == ("zh", True)
    assert decision["plan"] == ["deepseek:deepseek-flash", "siliconflow:deepseek-ai/DeepSeek-V3.2"]
    assert SHORT_ZH not in row["decision_attrs"]


def test_a_long_chinese_prompt_goes_to_the_long_context_model(gw):
    r = chat(gw, LONG_ZH, stream=True)
    assert r.status_code == 200, r.text
    assert (r.headers["x-gateway-rule"], r.headers["x-gateway-model"]) == ("long_chinese", "deepseek-v4-pro")


def test_a_key_of_a_vip_team_goes_to_the_frontier_model(gw):
    key = gw.create_key(team="research")
    r = chat(gw, "Summarise the plot of Hamlet in one line.", key=key, stream=True)
    assert r.status_code == 200, r.text
    assert (r.headers["x-gateway-rule"], r.headers["x-gateway-provider"], r.headers["x-gateway-model"]) == (
        "vip", "openai", "gpt-6-sol")


def test_the_seed_rule_falls_back_to_siliconflow_when_deepseek_fails(gw, mock):
    mock.faults(deepseek="mock-500")
    for stream in (False, True):
        r = chat(gw, SHORT_ZH, stream=stream)
        assert r.status_code == 200, r.text
        assert (r.headers["x-gateway-provider"], r.headers["x-gateway-model"]) == (
            "siliconflow", "deepseek-ai/DeepSeek-V3.2")
        assert r.headers["x-gateway-attempts"] == "2"
        if stream:
            assert r.text.rstrip().endswith("data: [DONE]")
            assert r.text.count('"role":"assistant"') == 1
        row = gw.log_row(r.headers["x-request-id"])
        assert attempts(row) == [("deepseek", 500, "5xx"), ("siliconflow", 200, None)]


def test_provider_health_from_the_log_reroutes_chinese_traffic(gw, mock):
    mock.faults(deepseek="mock-503")
    for _ in range(4):
        assert chat(gw, SHORT_ZH).headers["x-gateway-provider"] == "siliconflow"
    mock.reset_faults()
    deadline = time.monotonic() + 30
    while True:
        gw.refresh_health()
        health = (gw.admin_status().get("health") or {}).get("providers", {}).get("deepseek")
        if health and health["error_rate"] > 0.2:
            break
        assert time.monotonic() < deadline, f"no degraded deepseek in the health snapshot: {health}"
        time.sleep(0.5)
    # The gateway reads the snapshot with its next background refresh.
    deadline = time.monotonic() + 15
    while True:
        r = chat(gw, LONG_ZH)
        if r.headers["x-gateway-rule"] == "deepseek_degraded":
            break
        assert time.monotonic() < deadline, r.headers["x-gateway-rule"]
        time.sleep(0.3)
    assert (r.status_code, r.headers["x-gateway-provider"]) == (200, "siliconflow")
    decision = json.loads(gw.log_row(r.headers["x-request-id"])["decision_attrs"])
    assert decision["attrs"]["health"]["deepseek"]["error_rate"] > 0.2


def test_publishing_a_new_policy_replaces_the_example_one(gw):
    gw.fault_hash = gw.publish(policy_sources(FAULT_POLICY))
    wait_for_policy(gw, gw.fault_hash)


@pytest.mark.parametrize("stream", [False, True])
def test_messages_and_responses_fall_back_by_the_policy(gw, mock, stream):
    import anthropic
    import openai

    mock.faults(anthropic="mock-500", openai="mock-503")
    claude = anthropic.Anthropic(base_url=gw.url, api_key=gw.key, max_retries=0, timeout=30)
    ask = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "ping"}]}
    raw = claude.messages.with_raw_response.create(stream=stream, **ask)
    if stream:
        events = [e.type for e in raw.parse()]
        assert events[0] == "message_start" and events[-1] == "message_stop", events
    else:
        assert raw.parse().content[-1].text == "This is the mock provider answering: ping"
    assert (raw.headers["x-gateway-rule"], raw.headers["x-gateway-provider"]) == ("agents", "deepseek")
    row = gw.log_row(raw.headers["x-request-id"])
    assert attempts(row) == [("anthropic", 500, "5xx"), ("deepseek", 200, None)]
    assert (row["endpoint"], row["cost_pico"] > 0) == ("messages", True)

    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)
    raw = client.responses.with_raw_response.create(model="gpt-5.5", input="ping", stream=stream)
    if stream:
        kinds = [e.type for e in raw.parse()]
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
    else:
        assert raw.parse().output_text == "This is the mock provider answering: ping"
    assert (raw.headers["x-gateway-rule"], raw.headers["x-gateway-provider"]) == ("codex", "deepseek")
    row = gw.log_row(raw.headers["x-request-id"])
    assert attempts(row) == [("openai", 503, "5xx"), ("deepseek", 200, None)]
    assert row["endpoint"] == "responses"


def test_an_image_request_falls_back_by_the_policy_and_is_priced_where_it_was_made(gw, mock):
    import base64

    import openai

    mock.faults(openai="mock-500")
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)
    raw = client.images.with_raw_response.generate(model="any-image-model", prompt="a lighthouse")
    assert base64.b64decode(raw.parse().data[0].b64_json).startswith(b"\x89PNG")
    assert (raw.headers["x-gateway-rule"], raw.headers["x-gateway-provider"]) == ("pictures", "workers_ai")
    row = gw.log_row(raw.headers["x-request-id"])
    assert attempts(row) == [("openai", 500, "5xx"), ("workers_ai", 200, None)]
    # Workers AI's flux: 0.000634 USD an image (policies/prices.toml).
    assert (row["endpoint"], row["images"], row["cost_pico"]) == ("images", 1, 634_000_000)


def test_audio_falls_back_by_the_policy_both_ways(gw, mock):
    import openai

    mock.faults(openai="mock-503")
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)
    audio = b"RIFF" + b"\x00" * 32_000
    raw = client.audio.transcriptions.with_raw_response.create(model="any", file=("a.wav", audio, "audio/wav"))
    assert raw.parse().text == f"The mock heard {len(audio)} bytes of audio."
    assert (raw.headers["x-gateway-rule"], raw.headers["x-gateway-provider"]) == ("listen", "workers_ai")
    row = gw.log_row(raw.headers["x-request-id"])
    assert attempts(row) == [("openai", 503, "5xx"), ("workers_ai", 200, None)]
    assert (row["endpoint"], row["audio_ms"]) == ("transcriptions", 1000)
    raw = client.audio.speech.with_raw_response.create(model="any", voice="angus", input="Hello")
    assert raw.content.startswith(b"ID3")
    assert (raw.headers["x-gateway-rule"], raw.headers["x-gateway-provider"]) == ("speak", "workers_ai")
    row = gw.log_row(raw.headers["x-request-id"])
    assert attempts(row) == [("openai", 503, "5xx"), ("workers_ai", 200, None)]
    assert (row["endpoint"], row["characters"], row["cost_pico"]) == ("speech", 5, 5 * 15_000_000)


def test_a_429_with_retry_after_falls_back(gw, mock):
    wait_until_nothing_cools_down(gw)
    mock.faults(deepseek="mock-429")
    r = chat(gw, SHORT_ZH)
    assert (r.status_code, r.headers["x-gateway-provider"], r.headers["x-gateway-rule"]) == (200, "siliconflow", "seed")
    assert attempts(gw.log_row(r.headers["x-request-id"])) == [("deepseek", 429, "429"), ("siliconflow", 200, None)]


def test_a_model_that_keeps_failing_cools_down_and_is_tried_last(gw, mock):
    wait_until_nothing_cools_down(gw)
    mock.faults(deepseek="mock-500")
    for _ in range(3):
        chat(gw, SHORT_ZH)
    r = chat(gw, SHORT_ZH)
    row = gw.log_row(r.headers["x-request-id"])
    assert attempts(row) == [("siliconflow", 200, None)]
    assert "deepseek:deepseek-flash (cooling down, tried last)" in json.loads(row["decision_attrs"])["skipped"]
    mock.reset_faults()
    time.sleep(2.2)
    r = chat(gw, SHORT_ZH)
    assert r.headers["x-gateway-provider"] == "deepseek"


@pytest.mark.parametrize("stream", [False, True])
def test_a_stall_before_the_first_token_times_out_and_falls_back(gw, mock, stream):
    # A stream whose headers arrive and then nothing; an answer that does not come within the timeout.
    mock.faults(openrouter="mock-stall" if stream else "mock-latency-5000")
    started = time.monotonic()
    r = chat(gw, "Hello there", stream=stream, headers={"x-gateway-tags": "fast-fail"})
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-provider"] == "gemini"
    if stream:
        assert r.text.rstrip().endswith("data: [DONE]")
    row = gw.log_row(r.headers["x-request-id"])
    assert attempts(row)[0][0] == "openrouter" and attempts(row)[0][2] == "timeout"
    if stream:
        # The rule's 1 s first-token timeout, not the gateway's 3 s upstream timeout (which JSON waits for).
        assert elapsed < 2.8, elapsed


def test_a_stall_after_the_first_token_ends_with_an_error_event(gw, mock):
    mock.faults(openrouter="mock-stall-mid")
    r = chat(gw, "Hello there", stream=True, headers={"x-gateway-tags": "fast-fail"})
    assert (r.status_code, r.headers["x-gateway-provider"]) == (200, "openrouter"), r.text
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "upstream_timeout"
    row = gw.log_row(r.headers["x-request-id"])
    assert (row["status"], row["truncated"]) == (504, 1)
    assert attempts(row) == [("openrouter", 504, "stream")]


def test_a_cut_after_the_first_token_ends_with_an_error_event_and_no_done(gw, mock):
    mock.faults(openrouter="mock-cut")
    r = chat(gw, "Hello there", stream=True, headers={"x-gateway-tags": "fast-fail"})
    assert r.status_code == 200
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert "[DONE]" not in events
    assert "error" in json.loads(events[-1])
    assert gw.log_row(r.headers["x-request-id"])["truncated"] == 1


def test_when_every_target_is_down_the_client_gets_one_error_listing_the_attempts(gw, mock):
    wait_until_nothing_cools_down(gw)
    mock.faults(deepseek="mock-500", siliconflow="mock-503", openrouter="mock-500")
    r = chat(gw, "Hello there", headers={"x-gateway-tags": "all-down"})
    assert r.status_code in (502, 503), r.text
    message = r.json()["error"]["message"]
    assert "also tried: deepseek:deepseek-flash (502 upstream_error), siliconflow:" in message, message
    row = gw.log_row(r.headers["x-request-id"])
    assert [a[0] for a in attempts(row)] == ["deepseek", "siliconflow", "openrouter"]
    assert row["status"] == r.status_code


def test_a_deny_rule_answers_with_its_status_and_message(gw):
    r = chat(gw, "Hello there", headers={"x-gateway-meta-block": "yes"})
    assert r.status_code == 451
    assert r.json()["error"] == {"message": "blocked by the test policy", "type": "invalid_request_error",
                                 "param": None, "code": "policy_denied"}
    row = gw.log_row(r.headers["x-request-id"])
    assert (row["rule_id"], row["attempt_log"]) == ("blocked", None)


def test_a_split_sends_each_arm_its_share(gw):
    n = 200
    counts = {"openai": 0, "gemini": 0}
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            r = client.post(gw.url + "/v1/chat/completions",
                            headers={"authorization": f"Bearer {gw.key}", "x-gateway-tags": "canary"},
                            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
            assert r.status_code == 200, r.text
            counts[r.headers["x-gateway-provider"]] += 1
    # 70/30 by the stable per-request sample; ±10 points is over three standard deviations at n = 200.
    assert abs(counts["openai"] / n - 0.7) <= 0.10, counts


def test_rollback_moves_the_pointer_back(gw):
    assert gw.rollback() == gw.example_hash
    wait_for_policy(gw, gw.example_hash)
    r = chat(gw, SHORT_ZH)
    assert r.headers["x-gateway-rule"] == "30-routing.policy:6"
