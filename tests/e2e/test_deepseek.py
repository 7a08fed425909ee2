"""DeepSeek through the gateway, against the mock's DeepSeek route (providers.md §2), with the OpenAI SDK."""

import openai
import pytest


def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)


def test_reasoning_content_comes_through_and_queue_blank_lines_do_not(gw):
    resp = client(gw).chat.completions.create(model="deepseek/deepseek-flash",
                                              messages=[{"role": "user", "content": "ping"}])
    msg = resp.choices[0].message
    assert msg.content == "This is the mock provider answering: ping"
    assert msg.model_extra["reasoning_content"] == "Let me think."
    assert resp.usage.completion_tokens_details.reasoning_tokens == 3


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_is_openai_shaped_with_reasoning_deltas(gw, include_usage):
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    raw = client(gw).chat.completions.with_raw_response.create(
        model="deepseek/deepseek-flash", stream=True, messages=[{"role": "user", "content": "ping"}], **kwargs)
    request_id = raw.headers["x-request-id"]
    chunks = list(raw.parse())
    choices = [c for c in chunks if c.choices]
    reasoning = "".join(c.choices[0].delta.model_extra.get("reasoning_content") or "" for c in choices)
    content = "".join(c.choices[0].delta.content or "" for c in choices)
    assert (reasoning, content) == ("Let me think.", "This is the mock provider answering: ping")
    assert choices[-1].choices[0].finish_reason == "stop"
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == (1 if include_usage else 0)
    assert all(c.usage is None for c in choices), "usage is moved off the finish chunk"
    if include_usage:
        assert usage_chunks[0].usage.completion_tokens == 10
    row = gw.log_row(request_id)
    assert (row["provider"], row["model"], row["reasoning_tokens"], row["truncated"]) == ("deepseek", "deepseek-flash", 3, 0)


def test_insufficient_resources_mid_stream_raises(gw):
    stream = client(gw).chat.completions.create(model="deepseek/mock-insufficient", stream=True,
                                                messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_exhausted_balance_is_402_and_unknown_model_is_404(gw):
    with pytest.raises(openai.APIStatusError) as e:
        client(gw).chat.completions.create(model="deepseek/mock-402", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 402
    assert e.value.body["type"] == "insufficient_quota"
    with pytest.raises(openai.NotFoundError):
        client(gw).chat.completions.create(model="deepseek/r9-preview", messages=[{"role": "user", "content": "x"}])


def test_deepseek_has_no_embeddings(gw):
    with pytest.raises(openai.BadRequestError):
        client(gw).embeddings.create(model="deepseek/deepseek-flash", input="x")
