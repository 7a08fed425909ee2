"""SiliconFlow and OpenRouter through the gateway, against the mock's routes for them (providers.md §4, §5)."""

import json

import httpx
import openai
import pytest


def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)


def ask(gw, model, **kw):
    return client(gw).chat.completions.create(model=model, messages=[{"role": "user", "content": "ping"}], **kw)


def stream_chunks(gw, model, include_usage):
    kw = {"stream_options": {"include_usage": True}} if include_usage else {}
    raw = client(gw).chat.completions.with_raw_response.create(
        model=model, stream=True, messages=[{"role": "user", "content": "ping"}], **kw)
    return raw.headers["x-request-id"], list(raw.parse())


def test_siliconflow_model_ids_with_slashes_and_eos(gw):
    resp = ask(gw, "siliconflow/Qwen/Qwen3-8B")
    assert resp.model == "Qwen/Qwen3-8B"
    assert resp.choices[0].message.content == "This is the mock provider answering: ping"
    eos = ask(gw, "siliconflow/mock-eos")
    assert eos.choices[0].finish_reason == "stop"
    raw = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {gw.key}"},
                     json={"model": "siliconflow/mock-eos", "messages": [{"role": "user", "content": "x"}]})
    assert raw.json()["choices"][0]["logprobs"] is None


@pytest.mark.parametrize("include_usage", [False, True])
def test_siliconflow_cumulative_usage_becomes_one_usage_chunk(gw, include_usage):
    request_id, chunks = stream_chunks(gw, "siliconflow/mock-eos", include_usage)
    with_choices = [c for c in chunks if c.choices]
    assert all(c.usage is None for c in with_choices)
    assert with_choices[-1].choices[0].finish_reason == "stop"
    usage = [c for c in chunks if not c.choices]
    assert len(usage) == (1 if include_usage else 0)
    if include_usage:
        assert usage[0].usage.completion_tokens == 7
    assert gw.log_row(request_id)["completion_tokens"] == 7


def test_siliconflow_errors_are_openai_errors(gw):
    with pytest.raises(openai.NotFoundError):
        ask(gw, "siliconflow/qwen3")
    with pytest.raises(openai.APIStatusError) as e:
        ask(gw, "siliconflow/mock-402")
    assert (e.value.status_code, e.value.body["type"]) == (402, "insufficient_quota")
    with pytest.raises(openai.InternalServerError) as e:
        ask(gw, "siliconflow/mock-503")
    assert e.value.status_code == 503


def test_siliconflow_embeddings(gw):
    emb = client(gw).embeddings.create(model="siliconflow/BAAI/bge-m3", input=["a", "b"])
    assert [d.index for d in emb.data] == [0, 1]


def test_openrouter_chat_carries_attribution_headers(gw):
    resp = ask(gw, "openrouter/openai/gpt-5.2")
    assert resp.choices[0].message.content == "This is the mock provider answering: ping"
    assert resp.model_extra["attribution"] == {"referer": "https://example.com/app", "title": "Gateway E2E"}


@pytest.mark.parametrize("include_usage", [False, True])
def test_openrouter_usage_chunk_only_when_asked(gw, include_usage):
    request_id, chunks = stream_chunks(gw, "openrouter/openai/gpt-5.2", include_usage)
    assert len([c for c in chunks if not c.choices]) == (1 if include_usage else 0)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "This is the mock provider answering: ping"
    assert gw.log_row(request_id)["total_tokens"] > 0


def test_openrouter_mid_stream_error_is_an_openai_error_event(gw):
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {gw.key}"},
                   json={"model": "openrouter/mock-error-mid", "stream": True,
                         "messages": [{"role": "user", "content": "x"}]}, timeout=30)
    events = [e[len("data: "):] for e in r.text.strip().split("\n\n") if e.startswith("data: ")]
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert set(last) == {"error"} and last["error"]["type"] == "rate_limit_error"
    assert gw.log_row(r.headers["x-request-id"])["truncated"] == 1
    with pytest.raises(openai.APIError):
        for _ in ask(gw, "openrouter/mock-error-mid", stream=True):
            pass


def test_openrouter_errors(gw):
    with pytest.raises(openai.APIStatusError) as e:
        ask(gw, "openrouter/mock-402")
    assert e.value.status_code == 402
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {gw.key}"},
                   json={"model": "openrouter/mock-429", "messages": [{"role": "user", "content": "x"}]})
    assert (r.status_code, r.headers.get("retry-after")) == (429, "2")
