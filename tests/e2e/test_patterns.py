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


def labelled():
    return [json.loads(line) for line in (ROOT / "tests" / "data" / "tasks.jsonl").read_text().splitlines()]


def as_request(row):
    """A labelled row as an app sends it: its system prompt, its tools, its response_format."""
    messages = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    messages.append({"role": "user", "content": row["prompt"]})
    body = {"model": "gpt-4o-mini", "messages": messages}
    if row.get("tools"):
        body["tools"] = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                           "parameters": {"type": "object", "properties": {}}}}
                         for t in row["tools"]]
    if row.get("json_mode"):
        body["response_format"] = {"type": "json_object"}
    return body


def test_coding_prompts_in_english_and_chinese_go_to_the_coding_target(gw):
    """The issue's rule, on every labelled request: code goes to the coding model at the accuracy the classifier
    measured on the same set (docs/policy-language.md), other tasks stay on the default."""
    routed = {}
    with httpx.Client(timeout=30, headers={"authorization": f"Bearer {gw.key}"}) as client:
        for r in labelled():
            if "select" in r["prompt"].lower() and "from" in r["prompt"].lower():
                continue  # the `sql` rule above takes SQL first
            resp = client.post(gw.url + "/v1/chat/completions", json=as_request(r))
            assert resp.status_code == 200, resp.text
            coding = resp.headers["x-gateway-rule"] == "coding"
            routed.setdefault((r["split"], r["task"] == "code", r["lang"]), []).append(coding)
            if coding:
                assert resp.headers["x-gateway-model"] == "deepseek-v4-pro"
    rate = lambda key: sum(routed[key]) / len(routed[key])  # noqa: E731
    for lang in ("en", "zh"):
        # Measured on dev: 140 of 142 coding requests are code, 2 of 602 others are taken for code.
        assert rate(("dev", True, lang)) >= 0.95, (lang, routed[("dev", True, lang)])
        assert rate(("dev", False, lang)) <= 0.02, lang
    # Held out: 9 of 12 coding requests (English 3 of 6, Chinese 6 of 6; one of them is SQL, taken by `sql`), 2 of
    # 72 others.
    held_code = routed[("test", True, "en")] + routed[("test", True, "zh")]
    held_other = routed[("test", False, "en")] + routed[("test", False, "zh")]
    assert sum(held_code) >= 8 and sum(held_other) <= 2, (held_code, held_other)
    # The row says what the decision saw, not what was asked.
    r = chat(gw, [{"role": "user", "content": "用 Python 写一个判断素数的函数，变量名用 zhang_secret_name"}])
    row = gw.log_row(r.headers["x-request-id"])
    attrs = json.loads(row["decision_attrs"])["attrs"]
    assert (attrs["task"], row["rule_id"]) == ("code", "coding")
    assert "zhang_secret_name" not in json.dumps(row)
