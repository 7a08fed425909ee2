"""End-to-end behaviour of the gateway over real HTTP, on both hosts, against the mock provider."""

import json
import time

import httpx
import pytest

CHAT = "/v1/chat/completions"


def chat(gw, body, key=None, **kw):
    headers = {"authorization": f"Bearer {gw.key if key is None else key}"}
    return httpx.post(gw.url + CHAT, json=body, headers=headers, timeout=30, **kw)


def msgs(text="hello gateway"):
    return [{"role": "user", "content": text}]


def sse_events(text):
    return [block[len("data: "):] for block in text.strip().split("\n\n") if block.startswith("data: ")]


def test_healthz(gw):
    r = httpx.get(gw.url + "/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_json_chat_reaches_the_mock_and_is_logged_with_usage(gw):
    r = chat(gw, {"model": "gpt-4o-mini", "messages": msgs("what is 2+2")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "This is the mock provider answering: what is 2+2"
    assert r.headers["x-gateway-provider"] == "openai"
    assert r.headers["x-gateway-model"] == "gpt-4o-mini"
    row = gw.log_row(r.headers["x-request-id"])
    assert row["status"] == 200 and row["stream"] == 0
    assert row["key_id"].startswith("key_")
    assert (row["provider"], row["model"], row["requested_model"]) == ("openai", "gpt-4o-mini", "gpt-4o-mini")
    assert row["prompt_tokens"] == body["usage"]["prompt_tokens"]
    assert row["completion_tokens"] == body["usage"]["completion_tokens"]
    assert row["latency_ms"] > 0


def test_provider_prefixed_model_is_sent_without_the_prefix(gw):
    r = chat(gw, {"model": "openai/gpt-6-luna", "messages": msgs()})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "gpt-6-luna"


def test_stream_chunks_arrive_before_the_upstream_has_finished(gw):
    # The mock waits 300 ms between chunks (~2.7 s in all): a gateway that buffered would deliver
    # everything at the end.
    t0 = time.monotonic()
    arrivals = []
    with httpx.stream("POST", gw.url + CHAT, json={"model": "mock-slow-300", "stream": True, "messages": msgs("hi")},
                      headers={"authorization": f"Bearer {gw.key}"}, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        request_id = r.headers["x-request-id"]
        for line in r.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.monotonic() - t0, line[6:]))
    total = arrivals[-1][0]
    assert arrivals[-1][1] == "[DONE]"
    assert total > 2.4, f"the mock takes ~2.7 s, got {total:.2f}"
    first_content = next(t for t, d in arrivals if d != "[DONE]" and json.loads(d)["choices"][0]["delta"].get("content"))
    assert first_content < total - 1.5, f"first content at {first_content:.2f}s of {total:.2f}s: buffered"
    # Usage was not asked for, so no usage chunk reaches the client, but the log has the tokens.
    assert all(json.loads(d)["choices"] for _, d in arrivals[:-1])
    row = gw.log_row(request_id)
    assert row["stream"] == 1 and row["truncated"] == 0 and row["status"] == 200
    assert row["completion_tokens"] == 7
    assert 0 < row["ttft_ms"] < row["latency_ms"]


def test_stream_with_include_usage_ends_with_a_usage_chunk(gw):
    r = chat(gw, {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
                  "messages": msgs("hi")})
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    usage_chunk = json.loads(events[-2])
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 7
    assert json.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer gw-not-a-key"}, {"x-api-key": "gw-nope"}],
                         ids=["missing", "unknown-bearer", "unknown-x-api-key"])
def test_bad_keys_get_401_and_a_log_row(gw, headers):
    r = httpx.post(gw.url + CHAT, json={"model": "gpt-4o-mini", "messages": msgs()}, headers=headers)
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error"
    assert set(err) == {"message", "type", "param", "code"}
    row = gw.log_row(r.headers["x-request-id"])
    assert row["status"] == 401 and row["key_id"] is None


def test_x_api_key_is_accepted(gw):
    r = httpx.post(gw.url + CHAT, json={"model": "gpt-4o-mini", "messages": msgs()}, headers={"x-api-key": gw.key})
    assert r.status_code == 200, r.text


def test_body_over_the_limit_is_413(gw):
    r = chat(gw, {"model": "gpt-4o-mini", "messages": msgs("x" * 70_000)})
    assert r.status_code == 413
    assert "65536 bytes" in r.json()["error"]["message"]
    assert gw.log_row(r.headers["x-request-id"])["status"] == 413


def test_invalid_requests_are_400_404_405(gw):
    auth = {"authorization": f"Bearer {gw.key}"}
    r = httpx.post(gw.url + CHAT, content=b"{not json", headers=auth)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = chat(gw, {"model": "gpt-4o-mini"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = httpx.get(gw.url + "/v1/nope", headers=auth)
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.get(gw.url + CHAT, headers=auth)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert gw.log_row(r.headers["x-request-id"])["status"] == 405


@pytest.mark.parametrize("model,status,code", [("mock-429", 429, "rate_limit_exceeded"),
                                                ("mock-500", 502, "upstream_error"),
                                                ("mock-503", 503, "upstream_unavailable")])
def test_upstream_failures_map_to_gateway_statuses(gw, model, status, code):
    r = chat(gw, {"model": model, "messages": msgs()})
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    if status == 429:
        assert r.headers["retry-after"] == "1"
    row = gw.log_row(r.headers["x-request-id"])
    assert (row["status"], row["error_code"]) == (status, code)


def test_upstream_that_never_answers_is_504(gw):
    t0 = time.monotonic()
    r = chat(gw, {"model": "mock-stall", "messages": msgs()})
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"
    assert 2.5 < time.monotonic() - t0 < 10


@pytest.mark.parametrize("model,code", [("mock-cut", None), ("mock-eof", "upstream_truncated"),
                                        ("mock-stall-mid", "upstream_timeout"), ("mock-error-mid", None)])
def test_a_stream_that_fails_midway_ends_with_an_error_event_not_done(gw, model, code):
    r = chat(gw, {"model": model, "stream": True, "messages": msgs()})
    assert r.status_code == 200
    events = sse_events(r.text)
    assert "[DONE]" not in events
    assert json.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
    last = json.loads(events[-1])
    assert "error" in last and last["error"]["message"]
    if code:
        assert last["error"]["code"] == code
    row = gw.log_row(r.headers["x-request-id"])
    assert row["truncated"] == 1 and row["status"] >= 500


def test_models_are_listed_with_provider_prefixes(gw):
    r = httpx.get(gw.url + "/v1/models", headers={"authorization": f"Bearer {gw.key}"})
    assert r.status_code == 200
    ids = [m["id"] for m in r.json()["data"]]
    assert "openai/gpt-4o-mini" in ids and all(m["object"] == "model" for m in r.json()["data"])


def test_embeddings_pass_through(gw):
    r = httpx.post(gw.url + "/v1/embeddings", json={"model": "text-embedding-3-small", "input": ["a", "b"]},
                   headers={"authorization": f"Bearer {gw.key}"})
    assert r.status_code == 200, r.text
    assert [d["index"] for d in r.json()["data"]] == [0, 1]
    row = gw.log_row(r.headers["x-request-id"])
    assert row["endpoint"] == "embeddings" and row["prompt_tokens"] == 2
