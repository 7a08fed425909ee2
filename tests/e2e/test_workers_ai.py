"""Cloudflare Workers AI over REST through the gateway (providers.md §6), against the mock's Workers AI route."""

import json

import httpx
import openai
import pytest

MODEL = "workers_ai/@cf/meta/llama-3.1-8b-instruct"


def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)


def ask(gw, model=MODEL, **kw):
    kw.setdefault("messages", [{"role": "user", "content": "ping"}])
    return client(gw).chat.completions.create(model=model, **kw)


def test_envelope_answer_becomes_a_chat_completion(gw):
    resp = ask(gw)
    assert resp.choices[0].message.content == "This is the mock provider answering: ping"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.completion_tokens == 7


def test_legacy_tool_calls_get_ids_and_string_arguments(gw):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    resp = ask(gw, tools=tools)
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Boston"})
    assert call.id.startswith("call_")


@pytest.mark.parametrize("include_usage", [False, True])
def test_native_stream_becomes_openai_chunks(gw, include_usage):
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "ping"}]}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {gw.key}"}, json=body, timeout=30)
    events = [e[len("data: "):] for e in r.text.strip().split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all("p" not in c for c in chunks), "padding is not forwarded"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "This is the mock provider answering: ping"
    assert [c for c in chunks if c["choices"]][-1]["choices"][0]["finish_reason"] == "stop"
    assert len([c for c in chunks if not c["choices"]]) == (1 if include_usage else 0)
    assert gw.log_row(r.headers["x-request-id"])["completion_tokens"] == 7


def test_envelope_errors(gw):
    with pytest.raises(openai.NotFoundError):
        ask(gw, model="workers_ai/llama-typo")
    with pytest.raises(openai.RateLimitError):
        ask(gw, model="workers_ai/mock-429")
    with pytest.raises(openai.APIStatusError) as e:
        ask(gw, model="workers_ai/mock-402")
    assert (e.value.status_code, e.value.body["type"]) == (402, "insufficient_quota")
    # An unsuccessful envelope with HTTP 200 is still an error.
    with pytest.raises(openai.InternalServerError) as e:
        ask(gw, model="workers_ai/mock-200-fail")
    assert e.value.status_code == 503


def test_workers_ai_embeddings(gw):
    emb = client(gw).embeddings.create(model="workers_ai/@cf/baai/bge-m3", input=["a", "b"], encoding_format="float")
    assert [len(d.embedding) for d in emb.data] == [8, 8]
