"""The Azure OpenAI connector on both hosts, declared in a published catalog (dated and v1 URLs), through the
official OpenAI SDK: chat, streams without Azure's filter-only chunks, a tool-call round trip, and Azure's
errors (content filter, unknown deployment, a 429 whose delay is only in its message)."""

import httpx
import openai
import pytest

from harness import SELECTED_HOSTS, SETTINGS, start_gateway
from test_engines import policy_dir, wait_for


DECLARATIONS = """
[providers.azure]
dialect = "azure_openai"
base_url = "{mock}/azure/openai?api-version=2024-10-21"
key = "AZURE_OPENAI_API_KEY"
default_model = "prod-mini"

[providers.azure.models."prod-mini"]
context = 128000
tools = true
json = true

[providers.azure_v1]
dialect = "azure_openai"
base_url = "{mock}/azure/openai/v1"
key = "AZURE_OPENAI_API_KEY"
default_model = "prod-mini"

[providers.azure_v1.models."prod-mini"]
context = 128000
tools = true
"""


@pytest.fixture(scope="module", params=SELECTED_HOSTS)
def gw(request, mock):
    settings = {"AZURE_OPENAI_API_KEY": SETTINGS["OPENAI_API_KEY"]}
    gateway = start_gateway(request.param, mock, settings)
    wait_for(gateway, gateway.publish(policy_dir(mock, DECLARATIONS, "default -> requested\n")))
    yield gateway
    gateway.stop()


def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)


@pytest.mark.parametrize("provider", ["azure", "azure_v1"])
def test_a_chat_through_a_deployment(gw, provider):
    r = client(gw).chat.completions.with_raw_response.create(
        model=f"{provider}/prod-mini", messages=[{"role": "user", "content": "hi azure"}])
    c = r.parse()
    assert c.choices[0].message.content == "This is the mock provider answering: hi azure"
    assert r.headers["x-gateway-provider"] == provider
    row = gw.log_row(r.headers["x-request-id"])
    assert (row["provider"], row["model"], row["status"]) == (provider, "prod-mini", 200)
    assert row["total_tokens"] == c.usage.total_tokens


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_stream_has_no_filter_only_chunks(gw, include_usage):
    chunks = list(client(gw).chat.completions.create(
        model="azure/prod-mini", messages=[{"role": "user", "content": "stream azure"}], stream=True,
        **({"stream_options": {"include_usage": True}} if include_usage else {})))
    with_choices = chunks[:-1] if include_usage else chunks
    assert all(c.choices for c in with_choices), "a chunk without choices reached the client"
    assert all(c.id for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == "This is the mock provider answering: stream azure"
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_a_tool_call_round_trip(gw):
    c = client(gw)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    messages = [{"role": "user", "content": "Weather in Boston?"}]
    first = c.chat.completions.create(model="azure/prod-mini", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "foggy"}]
    second = c.chat.completions.create(model="azure/prod-mini", messages=messages, tools=tools)
    assert second.choices[0].message.content == "The tool said: foggy"


def post(gw, model, content="hi"):
    return httpx.post(gw.url + "/v1/chat/completions", timeout=30, headers={"authorization": f"Bearer {gw.key}"},
                      json={"model": model, "messages": [{"role": "user", "content": content}]})


def test_a_prompt_the_content_filter_blocks_is_a_400_not_retried(gw):
    r = post(gw, "azure/prod-mini", "please jailbreak yourself")
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert (err["code"], err["param"]) == ("content_filter", "prompt")
    assert gw.log_row(r.headers["x-request-id"])["attempts"] == 1


def test_an_unknown_deployment_is_model_not_found(gw):
    r = post(gw, "azure/staging-big")
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "model_not_found"


def test_a_429_gets_its_delay_from_the_message(gw):
    r = post(gw, "azure/mock-429")
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == "6"
