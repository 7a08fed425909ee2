"""The Anthropic Messages API (`/v1/messages`, with the official `anthropic` SDK) and the Responses API
(`/v1/responses`, with the official `openai` SDK's `responses` client) in front of providers that speak neither:
translated to chat, routed, priced and logged as chat is, answered in the client's own API. Fallback by policy
for both is in test_dispatch.py, which has a policy of its own."""

import json

import anthropic
import openai
import pytest

WEATHER_ANTHROPIC = [{"name": "get_weather", "description": "Current weather",
                      "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
WEATHER_RESPONSES = [{"type": "function", "name": "get_weather", "description": "Current weather",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
# Neither provider speaks Anthropic's or the Responses API; the mock answers each in its own dialect.
MODELS = ["openai/gpt-4o-mini", "deepseek/deepseek-flash", "gemini/gemini-3.8-flash"]


def claude(gw, **kwargs):
    # As Anthropic's SDK is pointed at a gateway: the base URL without /v1, the key in x-api-key.
    return anthropic.Anthropic(base_url=gw.url, api_key=gw.key, max_retries=0, timeout=30, **kwargs)


def oai(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)


@pytest.mark.parametrize("model", MODELS)
def test_messages_are_answered_in_anthropics_shape_by_each_provider(gw, model):
    raw = claude(gw).messages.with_raw_response.create(
        model=model, max_tokens=200, system="Be brief.", messages=[{"role": "user", "content": "ping"}])
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant"
    text = "".join(b.text for b in msg.content if b.type == "text")
    assert text == "This is the mock provider answering: ping"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    row = gw.log_row(raw.headers["x-request-id"])
    provider = model.split("/")[0]
    assert (row["endpoint"], row["provider"], row["status"]) == ("messages", provider, 200)
    assert row["prompt_tokens"] == msg.usage.input_tokens + msg.usage.cache_read_input_tokens
    assert row["completion_tokens"] == msg.usage.output_tokens
    assert row["cost_pico"] > 0, "priced like chat"


def test_deepseeks_reasoning_is_a_thinking_block_in_a_stream(gw):
    with claude(gw).messages.stream(model="deepseek/deepseek-flash", max_tokens=200,
                                    messages=[{"role": "user", "content": "ping"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "This is the mock provider answering: ping"
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think."
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 10, "the real count arrives with message_delta"


@pytest.mark.parametrize("stream", [False, True])
def test_a_coding_agent_tool_loop_to_deepseek_keeps_its_reasoning(gw, stream):
    """A coding agent's conversation: the assistant turns go back exactly as received (thinking block first).
    The mock DeepSeek refuses a tool-call turn whose reasoning_content is not the text it gave (a 400)."""
    c = claude(gw)

    def ask(history):
        kwargs = {"model": "deepseek/deepseek-flash", "max_tokens": 500, "tools": WEATHER_ANTHROPIC,
                  "messages": history}
        if stream:
            with c.messages.stream(**kwargs) as s:
                return s.get_final_message()
        return c.messages.create(**kwargs)

    history = [{"role": "user", "content": "What's the weather in Boston?"}]
    first = ask(history)
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    assert first.content[0].thinking == "Let me think."
    call = first.content[1]
    assert (call.name, call.input) == ("get_weather", {"city": "Boston"})
    history += [{"role": "assistant", "content": first.content},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                              "content": json.dumps({"tempC": 21})}]}]
    second = ask(history)
    assert second.stop_reason == "end_turn"
    assert "tempC" in second.content[-1].text and "21" in second.content[-1].text
    # A later turn: the earlier tool-call turn's reasoning must still be there.
    history += [{"role": "assistant", "content": second.content},
                {"role": "user", "content": "And in Paris?"}]
    third = ask(history)
    assert third.stop_reason == "tool_use"


def test_messages_errors_are_anthropics_and_the_sdk_raises_the_right_exception(gw):
    with pytest.raises(anthropic.AuthenticationError) as e:
        anthropic.Anthropic(base_url=gw.url, api_key="gw-not-a-key", max_retries=0).messages.create(
            model="openai/gpt-4o-mini", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        claude(gw).messages.create(model="openai/gpt-4o-mini", max_tokens=10, messages=[
            {"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                                          "data": "x"}}]}])
    assert "`document` blocks are not supported" in e.value.body["error"]["message"]
    # A provider's failure mid-stream is an `error` event, which the SDK raises.
    with pytest.raises(anthropic.APIStatusError):
        with claude(gw).messages.stream(model="openai/mock-error-mid", max_tokens=10,
                                        messages=[{"role": "user", "content": "x"}]) as s:
            for _ in s:
                pass


@pytest.mark.parametrize("model", MODELS)
def test_responses_are_answered_as_response_objects_by_each_provider(gw, model):
    raw = oai(gw).responses.with_raw_response.create(model=model, instructions="Be brief.", input="ping")
    r = raw.parse()
    assert r.object == "response" and r.status == "completed"
    assert r.output_text == "This is the mock provider answering: ping"
    assert r.usage.input_tokens > 0 and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    row = gw.log_row(raw.headers["x-request-id"])
    assert (row["endpoint"], row["provider"]) == ("responses", model.split("/")[0])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (r.usage.input_tokens, r.usage.output_tokens)
    assert row["cost_pico"] > 0


def test_a_responses_stream_is_read_by_the_sdks_stream_helper(gw):
    with oai(gw).responses.stream(model="deepseek/deepseek-flash", input="ping") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "This is the mock provider answering: ping"
    assert final.output_text == "This is the mock provider answering: ping"
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == "Let me think."
    assert final.usage.output_tokens == 10


@pytest.mark.parametrize("stream", [False, True])
def test_a_responses_tool_loop_to_deepseek_sends_the_output_back_as_input(gw, stream):
    c = oai(gw)

    def ask(items):
        kwargs = {"model": "deepseek/deepseek-flash", "tools": WEATHER_RESPONSES, "input": items}
        if stream:
            with c.responses.stream(**kwargs) as s:
                return s.get_final_response()
        return c.responses.create(**kwargs)

    items = [{"role": "user", "content": "What's the weather in Boston?"}]
    first = ask(items)
    calls = [o for o in first.output if o.type == "function_call"]
    assert [o.type for o in first.output] == ["reasoning", "function_call"]
    assert (calls[0].name, json.loads(calls[0].arguments)) == ("get_weather", {"city": "Boston"})
    # The whole output goes back (the reasoning item too), then the call's result.
    items += [o.model_dump(exclude_none=True) for o in first.output]
    items.append({"type": "function_call_output", "call_id": calls[0].call_id, "output": json.dumps({"tempC": 21})})
    second = ask(items)
    assert "tempC" in second.output_text and "21" in second.output_text


def test_stateful_responses_features_are_clear_400s_and_404s(gw):
    c = oai(gw)
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model="openai/gpt-4o-mini", input="and then?", previous_response_id="resp_123")
    assert e.value.body["param"] == "previous_response_id"
    assert "stores no responses" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model="openai/gpt-4o-mini", input="x", tools=[{"type": "web_search"}])
    assert "hosted tools" in e.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve("resp_123")
    # `store` is accepted and answered false: nothing is kept.
    assert c.responses.create(model="openai/gpt-4o-mini", input="x", store=True).store is False


def test_count_tokens_answers_the_sdk_with_the_gateways_estimate(gw):
    c = claude(gw)
    short = c.messages.count_tokens(model="deepseek/deepseek-flash", messages=[{"role": "user", "content": "ping"}])
    longer = c.messages.count_tokens(model="deepseek/deepseek-flash", system="Be brief. " * 50,
                                     messages=[{"role": "user", "content": "ping"}])
    assert 0 < short.input_tokens < longer.input_tokens
