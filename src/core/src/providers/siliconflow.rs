//! SiliconFlow 硅基流动 (providers.md §5): OpenAI-shaped requests, with these differences:
//! - Streams carry cumulative `usage` on every chunk: it is recorded, removed from the chunks, and sent once
//!   as an OpenAI usage chunk after the finish chunk; `finish_reason` `""` means none and `eos` means `stop`.
//! - Answers have no `logprobs` key and may finish with `eos`; both are normalized.
//! - Errors are not OpenAI-shaped: `{"code":20012,"message":…}`, or a bare JSON string such as `"Invalid token"`.
//! - Model ids contain slashes (`Pro/deepseek-ai/DeepSeek-V3.2`), passed verbatim.
//! - Images (`/images/generations`): `size` is sent as `image_size` and `n` as `batch_size`; the answer is
//!   `{"images": [{"url": …}], "timings": …, "seed": …}`, URLs only (valid for an hour), so `b64_json` is refused
//!   before the call.
//! - Transcriptions (`/audio/transcriptions`, FunAudioLLM/SenseVoiceSmall): OpenAI's multipart upload; the answer
//!   is `{"text": …}` only (no duration).

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::log::Usage;
use crate::ports::UpstreamRequest;
use crate::providers::{
    deepseek, images, openai, Answer, Connector, ErrorResponse, ProviderConfig, StreamEvent,
};

/// OpenAI request fields SiliconFlow does not document.
const DROPPED_FIELDS: &[&str] = &[
    "store",
    "metadata",
    "service_tier",
    "stream_options",
    "modalities",
];

pub struct SiliconFlow;

impl Connector for SiliconFlow {
    type StreamState = ();

    fn chat_request(
        &self,
        p: &ProviderConfig,
        mut body: Map<String, Value>,
        model: &str,
        _stream: bool,
    ) -> Result<UpstreamRequest, ApiError> {
        openai::compatible_body(&mut body, model, DROPPED_FIELDS);
        Ok(openai::post(p, "/chat/completions", &body))
    }

    fn embeddings_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        Ok(openai::embeddings_request(p, body, model))
    }

    /// `/images/generations` in SiliconFlow's own shape: `image_size`, `batch_size`, URLs back.
    fn images_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        images_request(p, &body, model)
    }

    fn images_answer(
        &self,
        p: &ProviderConfig,
        answer: super::Media,
        created: u64,
    ) -> Result<Value, ApiError> {
        images_answer(p, answer, created)
    }

    /// `/audio/transcriptions` (SenseVoice): a multipart upload like OpenAI's; the answer is `{"text": …}`.
    fn transcription_request(
        &self,
        p: &ProviderConfig,
        call: &crate::providers::audio::Transcription,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        let url = format!("{}/audio/transcriptions", p.base_url);
        let form = crate::providers::audio::form(call, model, "json");
        Ok(crate::providers::body_post(
            p,
            url,
            |key| openai::key_header(p, key),
            form,
        ))
    }

    /// Cache hits are reported DeepSeek-style.
    fn usage(&self, answer: &Value) -> Option<Usage> {
        deepseek::usage(answer)
    }

    fn normalize_answer(&self, answer: &mut Value, _created: u64) -> Result<Answer, ApiError> {
        Ok(normalize_answer(answer))
    }

    fn stream_event(&self, _state: &mut (), data: &str, out: &mut Vec<StreamEvent>) {
        let Ok(mut v) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Malformed(data.to_owned()));
            return;
        };
        if v.get("error").is_some_and(|e| !e.is_null()) {
            out.push(StreamEvent::Error(data.to_owned()));
            return;
        }
        normalize_answer(&mut v);
        let u = deepseek::usage(&v);
        let finished = v
            .pointer("/choices/0/finish_reason")
            .is_some_and(|f| !f.is_null());
        if finished {
            let text = v.to_string();
            return super::move_usage_off_chunk(v, &text, u, out);
        }
        // Cumulative usage: recorded (so a cut stream still logs what was used), not forwarded.
        if let Value::Object(o) = &mut v {
            o.remove("usage");
        }
        out.push(StreamEvent::chunk(&v, v.to_string(), u));
    }

    /// providers.md §5.4 and §7.3.
    fn upstream_error(&self, e: &ErrorResponse<'_>) -> ApiError {
        if e.json.is_some_and(|v| v.get("error").is_some()) {
            return openai::error_from_object(e);
        }
        let (provider, status) = (e.provider, e.status);
        let code = e.json.and_then(|v| v.get("code")).and_then(Value::as_i64);
        let message = match e.json {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            None => String::from_utf8_lossy(e.body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        };
        let said = format!("upstream `{provider}` returned HTTP {status}: {message}");
        match (status, code) {
            (_, Some(30001)) | (402, _) => ApiError::quota(said),
            (_, Some(20012)) | (404, _) => ApiError::model_not_found(said),
            (_, Some(20015)) => ApiError::context_length(said),
            (401, _) => ApiError::upstream_auth(provider, said),
            (403, _) => ApiError::permission(said),
            (429, _) => ApiError::rate_limited(said),
            (503, _) | (_, Some(50505 | 50508)) => ApiError::upstream_unavailable(said),
            (504, _) => ApiError::upstream_timeout(said),
            (400..=499, _) => ApiError::invalid_request(said),
            _ => ApiError::upstream_failed(said),
        }
    }
}

/// Normalizes an answer or a chunk: `eos` becomes `stop`, `""` no finish reason, and every choice gets
/// `logprobs: null`.
fn normalize_answer(v: &mut Value) -> Answer {
    let mut changed = Answer::AsSent;
    if let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) {
        for c in choices.iter_mut().filter_map(Value::as_object_mut) {
            if normalize_finish(c) || !c.contains_key("logprobs") {
                changed = Answer::Rewritten;
            }
            c.entry("logprobs").or_insert(Value::Null);
        }
    }
    changed
}

/// `true` when the finish reason was rewritten.
fn normalize_finish(choice: &mut Map<String, Value>) -> bool {
    let fixed = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("") => Value::Null,
        Some("eos") => Value::String("stop".into()),
        _ => return false,
    };
    choice.insert("finish_reason".into(), fixed);
    true
}

fn images_request(
    p: &ProviderConfig,
    body: &Map<String, Value>,
    model: &str,
) -> Result<UpstreamRequest, ApiError> {
    if body.get("response_format").and_then(Value::as_str) == Some("b64_json")
        || body.get("stream").and_then(Value::as_bool) == Some(true)
    {
        return Err(ApiError::invalid_request(format!(
            "provider `{}` gives images as URLs only: ask for `response_format: \"url\"` without `stream`, or route to another provider",
            p.name
        ))
        .with_param("response_format"));
    }
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_owned()));
    for (from, to) in [
        ("prompt", "prompt"),
        ("negative_prompt", "negative_prompt"),
        ("seed", "seed"),
        ("n", "batch_size"),
    ] {
        if let Some(v) = body.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some((w, h)) = images::size(body.get("size")) {
        out.insert("image_size".into(), Value::String(format!("{w}x{h}")));
    }
    Ok(openai::post(p, "/images/generations", &out))
}

fn images_answer(
    p: &ProviderConfig,
    answer: super::Media,
    created: u64,
) -> Result<Value, ApiError> {
    let super::Media::Json(v) = answer else {
        return Err(super::Media::missing(&p.name, "images", "JSON"));
    };
    let data: Vec<Value> = v
        .get("images")
        .and_then(Value::as_array)
        .ok_or_else(|| super::Media::missing(&p.name, "images", "`images`"))?
        .iter()
        .filter_map(|i| i.get("url").filter(|u| u.is_string()))
        .map(|url| serde_json::json!({"url": url}))
        .collect();
    let created = v.get("created").and_then(Value::as_u64).unwrap_or(created);
    Ok(serde_json::json!({"created": created, "data": data}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Dialect;

    crate::providers::connector_test_helpers!(Dialect::SiliconFlow);

    #[test]
    fn cumulative_usage_is_recorded_stripped_and_sent_once() {
        // providers.md §5.3 (captures of deepseek-ai/DeepSeek-V3)
        let first = r#"{"id":"01983a","object":"chat.completion.chunk","created":1753329315,"model":"deepseek-ai/DeepSeek-V3","choices":[{"index":0,"delta":{"content":"","reasoning_content":null,"role":"assistant"},"finish_reason":null}],"system_fingerprint":"","usage":{"prompt_tokens":4,"completion_tokens":0,"total_tokens":4}}"#;
        let events = stream_events(first);
        let [StreamEvent::Chunk {
            usage: Some(u),
            data: out,
            ..
        }] = events.as_slice()
        else {
            panic!()
        };
        assert_eq!(u.total_tokens, 4);
        let out: Value = serde_json::from_str(out).unwrap();
        assert!(out.get("usage").is_none());
        assert_eq!(out["choices"][0]["logprobs"], Value::Null);
        let last = r#"{"id":"01983a","object":"chat.completion.chunk","created":1753329315,"model":"deepseek-ai/DeepSeek-V3","choices":[{"index":0,"delta":{"content":"你好"},"finish_reason":"eos"}],"system_fingerprint":"","usage":{"prompt_tokens":4,"completion_tokens":9,"total_tokens":13}}"#;
        let events = stream_events(last);
        let StreamEvent::Chunk {
            usage: None,
            data: finish,
            ..
        } = &events[0]
        else {
            panic!("{events:?}")
        };
        assert!(finish.contains(r#""finish_reason":"stop""#), "{finish}");
        assert!(matches!(&events[1], StreamEvent::UsageOnly(u, _) if u.total_tokens == 13));
        let empty =
            r#"{"id":"x","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":""}]}"#;
        let events = stream_events(empty);
        let [StreamEvent::Chunk {
            usage: None,
            data: out,
            ..
        }] = events.as_slice()
        else {
            panic!()
        };
        assert!(out.contains(r#""finish_reason":null"#), "{out}");
    }

    #[test]
    fn siliconflow_error_bodies_become_openai_errors() {
        let e = upstream_error("siliconflow", 400, &[], br#"{"code":20012,"message":"Model does not exist. Please check it carefully.","data":null}"#);
        assert_eq!((e.status(), e.code.code()), (404, Some("model_not_found")));
        let e = upstream_error("siliconflow", 401, &[], br#""Invalid token""#);
        assert_eq!(e.status(), 502);
        assert!(e.message.contains("Invalid token"), "{}", e.message);
        let e = upstream_error("siliconflow", 402, &[], br#"{"code":30001,"message":"Sorry, your account balance is insufficient","data":null}"#);
        assert_eq!(e.kind(), "insufficient_quota");
        let e = upstream_error("siliconflow", 503, &[], br#"{"code":50505,"message":"Model service overloaded. Please try again later.","data":null}"#);
        assert_eq!(e.status(), 503);
        let e = upstream_error("siliconflow", 400, &[], br#"{"code":20015,"message":"length of prompt_tokens (235121) must be less than max_seq_len (65536).","data":null}"#);
        assert_eq!(e.code.code(), Some("context_length_exceeded"));
        assert_eq!(
            upstream_error("siliconflow", 404, &[], b"404 page not found").status(),
            404
        );
    }

    #[test]
    fn answers_are_normalized() {
        let mut v = serde_json::json!({"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"eos"}]});
        assert_eq!(normalize_answer(&mut v), Answer::Rewritten);
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(normalize_answer(&mut v), Answer::AsSent);
        assert_eq!(v["choices"][0]["logprobs"], Value::Null);
    }
}
