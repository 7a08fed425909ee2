"""The response cache on both hosts (natively the in-process LRU, on the Worker the Cache API of workerd): a
cacheable rule's request sent twice reaches the provider once (the mock's counter), the second answer says
`x-gateway-cache: hit` and its log row costs nothing and says what it saved; a stream served from the cache is an
OpenAI stream the SDK reads; `cache-control: no-cache` reaches the provider; two keys never share an entry."""

import time

import httpx
import openai
import pytest

from harness import SELECTED_HOSTS, policy_sources, start_gateway

POLICY = ('rule cached: when temperature == 0 and not has_tools -> openai:gpt-4o-mini with cache 10m\n'
          'default -> requested\n')
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module", params=SELECTED_HOSTS)
def gw(request, mock):
    gateway = start_gateway(request.param, mock)
    published = gateway.publish(policy_sources(POLICY))
    deadline = time.monotonic() + 20
    while chat(gateway, gateway.key, content="probe").headers.get("x-gateway-policy") != published:
        assert time.monotonic() < deadline, "the published policy was not picked up"
        time.sleep(0.2)
    yield gateway
    gateway.stop()


def chat(gw, key, content=None, headers=None, **extra):
    messages = [{"role": "user", "content": content}] if content else QUESTION
    return httpx.post(gw.url + "/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {key}", **(headers or {})},
                      json={"model": "gpt-4o-mini", "temperature": 0, "messages": messages, **extra})


def stored(gw, response):
    """Waits for the answer's log row: the host writes it after storing the answer in the cache."""
    gw.log_row(response.headers["x-request-id"])
    return response


def upstream_calls(mock):
    return mock.stats()["served"].get("/v1/chat/completions", 0)


def test_the_same_request_twice_is_one_upstream_call_and_the_hit_costs_nothing(gw, mock):
    before = upstream_calls(mock)
    first = stored(gw, chat(gw, gw.key, content="Name three rivers in Europe."))
    second = chat(gw, gw.key, content="Name three rivers in Europe.")
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert (first.headers["x-gateway-cache"], second.headers["x-gateway-cache"]) == ("miss", "hit")
    assert upstream_calls(mock) == before + 1
    assert second.json()["choices"] == first.json()["choices"]
    paid, hit = gw.log_row(first.headers["x-request-id"]), gw.log_row(second.headers["x-request-id"])
    assert (hit["cache"], hit["cost_pico"], hit["cost_reporting_pico"]) == ("hit", 0, 0)
    assert hit["cache_saved_pico"] == paid["cost_reporting_pico"] > 0
    assert paid["cache"] == "miss" and hit["attempts"] == 0


def test_a_stream_served_from_the_cache_is_a_stream_the_sdk_reads(gw, mock):
    sdk = openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", temperature=0, messages=QUESTION)
    stored(gw, raw)
    first = raw.parse()
    before = upstream_calls(mock)
    stream = sdk.chat.completions.create(model="gpt-4o-mini", temperature=0, messages=QUESTION, stream=True,
                                         stream_options={"include_usage": True})
    text, usage = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    assert text == first.choices[0].message.content
    assert usage is not None and usage.total_tokens == first.usage.total_tokens
    assert upstream_calls(mock) == before, "the stream came from the cache"
    # A stream stored on a miss answers the JSON request after it.
    raw = sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", temperature=0, messages=[{"role": "user", "content": "Spell 'cache'."}], stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    stored(gw, raw)
    calls = upstream_calls(mock)
    again = chat(gw, gw.key, content="Spell 'cache'.")
    assert again.headers["x-gateway-cache"] == "hit", again.text
    assert again.json()["choices"][0]["message"]["content"] == streamed
    assert upstream_calls(mock) == calls


def test_no_cache_reaches_the_provider_and_keys_never_share(gw, mock):
    stored(gw, chat(gw, gw.key, content="What is 6 times 7?"))
    before = upstream_calls(mock)
    bypass = chat(gw, gw.key, content="What is 6 times 7?", headers={"cache-control": "no-cache"})
    assert bypass.headers["x-gateway-cache"] == "bypass"
    assert upstream_calls(mock) == before + 1
    other = gw.create_key()
    theirs = chat(gw, other, content="What is 6 times 7?")
    assert theirs.headers["x-gateway-cache"] == "miss"
    assert upstream_calls(mock) == before + 2
    sampled = chat(gw, gw.key, content="What is 6 times 7?", temperature=0.8)
    assert "x-gateway-cache" not in sampled.headers and upstream_calls(mock) == before + 3
