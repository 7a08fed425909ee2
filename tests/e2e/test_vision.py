"""Images in chat for every provider that sees them. Gemini and Workers AI's vision models read images only
inline, so the gateway fetches images given by URL and sends their bytes (no redirects followed, image content
types only); OpenAI and Anthropic fetch URLs themselves, so those pass as they are. The mock's reply says how
many inline images reached it and their size."""

import anthropic
import openai
import pytest

PNG_BYTES = 69  # the mock's one-pixel PNG


def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=30)


def look(gw, model, url):
    return client(gw).chat.completions.create(model=model, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]}])


@pytest.mark.parametrize("model", ["gemini/gemini-3.8-flash", "workers_ai/@cf/google/gemma-4-26b-a4b-it"])
def test_an_image_by_url_reaches_an_inline_only_provider_as_its_bytes(gw, mock, model):
    answer = look(gw, model, f"{mock.url}/__mock/image.png").choices[0].message.content
    assert answer == f"This is the mock provider answering: What is this? [1 inline image(s), {PNG_BYTES} bytes]"


def test_a_provider_that_fetches_urls_gets_the_url(gw, mock):
    answer = look(gw, "openai/gpt-4o-mini", f"{mock.url}/__mock/image.png").choices[0].message.content
    assert answer == "This is the mock provider answering: What is this?", "not fetched, not inlined"


@pytest.mark.parametrize("path,why", [("/__mock/image-redirect", "redirects are not followed"),
                                      ("/__mock/not-an-image", "not an image"),
                                      ("/__mock/missing.png", "it answered 404")])
def test_what_cannot_be_fetched_is_a_400_naming_the_part(gw, mock, path, why):
    with pytest.raises(openai.BadRequestError) as e:
        look(gw, "gemini/gemini-3.8-flash", f"{mock.url}{path}")
    assert why in e.value.body["message"]
    assert e.value.body["param"] == "messages[0].content[1].image_url.url"


def test_an_anthropic_client_s_image_by_url_reaches_gemini_inline(gw, mock):
    message = anthropic.Anthropic(base_url=gw.url, api_key=gw.key, max_retries=0).messages.create(
        model="gemini/gemini-3.8-flash", max_tokens=100, messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "url", "url": f"{mock.url}/__mock/image.png"}}]}])
    assert message.content[-1].text.endswith(f"[1 inline image(s), {PNG_BYTES} bytes]")
