"""Conformance: the official `openai` Python package, unchanged, with base_url pointed at the gateway."""

import openai
import pytest


def client(gw, key=None):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key or gw.key, max_retries=0, timeout=30)


def test_sdk_chat(gw):
    resp = client(gw).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}])
    assert resp.choices[0].message.content == "This is the mock provider answering: ping"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.completion_tokens == 7


def test_sdk_stream(gw):
    stream = client(gw).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "This is the mock provider answering: ping"
    assert chunks[-1].usage.completion_tokens == 7
    assert len({c.id for c in chunks}) == 1


def test_sdk_stream_cut_midway_raises(gw):
    stream = client(gw).chat.completions.create(model="mock-cut", messages=[{"role": "user", "content": "x"}],
                                                stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_sdk_bad_key_raises_authentication_error(gw):
    with pytest.raises(openai.AuthenticationError) as e:
        client(gw, key="gw-wrong").chat.completions.create(model="gpt-4o-mini",
                                                             messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 401


def test_sdk_rate_limit_raises_rate_limit_error(gw):
    with pytest.raises(openai.RateLimitError):
        client(gw).chat.completions.create(model="mock-429", messages=[{"role": "user", "content": "x"}])


def test_sdk_models_and_embeddings(gw):
    c = client(gw)
    assert "openai/gpt-4o-mini" in [m.id for m in c.models.list()]
    emb = c.embeddings.create(model="text-embedding-3-small", input="hello")
    assert len(emb.data[0].embedding) == 8
