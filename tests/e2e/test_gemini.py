"""Gemini's native API through the gateway (providers.md §3), with the OpenAI SDK, against the mock's Gemini route."""

import json

import httpx
import openai
import pytest

WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                             "parameters": {"type": "object",
                                                            "properties": {"city": {"type": "string"}}}}}]


def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)


def ask(gw, **kw):
    kw.setdefault("messages", [{"role": "user", "content": "ping"}])
    return client(gw).chat.completions.create(model=kw.pop("model", "gemini/gemini-3.8-flash"), **kw)


def test_chat_is_translated_to_and_from_generate_content(gw):
    resp = ask(gw, messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "ping"}])
    assert resp.choices[0].message.content == "This is the mock provider answering: ping"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.id.startswith("chatcmpl-MockResp")
    assert resp.usage.completion_tokens_details.reasoning_tokens == 4


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_without_done_upstream_ends_with_done(gw, include_usage):
    body = {"model": "gemini/gemini-3.8-flash", "stream": True, "messages": [{"role": "user", "content": "ping"}]}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {gw.key}"}, json=body, timeout=30)
    events = [e[len("data: "):] for e in r.text.strip().split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "This is the mock provider answering: ping"
    assert [c for c in chunks if c["choices"]][-1]["choices"][0]["finish_reason"] == "stop"
    assert len([c for c in chunks if not c["choices"]]) == (1 if include_usage else 0)
    row = gw.log_row(r.headers["x-request-id"])
    assert (row["truncated"], row["reasoning_tokens"]) == (0, 4)


def test_tool_call_round_trip_keeps_the_thought_signature(gw):
    first = ask(gw, messages=[{"role": "user", "content": "Weather in Boston?"}], tools=WEATHER)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Boston"})
    # The mock refuses a replayed call without its signature, so this only passes if the id carried it back.
    second = ask(gw, tools=WEATHER, messages=[
        {"role": "user", "content": "Weather in Boston?"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"tempC": 21})}])
    assert second.choices[0].message.content == 'The tool said: {"tempC":21}'


def test_streamed_tool_call_has_index_id_name_and_arguments(gw):
    chunks = list(ask(gw, stream=True, tools=WEATHER, messages=[{"role": "user", "content": "Weather?"}]))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(calls) == 1
    assert (calls[0].index, calls[0].function.name) == (0, "get_weather")
    assert json.loads(calls[0].function.arguments) == {"city": "Boston"}
    assert calls[0].id.startswith("call_")
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason == "tool_calls"


def test_blocked_prompt_is_a_content_filter_answer(gw):
    resp = ask(gw, model="gemini/mock-blocked")
    assert (resp.choices[0].finish_reason, resp.choices[0].message.content) == ("content_filter", None)


def test_quota_error_carries_the_retry_delay(gw):
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {gw.key}"},
                   json={"model": "gemini/mock-429", "messages": [{"role": "user", "content": "x"}]})
    assert (r.status_code, r.headers.get("retry-after")) == (429, "35")
    with pytest.raises(openai.RateLimitError):
        ask(gw, model="gemini/mock-429")


def test_images_go_inline(gw):
    ok = ask(gw, messages=[{"role": "user", "content": [
        {"type": "text", "text": "ping"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
    assert ok.choices[0].message.content.startswith("This is the mock provider answering: ping [1 inline image(s)")
    # Images by URL are fetched by the gateway (test_vision.py); one that is not there is a 400.
    with pytest.raises(openai.BadRequestError):
        ask(gw, messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/a.png"}}]}])


def test_gemini_embeddings(gw):
    emb = client(gw).embeddings.create(model="gemini/gemini-embedding-001", input=["a", "b"], encoding_format="float")
    assert [len(d.embedding) for d in emb.data] == [8, 8]
