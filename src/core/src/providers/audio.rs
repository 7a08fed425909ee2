//! Audio (shared/providers-more.md §5.2, §5.3, §6.3, §6.4): transcriptions (`POST /v1/audio/transcriptions`, a
//! multipart upload) and speech (`POST /v1/audio/speech`, JSON in, audio bytes out).
//!
//! A connector turns a provider's transcription into one JSON shape, OpenAI's `verbose_json` as far as the
//! provider says it (`text`, and where known `language`, `duration`, `segments`, `words`, `vtt`, `usage`); the
//! gateway renders what the client asked for from it (`json`, `text`, `verbose_json`, `srt`, `vtt`), so every
//! provider answers every format. Speech is relayed as the provider's bytes with their content type.

use serde_json::{json, Map, Value};

use crate::log::Usage;

/// The `response_format` of a transcription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TranscriptFormat {
    Json,
    Text,
    VerboseJson,
    Srt,
    Vtt,
}

impl TranscriptFormat {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "json" => Self::Json,
            "text" => Self::Text,
            "verbose_json" => Self::VerboseJson,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            _ => return None,
        })
    }
}

/// An uploaded audio file.
#[derive(Debug)]
pub struct Upload {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A transcription request: the upload, the format asked for, and the other fields as sent (`language`,
/// `prompt`, `temperature`).
#[derive(Debug)]
pub struct Transcription {
    pub file: Upload,
    pub format: TranscriptFormat,
    pub fields: Vec<(String, String)>,
}

impl Transcription {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The answer in the format asked for, its content type, and its usage: the audio's length (from `duration`
/// or OpenAI's `usage.seconds`) and the tokens of token-priced models.
pub fn render(t: &Value, format: TranscriptFormat) -> (Vec<u8>, &'static str, Usage) {
    let text = t["text"].as_str().unwrap_or("").trim().to_owned();
    let seconds = t["duration"]
        .as_f64()
        .or_else(|| (t["usage"]["type"] == "duration").then(|| t["usage"]["seconds"].as_f64())?);
    let u = &t["usage"];
    let usage = Usage {
        audio_ms: seconds.map(|s| (s.max(0.0) * 1000.0).round() as u64),
        ..super::images::media_tokens(u)
    };
    let json_body = |v: Value| {
        (
            serde_json::to_vec(&v).unwrap_or_default(),
            crate::http::JSON,
            usage,
        )
    };
    match format {
        TranscriptFormat::Json => {
            let mut out = json!({"text": text});
            if u.is_object() {
                out["usage"] = u.clone();
            }
            json_body(out)
        }
        TranscriptFormat::Text => (text.into_bytes(), "text/plain; charset=utf-8", usage),
        TranscriptFormat::VerboseJson => {
            let mut out = json!({"task": "transcribe", "language": t.get("language").cloned().unwrap_or(json!("")),
                "duration": seconds.unwrap_or(0.0), "text": text});
            for k in ["segments", "words", "usage"] {
                if let Some(v) = t.get(k).filter(|v| !v.is_null()) {
                    out[k] = v.clone();
                }
            }
            json_body(out)
        }
        TranscriptFormat::Vtt => match t["vtt"].as_str() {
            Some(vtt) if vtt.trim_start().starts_with("WEBVTT") => {
                (vtt.as_bytes().to_vec(), "text/vtt; charset=utf-8", usage)
            }
            _ => (
                cues(t, &text, seconds, true).into_bytes(),
                "text/vtt; charset=utf-8",
                usage,
            ),
        },
        TranscriptFormat::Srt => (
            cues(t, &text, seconds, false).into_bytes(),
            "application/x-subrip; charset=utf-8",
            usage,
        ),
    }
}

/// A transcript as the events of a streamed transcription (§5.2): the text in one `transcript.text.delta`
/// (the gateway has the whole transcript when it answers), then `transcript.text.done` with the usage.
pub fn transcript_events(t: &Value) -> Vec<u8> {
    let text = t["text"].as_str().unwrap_or("").trim();
    let mut out = Vec::new();
    crate::sse::push_event(
        &mut out,
        None,
        &json!({"type": "transcript.text.delta", "delta": text}),
    );
    let mut done = json!({"type": "transcript.text.done", "text": text});
    if t["usage"].is_object() {
        done["usage"] = t["usage"].clone();
    }
    crate::sse::push_event(&mut out, None, &done);
    out
}

/// Speech as server-sent events (§5.3, `stream_format: "sse"`): the audio in base64 `speech.audio.delta`
/// events of up to 32 KiB of audio each, then `speech.audio.done`.
pub fn speech_events(audio: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in audio.chunks(32 * 1024) {
        let delta = json!({"type": "speech.audio.delta", "audio": crate::base64::encode(piece)});
        crate::sse::push_event(&mut out, None, &delta);
    }
    let done = json!({"type": "speech.audio.done", "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}});
    crate::sse::push_event(&mut out, None, &done);
    out
}

/// Subtitles from the segments (one cue for the whole text when the provider gave none).
fn cues(t: &Value, text: &str, seconds: Option<f64>, vtt: bool) -> String {
    let segments: Vec<(f64, f64, String)> = match t["segments"].as_array() {
        Some(s) if !s.is_empty() => s
            .iter()
            .map(|s| {
                (
                    s["start"].as_f64().unwrap_or(0.0),
                    s["end"].as_f64().unwrap_or(0.0),
                    s["text"].as_str().unwrap_or("").trim().to_owned(),
                )
            })
            .collect(),
        _ => vec![(0.0, seconds.unwrap_or(0.0), text.to_owned())],
    };
    let stamp = |s: f64| {
        let ms = (s.max(0.0) * 1000.0).round() as u64;
        let (h, m, sec, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        if vtt {
            format!("{h:02}:{m:02}:{sec:02}.{ms:03}")
        } else {
            format!("{h:02}:{m:02}:{sec:02},{ms:03}")
        }
    };
    let mut out = String::from(if vtt { "WEBVTT\n\n" } else { "" });
    for (i, (start, end, line)) in segments.iter().enumerate() {
        if !vtt {
            out.push_str(&format!("{}\n", i + 1));
        }
        out.push_str(&format!(
            "{} --> {}\n{line}\n\n",
            stamp(*start),
            stamp(*end)
        ));
    }
    out
}

/// An upload's form for an OpenAI-shaped `/audio/transcriptions`: `model`, `response_format`, the client's
/// other fields, then the file.
pub(crate) fn form(call: &Transcription, model: &str, response_format: &str) -> (String, Vec<u8>) {
    let mut fields = vec![
        ("model".to_owned(), model.to_owned()),
        ("response_format".to_owned(), response_format.to_owned()),
    ];
    fields.extend(call.fields.iter().cloned());
    let f = &call.file;
    crate::multipart::encode(&fields, ("file", &f.filename, &f.content_type, &f.bytes))
}

/// A provider's audio bytes with their content type: the one it sent when it is audio, else the one the
/// `response_format` asked for names.
pub fn speech_bytes(
    bytes: Vec<u8>,
    content_type: Option<String>,
    format: Option<&str>,
) -> (Vec<u8>, String) {
    let content_type = content_type
        .filter(|c| c.starts_with("audio/"))
        .unwrap_or_else(|| speech_content_type(format).to_owned());
    (bytes, content_type)
}

/// The content type of a speech `response_format` (OpenAI's names; `mp3` unless asked).
pub fn speech_content_type(format: Option<&str>) -> &'static str {
    match format.unwrap_or("mp3") {
        "opus" => "audio/ogg",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "pcm" => "audio/pcm",
        _ => "audio/mpeg",
    }
}

/// The speech formats OpenAI names.
pub const SPEECH_FORMATS: &[&str] = &["mp3", "opus", "aac", "flac", "wav", "pcm"];

/// A transcript from fields of a JSON object (Workers AI's Whisper output, SiliconFlow's `{text}`).
pub fn transcript(text: &Value, extra: &[(&str, &Value)]) -> Value {
    let mut out = Map::new();
    out.insert("text".into(), text.clone());
    for (k, v) in extra {
        if !v.is_null() {
            out.insert((*k).to_owned(), (*v).clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_is_rendered_from_one_transcript() {
        let t = json!({"text": " The beach was a popular spot.", "language": "english", "duration": 3.32,
            "segments": [{"id": 0, "start": 0.0, "end": 1.5, "text": " The beach"}, {"id": 1, "start": 1.5, "end": 3.32, "text": " was a popular spot."}]});
        let (body, ct, usage) = render(&t, TranscriptFormat::Json);
        assert_eq!((ct, usage.audio_ms), (crate::http::JSON, Some(3320)));
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"text": "The beach was a popular spot."})
        );
        let (body, ct, _) = render(&t, TranscriptFormat::Text);
        assert_eq!(
            (body.as_slice(), ct),
            (
                &b"The beach was a popular spot."[..],
                "text/plain; charset=utf-8"
            )
        );
        let (body, _, _) = render(&t, TranscriptFormat::Srt);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "1\n00:00:00,000 --> 00:00:01,500\nThe beach\n\n2\n00:00:01,500 --> 00:00:03,320\nwas a popular spot.\n\n"
        );
        let (body, _, _) = render(&t, TranscriptFormat::Vtt);
        assert!(String::from_utf8(body)
            .unwrap()
            .starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nThe beach"));
        let (body, _, _) = render(&t, TranscriptFormat::VerboseJson);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (v["task"].as_str(), v["duration"].as_f64()),
            (Some("transcribe"), Some(3.32))
        );
        // whisper-1's usage says the seconds; token-priced models say tokens.
        let (_, _, usage) = render(
            &json!({"text": "x", "usage": {"type": "duration", "seconds": 9}}),
            TranscriptFormat::Json,
        );
        assert_eq!(usage.audio_ms, Some(9000));
        let (_, _, usage) = render(
            &json!({"text": "x", "usage": {"type": "tokens", "input_tokens": 14, "output_tokens": 45}}),
            TranscriptFormat::Json,
        );
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens, usage.audio_ms),
            (14, 45, None)
        );
    }
}
