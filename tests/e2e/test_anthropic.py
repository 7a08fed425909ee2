"""The Anthropic connector on both hosts, through the official OpenAI SDK: chat, streams, tool-call round trips
with extended thinking carried across the tool turn (the mock checks the signature as Anthropic does), prompt
cache usage, and Anthropic's errors as OpenAI's."""

import json

import httpx
import openai
import pytest

MODEL = "anthropic/claude-sonnet-4-6"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)


def test_a_chat_answer_is_an_openai_completion_with_usage_and_a_row(gw):
    r = client(gw).chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi claude"}])
    c = r.parse()
    assert c.object == "chat.completion" and c.choices[0].finish_reason == "stop"
    assert c.choices[0].message.content == "This is the mock provider answering: hi claude"
    assert c.usage.prompt_tokens > 0 and c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens
    row = gw.log_row(r.headers["x-request-id"])
    assert (row["provider"], row["model"], row["status"]) == ("anthropic", "claude-sonnet-4-6", 200)
    assert row["completion_tokens"] == c.usage.completion_tokens


def test_a_stream_arrives_as_openai_chunks_with_usage(gw):
    chunks = list(client(gw).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "stream please"}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "This is the mock provider answering: stream please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_thinking_is_carried_across_a_tool_turn(gw):
    c = client(gw)
    messages = [{"role": "user", "content": "Weather in Boston?"}]
    first = c.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, reasoning_effort="low")
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls[0].function.name == "get_weather"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Boston"}
    assert message.model_extra["reasoning_content"]
    details = message.model_extra["reasoning_details"]
    assert details[0]["type"] == "thinking" and details[0]["signature"]
    # The SDK's message, sent back as it came (extra fields included), continues the turn with thinking on.
    follow = messages + [message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "sunny, 21 C"}]
    second = c.chat.completions.create(model=MODEL, messages=follow, tools=TOOLS, reasoning_effort="low")
    assert second.choices[0].message.content == "The tool said: sunny, 21 C"
    # A tampered signature is Anthropic's 400, passed on as the client's error.
    tampered = json.loads(json.dumps(follow))
    tampered[1]["reasoning_details"][0]["signature"] = "forged"
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model=MODEL, messages=tampered, tools=TOOLS, reasoning_effort="low")
    assert "Invalid `signature`" in e.value.message
    # A client that drops the thinking blocks still gets its answer: the turn goes on without thinking.
    bare = json.loads(json.dumps(follow))
    del bare[1]["reasoning_details"]
    third = c.chat.completions.create(model=MODEL, messages=bare, tools=TOOLS, reasoning_effort="low")
    assert third.choices[0].message.content == "The tool said: sunny, 21 C"


def test_a_streamed_tool_call_with_thinking_gives_the_signed_blocks_to_send_back(gw):
    c = client(gw)
    messages = [{"role": "user", "content": "Weather in Boston?"}]
    chunks = list(c.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, reasoning_effort="low",
                                            stream=True))
    reasoning = "".join((ch.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                        for ch in chunks if ch.choices)
    details = [d for ch in chunks if ch.choices
               for d in (ch.choices[0].delta.model_extra or {}).get("reasoning_details") or []]
    calls = [tc for ch in chunks if ch.choices for tc in ch.choices[0].delta.tool_calls or []]
    assert reasoning and details and details[0]["signature"]
    call_id = calls[0].id
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert json.loads(arguments) == {"city": "Boston"}
    follow = messages + [
        {"role": "assistant", "content": None, "reasoning_details": details, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "rainy"}]
    answer = c.chat.completions.create(model=MODEL, messages=follow, tools=TOOLS, reasoning_effort="low")
    assert answer.choices[0].message.content == "The tool said: rainy"


def test_prompt_cache_reads_and_writes_are_parts_of_the_prompt(gw):
    r = client(gw).chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "cache me"}],
        extra_body={"cache_control": {"type": "ephemeral"}})
    assert r.parse().usage.prompt_tokens_details.cached_tokens == 10
    assert r.http_response.json()["usage"]["prompt_tokens_details"]["cache_write_tokens"] == 5
    row = gw.log_row(r.headers["x-request-id"])
    assert (row["cached_tokens"], row["cache_write_tokens"]) == (10, 5)
    assert row["prompt_tokens"] >= 15 and row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]


@pytest.mark.parametrize("fault,status,code", [
    ("mock-529", 503, "upstream_overloaded"),
    ("mock-429", 429, "rate_limit_exceeded"),
    ("mock-401", 502, "upstream_authentication_failed"),
    ("mock-404", 404, "model_not_found"),
])
def test_anthropic_errors_are_openai_errors(gw, fault, status, code):
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=30, headers={"authorization": f"Bearer {gw.key}"},
                   json={"model": f"anthropic/{fault}", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    if status == 429:
        assert r.headers["retry-after"] == "1"


def test_an_overloaded_stream_mid_way_ends_with_an_error_event(gw):
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=30, headers={"authorization": f"Bearer {gw.key}"},
                   json={"model": "anthropic/mock-error-mid", "stream": True,
                         "messages": [{"role": "user", "content": "hi"}]})
    events = [b[len("data: "):] for b in r.text.strip().split("\n\n") if b.startswith("data: ")]
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "upstream_overloaded"
