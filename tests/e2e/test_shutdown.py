"""Graceful shutdown of the native host: SIGTERM stops accepting, lets requests and streams finish within the drain
time, ends the streams still running with an error event, writes every log row and exits 0."""

import json
import signal
import threading
import time

import httpx
import pytest

from harness import SELECTED_HOSTS, NativeGateway
from test_gateway import msgs, sse_events

pytestmark = pytest.mark.skipif("native" not in SELECTED_HOSTS, reason="the native host's own shutdown")


def post(gw, body, out, i):
    try:
        r = httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=30,
                       headers={"authorization": f"Bearer {gw.key}"})
        out[i] = (r.status_code, r.text, r.headers.get("x-request-id"))
    except httpx.HTTPError as e:
        out[i] = (None, repr(e), None)


def start(gw, bodies):
    out = [None] * len(bodies)
    threads = [threading.Thread(target=post, args=(gw, b, out, i)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    return threads, out


def terminate(gw) -> float:
    """SIGTERM; returns how long the process took to exit (it must exit 0)."""
    t0 = time.monotonic()
    gw.proc.proc.send_signal(signal.SIGTERM)
    assert gw.proc.proc.wait(timeout=30) == 0, gw.proc.output()[-2000:]
    return time.monotonic() - t0


def test_sigterm_lets_requests_and_streams_finish_and_writes_every_row(mock):
    gw = NativeGateway(mock, settings={"GATEWAY_DRAIN_MS": "10000"})
    try:
        # A stream of ~20 chunks 200 ms apart, and JSON answers that take 2 s: all in flight at SIGTERM.
        bodies = [{"model": "mock-slow-200", "stream": True, "messages": msgs()}] + \
                 [{"model": "mock-latency-2000", "messages": msgs()} for _ in range(6)]
        threads, out = start(gw, bodies)
        time.sleep(1)
        took = terminate(gw)
        for t in threads:
            t.join(timeout=30)
        # New connections are refused once it stops accepting.
        with pytest.raises(httpx.ConnectError):
            httpx.get(gw.url + "/healthz", timeout=2)
        statuses = [o[0] for o in out]
        assert statuses == [200] * len(bodies), out
        stream = sse_events(out[0][1])
        assert stream[-1] == "[DONE]" and not any("error" in e for e in stream[:-1])
        assert took < 10, took
        for status, _, request_id in out:
            row = gw._find_row(request_id)
            assert row is not None and row["status"] == 200 and row["truncated"] == 0, row
        assert "drained, every log row written" in gw.proc.output()
    finally:
        gw.stop()


def test_streams_still_running_when_the_drain_time_ends_get_an_error_event_and_a_row(mock):
    gw = NativeGateway(mock, settings={"GATEWAY_DRAIN_MS": "500"})
    try:
        # ~20 chunks 300 ms apart: far longer than the drain time.
        threads, out = start(gw, [{"model": "mock-slow-300", "stream": True, "messages": msgs()}])
        time.sleep(0.5)
        took = terminate(gw)
        threads[0].join(timeout=30)
        status, text, request_id = out[0]
        assert status == 200, out
        events = sse_events(text)
        assert "[DONE]" not in events
        last = json.loads(events[-1])
        assert last["error"]["code"] == "gateway_shutting_down"
        assert took < 5, took
        row = gw._find_row(request_id)
        assert row["truncated"] == 1 and row["error_code"] == "gateway_shutting_down", row
    finally:
        gw.stop()
