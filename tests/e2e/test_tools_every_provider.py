"""The same app code, a tool-call round trip, against every provider: only the model string changes."""

import json

import openai
import pytest

WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                             "parameters": {"type": "object",
                                                            "properties": {"city": {"type": "string"}}}}}]
MODELS = ["gpt-4o-mini", "deepseek/deepseek-flash", "siliconflow/Qwen/Qwen3-8B", "openrouter/openai/gpt-5.2",
          "gemini/gemini-3.8-flash", "workers_ai/@cf/meta/llama-3.3-70b-instruct-fp8-fast"]


@pytest.mark.parametrize("model", MODELS)
def test_tool_call_round_trip(gw, model):
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)
    history = [{"role": "user", "content": "What's the weather in Boston?"}]
    first = c.chat.completions.create(model=model, messages=history, tools=WEATHER)
    assert first.choices[0].finish_reason == "tool_calls", first
    call = first.choices[0].message.tool_calls[0]
    assert call.id and call.type == "function"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Boston"})
    # What an app sends back: the assistant turn as received (DeepSeek's reasoning_content included) and the result.
    history.append(first.choices[0].message.model_dump(exclude_none=True))
    history.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"tempC": 21})})
    second = c.chat.completions.create(model=model, messages=history, tools=WEATHER)
    assert second.choices[0].finish_reason == "stop"
    assert "tempC" in second.choices[0].message.content and "21" in second.choices[0].message.content
