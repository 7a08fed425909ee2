"""Routing by what is asked, on both hosts: `reasoning`, and `prompt` / `system` patterns, from a published
policy; the decision log keeps the rule and the attributes, never the prompt or system text."""

import json

import httpx
import pytest

from harness import ROOT, SELECTED_HOSTS, policy_sources, start_gateway
from test_engines import wait_for


POLICY = r"""
rule hard: when reasoning -> deepseek:deepseek-v4-pro
rule sql: when prompt matches "(?i)\bselect\b.+\bfrom\b" -> siliconflow:"Qwen/Qwen3-8B"
rule support: when system contains "support agent" and not (prompt contains "refund") -> openai:gpt-4o-mini
rule coding: when task == code -> deepseek:deepseek-v4-pro fallback openai:gpt-4o-mini
default -> requested
"""

SECRET_PROMPT = "SELECT card_number FROM customers WHERE name = 'Zhang Wei'"
SECRET_SYSTEM = "You are a support agent for ACME-7731 internal systems."


@pytest.fixture(scope="module", params=SELECTED_HOSTS)
def gw(request, mock):
    gateway = start_gateway(request.param, mock)
    wait_for(gateway, gateway.publish(policy_sources(POLICY)))
    yield gateway
    gateway.stop()


def chat(gw, messages, **extra):
    return httpx.post(gw.url + "/v1/chat/completions", timeout=30, headers={"authorization": f"Bearer {gw.key}"},
                      json={"model": "gpt-4o-mini", "messages": messages, **extra})


@pytest.mark.parametrize("extra", [{"reasoning_effort": "high"}, {"thinking": {"type": "enabled"}}])
def test_a_request_that_asks_for_reasoning_goes_to_the_reasoning_model(gw, extra):
    r = chat(gw, [{"role": "user", "content": "Prove that there are infinitely many primes."}], **extra)
    assert r.status_code == 200, r.text
    assert (r.headers["x-gateway-rule"], r.headers["x-gateway-model"]) == ("hard", "deepseek-v4-pro")
    decision = json.loads(gw.log_row(r.headers["x-request-id"])["decision_attrs"])
    assert decision["attrs"]["reasoning"] is True


def test_prompt_and_system_patterns_route_and_their_text_is_not_logged(gw):
    r = chat(gw, [{"role": "user", "content": SECRET_PROMPT}])
    assert (r.headers["x-gateway-rule"], r.headers["x-gateway-provider"]) == ("sql", "siliconflow"), r.text
    row = gw.log_row(r.headers["x-request-id"])
    r2 = chat(gw, [{"role": "system", "content": SECRET_SYSTEM}, {"role": "user", "content": "My printer is broken"}])
    assert r2.headers["x-gateway-rule"] == "support", r2.text
    row2 = gw.log_row(r2.headers["x-request-id"])
    for logged in (row, row2):
        text = json.dumps(logged)
        assert "card_number" not in text and "Zhang Wei" not in text and "ACME-7731" not in text
    assert row["rule_id"] == "sql"
    # `not (prompt contains …)` excludes it; nothing else matches: the default.
    r3 = chat(gw, [{"role": "system", "content": SECRET_SYSTEM}, {"role": "user", "content": "I want a refund"}])
    assert r3.headers["x-gateway-rule"] == "default"


def test_a_plain_request_is_decided_by_the_default(gw):
    r = chat(gw, [{"role": "user", "content": "Hello there"}], reasoning_effort="none")
    assert r.headers["x-gateway-rule"] == "default"


def held_out():
    rows = [json.loads(line) for line in (ROOT / "tests" / "data" / "tasks.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == "test"]


def test_coding_prompts_in_english_and_chinese_go_to_the_coding_target(gw):
    """The issue's rule, on the held-out labelled prompts: code goes to the coding model, at the accuracy the
    classifier measured on the same set (docs/policy-language.md); other tasks stay on the default."""
    routed = {}
    for r in held_out():
        if "select" in r["prompt"].lower() and "from" in r["prompt"].lower():
            continue  # the `sql` rule above takes SQL first
        resp = chat(gw, [{"role": "user", "content": r["prompt"]}])
        assert resp.status_code == 200, resp.text
        routed.setdefault((r["task"] == "code", r["lang"]), []).append(resp.headers["x-gateway-rule"] == "coding")
        if resp.headers["x-gateway-rule"] == "coding":
            assert resp.headers["x-gateway-model"] == "deepseek-v4-pro"
    for lang in ("en", "zh"):
        code = routed[(True, lang)]
        other = routed[(False, lang)]
        assert sum(code) / len(code) >= 0.9, (lang, code)
        assert sum(other) / len(other) <= 0.1, (lang, other)
    # The row says what the decision saw, not what was asked.
    r = chat(gw, [{"role": "user", "content": "用 Python 写一个判断素数的函数，变量名用 zhang_secret_name"}])
    row = gw.log_row(r.headers["x-request-id"])
    attrs = json.loads(row["decision_attrs"])["attrs"]
    assert (attrs["task"], row["rule_id"]) == ("code", "coding")
    assert "zhang_secret_name" not in json.dumps(row)
