"""Image generation (`POST /v1/images/generations`) with the official `openai` SDK, through every provider that
makes images, each in its own wire format (the mock's dialect modules): base64 pictures, raw bytes made base64,
URLs, and a `data:` URL when a URL is asked of a provider that sends pictures. Fallback by policy is in
test_dispatch.py."""

import base64

import openai
import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# (model, what the provider gives back, priced?)
MODELS = [
    ("openai/gpt-image-1", "b64_json", True),
    ("openai/dall-e-3", "url", True),
    ("siliconflow/Kwai-Kolors/Kolors", "url", False),
    ("gemini/gemini-2.5-flash-image", "b64_json", True),
    ("workers_ai/@cf/black-forest-labs/flux-1-schnell", "b64_json", True),
    ("workers_ai/@cf/stabilityai/stable-diffusion-xl-base-1.0", "b64_json", False),
]


def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)


@pytest.mark.parametrize("model,gives,priced", MODELS)
def test_each_image_provider_answers_in_openais_shape_with_a_priced_row(gw, model, gives, priced):
    raw = client(gw).images.with_raw_response.generate(model=model, prompt="a lighthouse at dusk", size="1024x1024")
    images = raw.parse()
    assert len(images.data) == 1
    if gives == "b64_json":
        assert base64.b64decode(images.data[0].b64_json).startswith(PNG_MAGIC)
    else:
        assert images.data[0].url.startswith("https://")
    row = gw.log_row(raw.headers["x-request-id"])
    assert (row["endpoint"], row["provider"], row["status"], row["images"]) == ("images", model.split("/")[0], 200, 1)
    if priced:
        assert row["cost_pico"] > 0
        assert raw.headers["x-gateway-cost"].endswith("USD")


def test_gpt_image_models_are_priced_by_their_tokens_and_make_n_images(gw):
    raw = client(gw).images.with_raw_response.generate(model="openai/gpt-image-1", prompt="two cats", n=2)
    assert len(raw.parse().data) == 2
    row = gw.log_row(raw.headers["x-request-id"])
    assert (row["images"], row["completion_tokens"]) == (2, 2112)
    # 5 USD per 1M input tokens, 40 per 1M output tokens (policies/prices.toml).
    assert row["cost_pico"] == row["prompt_tokens"] * 5_000_000 + 2112 * 40_000_000


def test_a_url_asked_of_a_provider_that_sends_pictures_is_a_data_url(gw):
    images = client(gw).images.generate(model="workers_ai/@cf/stabilityai/stable-diffusion-xl-base-1.0",
                                        prompt="a lighthouse", response_format="url")
    head, data = images.data[0].url.split(",", 1)
    assert head == "data:image/png;base64"
    assert base64.b64decode(data).startswith(PNG_MAGIC)


def test_refusals_and_impossible_asks_are_clear_400s(gw):
    c = client(gw)
    for model in ["openai/gpt-image-1", "gemini/gemini-2.5-flash-image"]:
        with pytest.raises(openai.BadRequestError) as e:
            c.images.generate(model=model, prompt="something forbidden")
        assert e.value.body["code"] == "moderation_blocked", e.value.body
    with pytest.raises(openai.BadRequestError) as e:
        c.images.generate(model="siliconflow/Kwai-Kolors/Kolors", prompt="x", response_format="b64_json")
    assert "URLs only" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        c.images.generate(model="workers_ai/@cf/black-forest-labs/flux-1-schnell", prompt="x", n=2)
    assert e.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError) as e:
        c.images.generate(model="deepseek/deepseek-flash", prompt="x")
    assert "no image generation endpoint" in e.value.body["message"]


@pytest.mark.parametrize("model", ["openai/gpt-image-1", "openai/dall-e-3", "workers_ai/@cf/black-forest-labs/flux-1-schnell"])
def test_a_streamed_image_is_completed_events(gw, model):
    events = list(client(gw).images.generate(model=model, prompt="a lighthouse", stream=True))
    assert [e.type for e in events] == ["image_generation.completed"]
    assert base64.b64decode(events[0].b64_json).startswith(PNG_MAGIC)


def test_a_url_only_provider_cannot_stream(gw):
    with pytest.raises(openai.BadRequestError) as e:
        list(client(gw).images.generate(model="siliconflow/Kwai-Kolors/Kolors", prompt="x", stream=True))
    assert "URLs only" in e.value.body["message"]
