"""A compiled routing policy on the native host: rules decide, failures fall back, headers and log rows say which."""

import json

import httpx
import pytest

from harness import NativeGateway, compile_policy

POLICY = """
rule zh: when lang == zh -> deepseek:deepseek-flash fallback openai:gpt-4o-mini
rule failover: when model == "mock-429" -> requested fallback gemini:gemini-3.8-flash
default -> requested
"""


@pytest.fixture(scope="module")
def routed(mock):
    gateway = NativeGateway(mock, policy=compile_policy(POLICY))
    yield gateway
    gateway.stop()


def post(gw, body):
    return httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {gw.key}"}, json=body, timeout=30)


def test_the_policy_routes_a_chinese_prompt_to_deepseek(routed):
    r = post(routed, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "你好，请用一句话介绍杭州"}]})
    assert r.status_code == 200, r.text
    assert (r.headers["x-gateway-provider"], r.headers["x-gateway-rule"]) == ("deepseek", "zh")
    assert len(r.headers["x-gateway-policy"]) == 64
    row = routed.log_row(r.headers["x-request-id"])
    assert (row["rule_id"], row["provider"], row["policy_hash"]) == ("zh", "deepseek", r.headers["x-gateway-policy"])


def test_english_goes_where_it_asked(routed):
    r = post(routed, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}]})
    assert (r.status_code, r.headers["x-gateway-provider"], r.headers["x-gateway-rule"]) == (200, "openai", "default")


@pytest.mark.parametrize("stream", [False, True])
def test_a_rate_limited_provider_falls_back_to_the_next(routed, stream):
    r = post(routed, {"model": "mock-429", "stream": stream, "messages": [{"role": "user", "content": "Hello there"}]})
    assert r.status_code == 200, r.text
    assert (r.headers["x-gateway-provider"], r.headers["x-gateway-attempts"]) == ("gemini", "2")
    if stream:
        assert r.text.rstrip().endswith("data: [DONE]")
    else:
        assert r.json()["choices"][0]["message"]["content"] == "This is the mock provider answering: Hello there"
    row = routed.log_row(r.headers["x-request-id"])
    assert (row["attempts"], row["provider"], row["rule_id"]) == (2, "gemini", "failover")
