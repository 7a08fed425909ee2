"""Audio with the official `openai` SDK: transcriptions (a multipart upload) through OpenAI, SiliconFlow and
Workers AI, in every response format, and speech (audio bytes back) through OpenAI and Workers AI, each in the
provider's own wire format (the mock's dialect modules); priced by the minute or by the character. Fallback by
policy is in test_dispatch.py."""

import struct

import openai
import pytest


def wav(seconds: float) -> bytes:
    """A silent 16 kHz 16-bit mono WAV of this length."""
    data = b"\x00\x00" * int(16_000 * seconds)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, 16_000, 32_000, 2, 16) + b"data" + struct.pack("<I", len(data))
    return header + data


AUDIO = wav(2.0)
HEARD = f"The mock heard {len(AUDIO)} bytes of audio."
# (model, whether the provider says how long the audio was)
TRANSCRIBERS = [
    ("openai/whisper-1", True),
    ("openai/gpt-4o-mini-transcribe", False),
    ("siliconflow/FunAudioLLM/SenseVoiceSmall", False),
    ("workers_ai/@cf/openai/whisper-large-v3-turbo", True),
    ("workers_ai/@cf/openai/whisper", False),
]


def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.key, max_retries=0, timeout=60)


@pytest.mark.parametrize("model,timed", TRANSCRIBERS)
def test_each_transcriber_answers_openais_json_with_a_row(gw, model, timed):
    raw = client(gw).audio.transcriptions.with_raw_response.create(model=model, file=("speech.wav", AUDIO, "audio/wav"))
    assert raw.parse().text == HEARD
    row = gw.log_row(raw.headers["x-request-id"])
    assert (row["endpoint"], row["provider"], row["status"]) == ("transcriptions", model.split("/")[0], 200)
    if timed:
        assert 1990 <= row["audio_ms"] <= 3000, row["audio_ms"]


def test_whisper_is_priced_by_the_millisecond_of_audio(gw):
    raw = client(gw).audio.transcriptions.with_raw_response.create(model="openai/whisper-1",
                                                                   file=("speech.wav", AUDIO, "audio/wav"))
    row = gw.log_row(raw.headers["x-request-id"])
    # 0.006 USD a minute (policies/prices.toml): pico = ms × 6,000 × 10⁶ / 60,000, rounded up.
    assert row["cost_pico"] == -(-row["audio_ms"] * 6000 * 50 // 3)
    raw = client(gw).audio.transcriptions.with_raw_response.create(
        model="workers_ai/@cf/openai/whisper-large-v3-turbo", file=("speech.wav", AUDIO, "audio/wav"))
    row = gw.log_row(raw.headers["x-request-id"])
    assert row["cost_pico"] == -(-row["audio_ms"] * 510 * 50 // 3)
    # gpt-4o-mini-transcribe is priced by its tokens.
    raw = client(gw).audio.transcriptions.with_raw_response.create(model="openai/gpt-4o-mini-transcribe",
                                                                   file=("speech.wav", AUDIO, "audio/wav"))
    row = gw.log_row(raw.headers["x-request-id"])
    assert row["cost_pico"] == row["prompt_tokens"] * 3_000_000 + row["completion_tokens"] * 5_000_000 > 0


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini-transcribe", "siliconflow/FunAudioLLM/SenseVoiceSmall",
                                   "workers_ai/@cf/openai/whisper-large-v3-turbo"])
def test_every_format_from_every_provider(gw, model):
    c = client(gw)
    ask = {"model": model, "file": ("speech.wav", AUDIO, "audio/wav")}
    assert c.audio.transcriptions.create(response_format="text", **ask).strip() == HEARD
    srt = c.audio.transcriptions.create(response_format="srt", **ask)
    assert srt.startswith("1\n00:00:00,000 --> ") and "The mock heard" in srt
    vtt = c.audio.transcriptions.create(response_format="vtt", **ask)
    assert vtt.startswith("WEBVTT") and "The mock heard" in vtt
    verbose = c.audio.transcriptions.create(response_format="verbose_json", **ask)
    assert verbose.text == HEARD and verbose.model_extra["task"] == "transcribe"


def test_bad_uploads_are_clear_errors(gw):
    c = client(gw)
    with pytest.raises(openai.BadRequestError) as e:
        c.audio.transcriptions.create(model="openai/whisper-1", file=("a.wav", AUDIO, "audio/wav"),
                                      response_format="mp3")
    assert e.value.body["param"] == "response_format"
    with pytest.raises(openai.BadRequestError) as e:
        c.audio.transcriptions.create(model="deepseek/deepseek-flash", file=("a.wav", AUDIO, "audio/wav"))
    assert "no transcription endpoint" in e.value.body["message"]
    # Over MAX_AUDIO_BYTES (25 MiB unless set): a 413 that names the setting.
    with pytest.raises(openai.APIStatusError) as e:
        c.audio.transcriptions.create(model="openai/whisper-1", file=("long.wav", b"\x00" * (26 << 20), "audio/wav"))
    assert e.value.status_code == 413
    assert "MAX_AUDIO_BYTES" in e.value.body["message"]


@pytest.mark.parametrize("model,voice", [("openai/tts-1", "alloy"), ("workers_ai/@cf/myshell-ai/melotts", "alloy"),
                                         ("workers_ai/@cf/deepgram/aura-1", "angus")])
def test_speech_is_audio_bytes_with_a_row_counting_the_characters(gw, model, voice):
    raw = client(gw).audio.speech.with_raw_response.create(model=model, voice=voice, input="Hello there, 你好")
    assert raw.headers["content-type"] == "audio/mpeg"
    audio = raw.content
    assert audio.startswith(b"ID3") and "Hello there, 你好".encode() in audio
    row = gw.log_row(raw.headers["x-request-id"])
    assert (row["endpoint"], row["provider"], row["characters"]) == ("speech", model.split("/")[0], 15)
    if model != "workers_ai/@cf/myshell-ai/melotts":
        # tts-1 and aura-1: 15 USD per 1M characters.
        assert row["cost_pico"] == 15 * 15_000_000


def test_speech_formats_and_refusals(gw):
    c = client(gw)
    raw = c.audio.speech.with_raw_response.create(model="openai/tts-1", voice="alloy", input="x", response_format="wav")
    assert raw.headers["content-type"] == "audio/wav"
    with pytest.raises(openai.BadRequestError) as e:
        c.audio.speech.create(model="workers_ai/@cf/myshell-ai/melotts", voice="alloy", input="x", response_format="wav")
    assert "MP3 only" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        c.audio.speech.create(model="openai/tts-1", voice="alloy", input="x" * 4097)
    assert e.value.body["param"] == "input"


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini-transcribe", "workers_ai/@cf/openai/whisper-large-v3-turbo"])
def test_a_streamed_transcription_is_transcript_events(gw, model):
    stream = client(gw).audio.transcriptions.create(model=model, file=("speech.wav", AUDIO, "audio/wav"), stream=True)
    events = list(stream)
    assert [e.type for e in events] == ["transcript.text.delta", "transcript.text.done"]
    assert events[0].delta == HEARD and events[1].text == HEARD


def test_speech_as_server_sent_events(gw):
    import base64
    import json

    raw = client(gw).audio.speech.with_raw_response.create(model="openai/tts-1", voice="alloy", input="Hello",
                                                           stream_format="sse")
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in raw.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["speech.audio.delta", "speech.audio.done"]
    assert base64.b64decode(events[0]["audio"]) == b"ID3\x04\x00\x00\x00\x00\x00\x00Hello"
