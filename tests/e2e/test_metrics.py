"""Prometheus metrics of the native host: `/metrics` behind its token on the API's address and without one on
GATEWAY_METRICS_LISTEN, parsed by the official Python client's parser; every request counted once by route,
status, provider, model and rule, attempts by outcome, limit rejections, stream time to first token, and the log
writer's queue and dropped rows checked against the rows in SQLite."""

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import ADMIN_TOKEN, SELECTED_HOSTS, NativeGateway, free_port

pytestmark = pytest.mark.skipif("native" not in SELECTED_HOSTS, reason="the native host's /metrics")

TOKEN = "metrics-e2e"


@pytest.fixture(scope="module")
def gw(mock):
    port = free_port()
    g = NativeGateway(mock, settings={"GATEWAY_METRICS_TOKEN": TOKEN, "GATEWAY_METRICS_LISTEN": f"127.0.0.1:{port}"})
    g.metrics_url = f"http://127.0.0.1:{port}/metrics"
    yield g
    g.stop()


def scrape(gw) -> dict:
    """{(sample name, sorted labels): value} from the token-free address."""
    r = httpx.get(gw.metrics_url, timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def value(samples: dict, name: str, **labels) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def settled(gw, check, timeout=10.0):
    """Scrapes until `check(samples)` holds (rows are counted when they are handed to the log writer, just
    after the response)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(gw)
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def chat(gw, key=None, **body):
    return httpx.post(gw.url + "/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {key or gw.key}"},
                      json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **body})


def test_metrics_need_their_token_on_the_api_address(gw):
    r = httpx.get(gw.url + "/metrics", timeout=5)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert "GATEWAY_METRICS_TOKEN" in r.json()["error"]["message"]
    # The metrics token is its own: the admin token (or a gateway key) is not it.
    for wrong in (ADMIN_TOKEN, gw.key):
        assert httpx.get(gw.url + "/metrics", headers={"authorization": f"Bearer {wrong}"}, timeout=5).status_code == 401
    r = httpx.get(gw.url + "/metrics", headers={"authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 200
    assert "# TYPE gateway_requests_total counter" in r.text
    assert httpx.post(gw.url + "/metrics", headers={"authorization": f"Bearer {TOKEN}"}, timeout=5).status_code == 405
    # The metrics address serves nothing else.
    other = httpx.get(gw.metrics_url.replace("/metrics", "/v1/models"), timeout=5)
    assert other.status_code == 404 and other.json()["error"]["message"]


def test_each_request_is_counted_once_with_its_labels(gw):
    before = scrape(gw)
    labels = dict(route="chat", status="200", provider="openai", model="gpt-4o-mini", rule="default")
    for _ in range(3):
        assert chat(gw).status_code == 200
    assert chat(gw, messages="not a list").status_code == 400
    after = settled(gw, lambda s: value(s, "gateway_requests_total", **labels)
                    >= value(before, "gateway_requests_total", **labels) + 3)
    assert value(after, "gateway_requests_total", **labels) - value(before, "gateway_requests_total", **labels) == 3
    total = value(after, "gateway_requests_total") - value(before, "gateway_requests_total")
    assert total == 4, "the refused request is counted too, once"
    ok = dict(provider="openai", model="gpt-4o-mini", outcome="ok")
    assert value(after, "gateway_upstream_attempts_total", **ok) - value(before, "gateway_upstream_attempts_total", **ok) == 3
    n = value(after, "gateway_request_duration_seconds_count", route="chat", provider="openai")
    assert n - value(before, "gateway_request_duration_seconds_count", route="chat", provider="openai") == 3
    inf = value(after, "gateway_request_duration_seconds_bucket", route="chat", provider="openai", le="+Inf")
    assert inf == n
    assert value(after, "gateway_tokens_total", provider="openai", model="gpt-4o-mini", kind="prompt") > 0


def test_streams_record_time_to_first_token(gw):
    before = scrape(gw)
    with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=30, headers={"authorization": f"Bearer {gw.key}"},
                      json={"model": "gpt-4o-mini", "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        assert r.status_code == 200
        r.read()
    name = "gateway_time_to_first_token_seconds_count"
    after = settled(gw, lambda s: value(s, name, provider="openai") > value(before, name, provider="openai"))
    assert value(after, name, provider="openai", model="gpt-4o-mini") - value(before, name, provider="openai", model="gpt-4o-mini") == 1
    assert value(after, "gateway_time_to_first_token_seconds_sum", provider="openai") > 0


def test_failed_attempts_and_limit_rejections_are_counted(gw, mock):
    before = scrape(gw)
    mock.faults(deepseek="mock-503")
    try:
        r = chat(gw, model="deepseek/deepseek-chat")
        assert r.status_code >= 500
    finally:
        mock.reset_faults()
    limited = gw.create_key(limits='{"requests_per_minute": 1}')
    codes = [chat(gw, key=limited).status_code for _ in range(4)]
    assert codes.count(429) >= 2, codes
    name = "gateway_limit_rejections_total"
    after = settled(gw, lambda s: value(s, name, limit="key:requests_per_minute")
                    - value(before, name, limit="key:requests_per_minute") >= codes.count(429))
    assert value(after, name, limit="key:requests_per_minute") - value(before, name, limit="key:requests_per_minute") == codes.count(429)
    failed = dict(provider="deepseek", outcome="5xx")
    assert value(after, "gateway_upstream_attempts_total", **failed) - value(before, "gateway_upstream_attempts_total", **failed) >= 1
    assert value(after, "gateway_requests_total", status="429", route="chat") - value(before, "gateway_requests_total", status="429", route="chat") == codes.count(429)


def test_log_writer_metrics_match_the_log(gw):
    for _ in range(5):
        chat(gw)
    def drained(s):
        return value(s, "gateway_log_queue_depth") == 0 and value(s, "gateway_log_rows_written_total") == len(gw.query("SELECT id FROM request_logs"))
    samples = settled(gw, drained)
    assert value(samples, "gateway_log_queue_depth") == 0
    assert value(samples, "gateway_log_rows_written_total") == len(gw.query("SELECT id FROM request_logs"))
    assert value(samples, "gateway_log_rows_written_total") == value(samples, "gateway_requests_total")
    assert value(samples, "gateway_log_rows_dropped_total") == 0
    assert value(samples, "gateway_open_connections") >= 0
