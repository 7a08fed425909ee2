"""A hostile upstream and a careless client, on both hosts: what the gateway must not relay, follow or accept."""

import json
import socket
import time

import httpx
import pytest

from harness import SETTINGS
from test_gateway import chat, msgs, sse_events

PROVIDER_KEY = SETTINGS["OPENAI_API_KEY"]


def test_a_provider_redirect_is_an_upstream_error_not_followed(gw):
    # The mock's redirect target would answer 200: a gateway that follows it (with the provider's key) passes.
    r = chat(gw, {"model": "mock-redirect", "messages": msgs()})
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert err["code"] == "upstream_invalid_response"
    assert "redirect" in err["message"] and "/v1/chat/completions" not in err["message"]
    row = gw.log_row(r.headers["x-request-id"])
    assert row["status"] == 502 and row["error_code"] == "upstream_invalid_response"
    assert json.loads(row["attempt_log"])[0]["status"] == 307


def test_a_provider_that_echoes_its_key_does_not_leak_it(gw):
    r = chat(gw, {"model": "mock-echo-key", "messages": msgs()})
    assert r.status_code == 502, r.text
    assert PROVIDER_KEY not in r.text
    assert "[redacted]" in r.json()["error"]["message"]
    row = gw.log_row(r.headers["x-request-id"])
    assert PROVIDER_KEY not in json.dumps(row)


def test_a_stream_whose_first_event_is_html_fails_instead_of_relaying_a_200(gw):
    r = chat(gw, {"model": "mock-html-first", "stream": True, "messages": msgs()})
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "upstream_invalid_response"
    assert "<html>" not in r.text


def test_a_malformed_event_mid_stream_ends_it_with_an_error_event_not_done(gw):
    r = chat(gw, {"model": "mock-garbage-mid", "stream": True, "messages": msgs()})
    assert r.status_code == 200
    events = sse_events(r.text)
    assert "[DONE]" not in events
    assert "tru" not in r.text
    assert json.loads(events[-1])["error"]["code"] == "upstream_invalid_response"
    row = gw.log_row(r.headers["x-request-id"])
    assert row["truncated"] == 1 and row["error_code"] == "upstream_invalid_response"


def test_an_sse_line_that_never_ends_is_cut_at_the_event_limit(gw):
    r = chat(gw, {"model": "mock-huge-line", "stream": True, "messages": msgs()})
    assert r.status_code == 200
    assert len(r.content) < 1 << 20  # the 9 MiB line is not relayed
    last = json.loads(sse_events(r.text)[-1])
    assert last["error"]["code"] == "upstream_invalid_response" and "MiB" in last["error"]["message"]


@pytest.mark.parametrize("model,says", [
    ("gpt-4o-mini\r\nx-injected: 1", "control characters"),
    ("gpt\x00", "control characters"),
    ("gpt\x7f", "control characters"),
    ("m" * 300, "longer than 256 bytes"),
])
def test_a_model_that_cannot_be_a_header_is_refused_before_any_provider_is_called(gw, model, says):
    r = chat(gw, {"model": model, "messages": msgs()})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "model" and says in err["message"]
    row = gw.log_row(r.headers["x-request-id"])
    assert row["status"] == 400 and row["attempts"] == 0


def test_an_unknown_provider_field_is_a_400_whatever_the_policy_would_do(gw):
    r = chat(gw, {"model": "gpt-4o-mini", "provider": "nosuch", "messages": msgs()})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "provider" and "nosuch" in err["message"]


def test_an_endless_chunked_body_over_the_limit_is_refused_without_reading_it_all(gw):
    sent = 0

    def body():
        nonlocal sent
        chunk = b"x" * (1 << 20)
        for _ in range(64):  # 64 MiB, far over the 4 MiB limit
            sent += len(chunk)
            yield chunk

    started_ms = int(time.time() * 1000) - 1
    answered = None
    try:
        r = httpx.post(gw.url + "/v1/chat/completions", content=body(), timeout=30,
                       headers={"authorization": f"Bearer {gw.key}", "content-type": "application/json"})
        answered = r.status_code
        if gw.name == "workerd" and r.status_code == 503 and "restarted mid-request" in r.text:
            # wrangler's dev proxy, not the Worker: its fetch to the Worker fails when the Worker answers before
            # the upload ends, and it then reports every such failure on a path other than "/" as a restart
            # (ProxyWorker.ts compares the request's full URL with the Worker's origin). The log shows the answer.
            answered = None
        else:
            assert r.status_code == 413, r.text
    except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
        pass  # the connection was closed while the client was still sending: also a refusal
    assert sent < 64 << 20
    if answered is None:  # no status seen by the client: the gateway's row says what it answered
        deadline = time.monotonic() + 15
        while not [row for row in gw.rows_since(started_ms) if row["status"] == 413]:
            assert time.monotonic() < deadline, gw.rows_since(started_ms)
            time.sleep(0.2)


def test_a_path_too_long_to_store_is_a_414_and_its_row_stays_small(gw):
    r = httpx.get(gw.url + "/v1/" + "a" * 9000, timeout=30)
    assert r.status_code == 414, r.text
    assert r.json()["error"]["code"] == "uri_too_long"
    row = gw.log_row(r.headers["x-request-id"])
    assert row["status"] == 414 and len(row["path"]) <= 2048


@pytest.mark.parametrize("headers,says", [
    ({f"x-gateway-meta-k{i}": "v" for i in range(17)}, "more than 16"),
    ({"x-gateway-meta-app": "v" * 300}, "256 bytes of value"),
    ({"x-gateway-tags": ",".join(["tag"] * 400)}, "x-gateway-tags"),
])
def test_decision_headers_over_their_limits_are_a_431_not_stored(gw, headers, says):
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": msgs()}, timeout=30,
                   headers={"authorization": f"Bearer {gw.key}", **headers})
    assert r.status_code == 431, r.text
    err = r.json()["error"]
    assert err["code"] == "request_header_fields_too_large" and says in err["message"]
    row = gw.log_row(r.headers["x-request-id"])
    assert row["status"] == 431 and row["attempts"] == 0


def raw_chat(gw, body: dict) -> socket.socket:
    data = json.dumps(body)
    host, port = gw.url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\ncontent-type: application/json\r\n"
              f"authorization: Bearer {gw.key}\r\ncontent-length: {len(data)}\r\n\r\n{data}".encode())
    return s


def only_row(gw, started_ms: int, model: str) -> dict:
    deadline = time.monotonic() + 10
    while not (rows := [r for r in gw.rows_since(started_ms) if r["requested_model"] == model]):
        assert time.monotonic() < deadline, "no log row for a request whose client hung up"
        time.sleep(0.2)
    (row,) = rows
    return row


def wait_abandoned(mock, count: int) -> None:
    deadline = time.monotonic() + 5
    while mock.abandoned() < count:
        assert time.monotonic() < deadline, "the upstream call went on after the client left"
        time.sleep(0.1)
    assert mock.abandoned() == count


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_hangs_up_before_the_answer_cancels_the_upstream_call(gw, mock, stream):
    if gw.name == "workerd":
        pytest.skip("workerd notices a client gone over HTTP only when it writes to it: the Worker's side of this is "
                    "tests/workerd/hang_up.test.mjs, where the client aborts through a service binding")
    # The provider takes 3 s to answer; the client leaves after 0.5 s. The gateway must stop waiting (cancel its
    # upstream call, so a provider that bills per generated token stops generating) and log what happened.
    model = f"mock-latency-{3000 + int(stream)}"
    started_ms, abandoned = int(time.time() * 1000) - 1, mock.abandoned()
    s = raw_chat(gw, {"model": model, "stream": stream, "messages": msgs()})
    time.sleep(0.5)
    s.close()
    row = only_row(gw, started_ms, model)
    assert (row["status"], row["error_code"], row["provider"]) == (499, "client_closed", "openai"), row
    assert row["latency_ms"] < 2500, row
    wait_abandoned(mock, abandoned + 1)


def test_a_client_that_hangs_up_mid_stream_cancels_the_upstream_stream(gw, mock):
    # ~20 chunks 300 ms apart; the client leaves after the first.
    model = "mock-slow-300"
    started_ms, abandoned = int(time.time() * 1000) - 1, mock.abandoned()
    s = raw_chat(gw, {"model": model, "stream": True, "messages": msgs()})
    head = b""
    while b"data: " not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    s.close()
    row = only_row(gw, started_ms, model)
    assert (row["status"], row["error_code"], row["truncated"]) == (499, "client_closed", 1), row
    assert row["latency_ms"] < 3000, row
    wait_abandoned(mock, abandoned + 1)
