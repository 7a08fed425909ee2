"""Slow clients against the native host: a client that never finishes its headers is disconnected, one that never
finishes its body gets a 408 and a log row (GATEWAY_HEADER_TIMEOUT_MS / GATEWAY_BODY_TIMEOUT_MS)."""

import json
import socket
import sqlite3
import time

import pytest

from harness import SELECTED_HOSTS, NativeGateway

pytestmark = pytest.mark.skipif("native" not in SELECTED_HOSTS, reason="the native host's own HTTP server")


@pytest.fixture(scope="module")
def impatient(mock):
    gw = NativeGateway(mock, settings={"GATEWAY_HEADER_TIMEOUT_MS": "500", "GATEWAY_BODY_TIMEOUT_MS": "500",
                                       "GATEWAY_WRITE_TIMEOUT_MS": "1000"})
    yield gw
    gw.stop()


def connect(gw) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    return s


def read_all(s: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return out


def test_connections_that_never_finish_their_headers_are_closed(impatient):
    socks = [connect(impatient) for _ in range(50)]
    for s in socks:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nx-slow: ")
    t0 = time.monotonic()
    for s in socks:
        read_all(s)  # returns when the gateway closes the connection (or after the 5 s socket timeout)
        s.close()
    assert time.monotonic() - t0 < 4, "slowloris connections were held open"


@pytest.mark.parametrize("raw,status,code", [
    # More headers than the HTTP layer parses (100).
    (b"GET /v1/models HTTP/1.1\r\nHost: gateway\r\n" + b"".join(b"x-h%d: v\r\n" % i for i in range(150)) + b"\r\n",
     431, "request_header_fields_too_large"),
    # A URI over the HTTP layer's own limit (64 KiB; the gateway's 2 KiB limit answers shorter ones itself).
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: gateway\r\n\r\n", 414, "uri_too_long"),
    (b"HELLO THERE\r\n\r\n", 400, "malformed_request"),
    (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\ncontent-length: 1, 2\r\n\r\n", 400,
     "malformed_request"),
])
def test_requests_the_http_layer_refuses_still_leave_a_row(impatient, raw, status, code):
    started_ms = int(time.time() * 1000) - 1
    s = connect(impatient)
    s.sendall(raw)
    answer = read_all(s)
    s.close()
    assert answer.startswith(b"HTTP/1.1 %d" % status), answer[:200]
    deadline = time.monotonic() + 10
    while not (rows := [r for r in impatient.rows_since(started_ms) if r["status"] == status]):
        assert time.monotonic() < deadline, impatient.rows_since(started_ms)
        time.sleep(0.1)
    assert [(r["error_code"], r["path"], r["attempts"]) for r in rows] == [(code, "", 0)]


def test_a_body_that_never_arrives_gets_a_408_and_a_row(impatient):
    s = connect(impatient)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\ncontent-type: application/json\r\n"
              b"authorization: Bearer " + impatient.key.encode() + b"\r\ncontent-length: 100\r\n\r\n{\"model\"")
    t0 = time.monotonic()
    raw = read_all(s)
    s.close()
    assert time.monotonic() - t0 < 4
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), raw[:300]
    assert json.loads(body)["error"]["code"] == "request_timeout"
    request_id = next(line.split(b": ", 1)[1].decode() for line in head.split(b"\r\n")
                      if line.lower().startswith(b"x-request-id"))
    row = impatient.log_row(request_id)
    assert row["status"] == 408 and row["error_code"] == "request_timeout"


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_before_the_answer_still_leaves_a_row(impatient, stream):
    # The provider takes 1.5 s to answer; the client gives up after 0.3 s (before a JSON answer, or before a
    # stream's first token). The upstream was called and may charge: the log must say so.
    model = f"mock-latency-{1500 + int(stream)}"
    body = json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
    s = connect(impatient)
    s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\ncontent-type: application/json\r\n"
              f"authorization: Bearer {impatient.key}\r\ncontent-length: {len(body)}\r\n\r\n{body}".encode())
    time.sleep(0.3)
    s.close()
    deadline = time.monotonic() + 5
    row = None
    while row is None and time.monotonic() < deadline:
        time.sleep(0.1)
        conn = sqlite3.connect(impatient.db, timeout=5)
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT * FROM request_logs WHERE requested_model = ?", (model,)).fetchone()
        conn.close()
        row = dict(found) if found else None
    assert row is not None, "no log row for a request whose client left"
    assert (row["status"], row["error_code"]) == (499, "client_closed"), row
    assert row["provider"] == "openai" and row["latency_ms"] < 1500


def test_a_declared_oversize_body_gets_a_readable_413_even_from_clients_that_send_it_all_first(impatient):
    # urllib (like `requests`) writes the whole body before it reads the answer: a gateway that answers 413 and
    # closes at once resets the connection under it, and the client sees a broken pipe instead of the 413.
    import urllib.error
    import urllib.request
    body = b"x" * (5 << 20)  # over the 4 MiB default limit
    req = urllib.request.Request(impatient.url + "/v1/chat/completions", data=body, method="POST",
                                 headers={"authorization": f"Bearer {impatient.key}",
                                          "content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 413
    assert json.loads(e.value.read())["error"]["code"] == "request_too_large"


def test_a_log_batch_refused_by_a_locked_database_is_retried_not_dropped(impatient):
    import threading
    import urllib.request
    from harness import ADMIN_TOKEN

    def status():
        req = urllib.request.Request(impatient.url + "/admin/status",
                                     headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        return json.loads(urllib.request.urlopen(req, timeout=5).read())["log_rows"]

    before = status()
    # Another process holds the write lock for longer than the gateway's 5 s busy timeout.
    lock = sqlite3.connect(impatient.db, timeout=5, isolation_level=None, check_same_thread=False)
    lock.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(6.5, lambda: lock.execute("COMMIT"))
    released.start()
    s = connect(impatient)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nconnection: close\r\n\r\n")
    head = read_all(s).split(b"\r\n\r\n")[0]
    s.close()
    request_id = next(line.split(b": ", 1)[1].decode() for line in head.split(b"\r\n")
                      if line.lower().startswith(b"x-request-id"))
    released.join()
    lock.close()
    row = impatient.log_row(request_id)  # waits for the row
    assert row["status"] == 200
    after = status()
    assert after["retried"] > before["retried"] and after["lost"] == before["lost"] == 0, (before, after)


def test_at_the_connection_limit_new_connections_wait_for_one_to_close(mock):
    gw = NativeGateway(mock, settings={"GATEWAY_MAX_CONNECTIONS": "8"})
    try:
        held = [connect(gw) for _ in range(8)]
        for s in held:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")  # answered; the connection stays open
            assert read_until_body(s).startswith(b"HTTP/1.1 200")
        waiting = connect(gw)  # the kernel takes it into the backlog; the gateway does not accept it yet
        waiting.settimeout(1)
        waiting.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nconnection: close\r\n\r\n")
        with pytest.raises(socket.timeout):
            waiting.recv(1)
        held.pop().close()
        waiting.settimeout(5)
        assert read_all(waiting).startswith(b"HTTP/1.1 200")
        waiting.close()
        for s in held:
            s.close()
    finally:
        gw.stop()


def read_until_body(s: socket.socket) -> bytes:
    out = b""
    while b'{"status":"ok"}' not in out:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    return out


def test_a_client_that_stops_reading_a_stream_is_disconnected_and_the_row_says_so(impatient):
    # `mock-huge-stream` repeats a content chunk 50,000 times: ~11 MB, more than the sockets between the gateway
    # and a client that reads nothing can buffer.
    body = json.dumps({"model": "mock-huge-stream", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    host, port = impatient.url.removeprefix("http://").split(":")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window from the start
    s.settimeout(5)
    s.connect((host, int(port)))
    s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\ncontent-type: application/json\r\n"
              f"authorization: Bearer {impatient.key}\r\ncontent-length: {len(body)}\r\n\r\n{body}".encode())
    head = s.recv(4096)  # the status line and the first chunks; then the client reads nothing more
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    request_id = next(line.split(b": ", 1)[1].decode() for line in head.split(b"\r\n")
                      if line.lower().startswith(b"x-request-id"))
    row = impatient.log_row(request_id, timeout=10)  # the row comes once the gateway gives up on the client
    s.close()
    assert (row["status"], row["error_code"], row["truncated"]) == (499, "client_closed", 1), row
