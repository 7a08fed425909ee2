"""The payload archive on both hosts (natively a directory beside the database, on the Worker local R2 in
workerd): a request the `archive` rule decides leaves its bodies, redacted, under the day its retention ends, read
back from the store itself and through `/admin/logs/{id}/payload`; a stream is kept as its assembled answer;
other requests leave nothing; the sweep deletes days gone by and keeps the rest."""

import json
import subprocess
import time

import httpx
import openai
import pytest

from harness import ADMIN_TOKEN, ROOT, SELECTED_HOSTS, policy_sources, start_gateway

BUCKET = "ai-gateway-archive"
POLICY = ('rule kept: when meta["x-app"] == "support" -> openai:gpt-4o-mini with archive 7d\n'
          'default -> requested\n')
SUPPORT = {"x-gateway-meta-x-app": "support"}


@pytest.fixture(scope="module", params=SELECTED_HOSTS)
def gw(request, mock):
    # Natively the sweep runs every half second here (hourly unless set); the Worker's is its hourly trigger.
    gateway = start_gateway(request.param, mock, settings={"GATEWAY_ARCHIVE_SWEEP_MS": "500"})
    published = gateway.publish(policy_sources(POLICY))
    deadline = time.monotonic() + 20
    while chat(gateway, "probe").headers.get("x-gateway-policy") != published:
        assert time.monotonic() < deadline, "the published policy was not picked up"
        time.sleep(0.2)
    yield gateway
    gateway.stop()


def chat(gw, content, headers=None):
    return httpx.post(gw.url + "/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {gw.key}", **(headers or {})},
                      json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]})


def stored(gw, key: str) -> bytes | None:
    """The archived document as the store holds it: the file natively, the R2 object in workerd's local state."""
    if gw.name == "native":
        path = gw.dir / "archive" / key
        return path.read_bytes() if path.exists() else None
    out = subprocess.run(["wrangler", "r2", "object", "get", f"{BUCKET}/{key}", "--local", "--pipe",
                          "--persist-to", str(gw.state)], cwd=ROOT, env=gw.env, stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=120)
    return out.stdout if out.returncode == 0 and out.stdout else None


def put_stored(gw, key: str, data: bytes) -> None:
    if gw.name == "native":
        path = gw.dir / "archive" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    src = gw.state / "upload.json"
    src.write_bytes(data)
    gw.wrangler(["r2", "object", "put", f"{BUCKET}/{key}", "--file", str(src), "--local"])


def payload(gw, request_id: str) -> httpx.Response:
    return httpx.get(f"{gw.url}/admin/logs/{request_id}/payload", timeout=30,
                     headers={"authorization": f"Bearer {ADMIN_TOKEN}"})


def test_an_archived_request_is_readable_in_the_store_with_its_secrets_redacted(gw):
    said = (f"I am li.lei@example.com, phone 13800138000 or +1 202-555-0143. My gateway key is {gw.key} "
            "and my OpenAI key sk-proj-0123456789abcdefghij.")
    r = chat(gw, said, SUPPORT)
    assert r.status_code == 200, r.text
    row = gw.log_row(r.headers["x-request-id"])
    key = row["archive"]
    assert key and key.endswith(f"/{row['id']}.json"), row
    expires = time.strftime("%Y-%m-%d", time.gmtime(row["ts_ms"] / 1000 + 7 * 86400))
    assert key.split("/")[0] == expires
    raw = stored(gw, key)
    assert raw is not None, f"{key} is not in the {gw.name} archive"
    for secret in ["li.lei@example.com", "13800138000", "202-555-0143", gw.key, "sk-proj-0123456789abcdefghij"]:
        assert secret.encode() not in raw, f"{secret} was archived"
    doc = json.loads(raw)
    assert doc["request"]["messages"][0]["content"] == (
        "I am [redacted:email], phone [redacted:phone] or [redacted:phone]. My gateway key is "
        "[redacted:gateway_key] and my OpenAI key [redacted:provider_key].")
    # The mock echoes the prompt: the answer kept is the client's, redacted the same way.
    answered = r.json()["choices"][0]["message"]["content"]
    kept = doc["response"]["choices"][0]["message"]["content"]
    assert "li.lei@example.com" in answered and "[redacted:email]" in kept, (answered, kept)
    assert kept.split("[redacted:email]")[0] == answered.split("li.lei@example.com")[0]
    assert set(doc["redacted"]) == {"email", "phone", "gateway_key", "provider_key"}
    assert doc["redacted"]["email"] >= 1 and doc["redacted"]["phone"] >= 2
    assert (doc["id"], doc["rule_id"], doc["status"], doc["expires"]) == (row["id"], "kept", 200, expires)
    # The admin API gives the same document.
    via_api = payload(gw, row["id"])
    assert via_api.status_code == 200 and via_api.json() == doc


def test_a_stream_is_archived_as_the_answer_the_sdk_assembled(gw):
    sdk = openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, default_headers=SUPPORT)
    raw = sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Tell me a short story."}], stream=True,
        stream_options={"include_usage": True})
    text, usage = "", None
    for chunk in raw.parse():
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    row = gw.log_row(raw.headers["x-request-id"])
    doc = json.loads(stored(gw, row["archive"]))
    answer = doc["response"]
    assert doc["stream"] is True and answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == text and text
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["total_tokens"] == usage.total_tokens


def test_requests_other_rules_decide_are_not_archived(gw):
    r = chat(gw, "no archive for me, li.lei@example.com")
    assert r.status_code == 200
    row = gw.log_row(r.headers["x-request-id"])
    assert row["archive"] is None
    missing = payload(gw, row["id"])
    assert missing.status_code == 404 and "was not archived" in missing.json()["error"]["message"]
    assert payload(gw, "req_00000000000000000000000000000000").status_code == 404


def test_the_sweep_deletes_days_gone_by_and_keeps_the_rest(gw):
    old = "2020-01-01/req_0000000000000000000000000000dead.json"
    put_stored(gw, old, b'{"old": true}')
    assert stored(gw, old) is not None
    r = chat(gw, "keep this one", SUPPORT)
    fresh = gw.log_row(r.headers["x-request-id"])["archive"]
    if gw.name == "workerd":
        # The hourly Cron Trigger, run now through `wrangler dev --test-scheduled`.
        httpx.get(f"{gw.url}/__scheduled", params={"cron": "0 * * * *"}, timeout=30).raise_for_status()
    deadline = time.monotonic() + 10
    while stored(gw, old) is not None:
        assert time.monotonic() < deadline, "the expired day was not swept"
        time.sleep(0.3)
    assert stored(gw, fresh) is not None
