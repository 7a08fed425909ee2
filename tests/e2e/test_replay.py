"""`gateway-policy replay` against each host's real request log (the native host's SQLite file, the Worker's
local D1 through wrangler): requests decided by the published policy, replayed with a candidate that sends
short Chinese prompts elsewhere and denies one model, report exactly those changes and what they would cost."""

import json
import time

import httpx
import pytest

from harness import SELECTED_HOSTS, policy_cli, policy_sources, start_gateway

POLICY = ('rule zh: when lang == zh -> deepseek:deepseek-flash fallback openai:gpt-4o-mini\n'
          'default -> requested\n')
CANDIDATE = ('deny no_mini: when model == "gpt-4o-mini" and lang == en -> deny 403 "not here"\n'
             'rule zh: when lang == zh -> siliconflow:"Qwen/Qwen3-8B" fallback openai:gpt-4o-mini\n'
             'default -> requested\n')


@pytest.fixture(scope="module", params=SELECTED_HOSTS)
def gw(request, mock):
    gateway = start_gateway(request.param, mock)
    yield gateway
    gateway.stop()


def chat(gw, model, content):
    return httpx.post(gw.url + "/v1/chat/completions", timeout=30, headers={"authorization": f"Bearer {gw.key}"},
                      json={"model": model, "messages": [{"role": "user", "content": content}]})


def test_replay_reports_what_a_candidate_policy_changes_on_the_logged_traffic(gw):
    published = gw.publish(policy_sources(POLICY))
    deadline = time.monotonic() + 20
    while chat(gw, "gpt-4o-mini", "hi").headers.get("x-gateway-policy") != published:
        assert time.monotonic() < deadline, "the published policy was not picked up"
        time.sleep(0.2)
    sent = [chat(gw, "gpt-4o-mini", "你好，请介绍一下你自己") for _ in range(3)]
    sent += [chat(gw, "gpt-4o-mini", "Hello, who are you?") for _ in range(2)]
    sent += [chat(gw, "deepseek/deepseek-flash", "Hello again") for _ in range(2)]
    assert all(r.status_code == 200 for r in sent)
    for r in sent:
        gw.log_row(r.headers["x-request-id"])
    decided = gw.query(f"SELECT COUNT(*) AS n FROM request_logs WHERE policy_hash = '{published}'")[0]["n"]

    report = json.loads(policy_cli("replay", str(policy_sources(CANDIDATE)), *gw.log_source(), "--format", "json",
                                   env=getattr(gw, "env", None)))
    # Every request decided by the policy is replayed (the probes included: English gpt-4o-mini ones).
    assert report["replayed"] == decided
    english_mini = decided - 3 - 2   # all but the Chinese ones and the deepseek/… ones
    assert report["newly_denied"] == english_mini
    assert report["changed_rule"] == english_mini            # `default` → `no_mini`
    assert report["changed_first_target"] == english_mini + 3  # the denied ones and zh → SiliconFlow
    zh = [s for s in report["sample"] if s["before"]["rule"] == "zh"]
    assert zh and all(s["after"]["target"] == "siliconflow:Qwen/Qwen3-8B" for s in zh)
    # The denied requests cost nothing; the Chinese ones are priced at SiliconFlow's rates, in USD.
    cost = report["cost"][0]
    assert cost["currency"] == "USD" and cost["before"] != cost["after"]
    human = policy_cli("replay", str(policy_sources(CANDIDATE)), *gw.log_source(), env=getattr(gw, "env", None))
    assert f"replayed {decided} of" in human and "newly denied: " in human
