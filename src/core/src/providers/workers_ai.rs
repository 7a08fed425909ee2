//! Cloudflare Workers AI over its REST API (providers.md §6.2–6.4): `POST {base}/run/{model}` with the model id
//! verbatim in the path (`@cf/meta/llama-3.1-8b-instruct`).
//! - Answers come in an envelope `{"result":…,"success":…,"errors":[…]}` (an unsuccessful one may be HTTP 200);
//!   `result` is either native (`{response, tool_calls, usage}`) or, for chat-completions-backed models, an OpenAI
//!   `chat.completion`. Native answers get a synthesized id, timestamp and finish reason.
//! - Streams are raw SSE without the envelope: native `{"response":"tok","p":…}` events (or OpenAI chunks for
//!   chat-completions-backed models), then `{"response":"","usage":…}` with the cumulative usage, then `[DONE]`.
//! - Errors: `errors[0].code` decides (5007/3042 no model, 10000 auth, 3036/4006 daily allocation, 3040 capacity …).
//! - Images (shared/providers-more.md §6.2): flux models take `{prompt, steps}` and answer `{"image": base64}` in
//!   the envelope; Stable Diffusion models take `{prompt, negative_prompt, width, height, num_steps, seed}` and
//!   answer with the PNG's bytes (no envelope; through the binding, a stream of them). One image per call.
//! - Transcriptions (§6.3): `whisper-large-v3-turbo` takes the audio as base64, `whisper` as an array of bytes;
//!   both answer `text`, segments or words and `vtt`, the turbo model the language and duration too.
//! - Vision (§6.5): the vision models take OpenAI's content parts with images as `data:` URLs only; the gateway
//!   fetches images given by URL first (`inline_images`).
//! - Speech (§6.4): `melotts` takes `{prompt, lang}` and answers `{"audio": base64 MP3}`; `aura-1` takes `{text,
//!   speaker, encoding}` and answers the audio's bytes.

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ErrorCode};
use crate::log::Usage;
use crate::ports::UpstreamRequest;
use crate::providers::{
    audio, images, openai, Answer, Connector, ErrorResponse, NewStream, ProviderConfig, StreamEvent,
};

/// Request fields Workers AI takes as they are (providers.md §6.1).
const PASSED_FIELDS: &[&str] = &[
    "stream",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "tools",
    "response_format",
];

pub struct WorkersAi;

impl Connector for WorkersAi {
    type StreamState = StreamState;

    fn chat_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
        _stream: bool,
    ) -> Result<UpstreamRequest, ApiError> {
        chat_request(p, body, model)
    }

    fn embeddings_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        embeddings_request(p, body, model)
    }

    /// Images by URL are fetched by the gateway and sent inline.
    fn inline_images(&self) -> bool {
        true
    }

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

    fn transcription_request(
        &self,
        p: &ProviderConfig,
        call: &audio::Transcription,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        Ok(transcription_request(p, call, model))
    }

    fn transcription_answer(
        &self,
        p: &ProviderConfig,
        answer: super::Media,
    ) -> Result<Value, ApiError> {
        transcription_answer(p, answer)
    }

    fn speech_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        speech_request(p, &body, model)
    }

    fn speech_answer(
        &self,
        p: &ProviderConfig,
        answer: super::Media,
        format: Option<&str>,
    ) -> Result<(Vec<u8>, String), ApiError> {
        speech_answer(p, answer, format)
    }

    fn usage(&self, answer: &Value) -> Option<Usage> {
        usage(answer)
    }

    /// An envelope that says `success: false` is an error even with HTTP 200.
    fn normalize_answer(&self, answer: &mut Value, created: u64) -> Result<Answer, ApiError> {
        if let Some(e) = envelope_error(answer, "workers_ai") {
            return Err(e);
        }
        normalize_answer(answer, created);
        Ok(Answer::Rewritten)
    }

    fn normalize_embeddings(&self, answer: &mut Value, model: &str) -> Answer {
        normalize_embeddings(answer, model);
        Answer::Rewritten
    }

    fn stream_event(&self, state: &mut StreamState, data: &str, out: &mut Vec<StreamEvent>) {
        state.event(data, out);
    }

    fn stream_done(&self, state: &mut StreamState, out: &mut Vec<StreamEvent>) {
        state.done(out);
    }

    /// providers.md §6.4.
    fn upstream_error(&self, e: &ErrorResponse<'_>) -> ApiError {
        match e.json {
            Some(v) if v.get("errors").is_some() => error_for(e.status, v, e.provider),
            _ => openai::error_from_object(e),
        }
    }
}

fn chat_request(
    p: &ProviderConfig,
    body: Map<String, Value>,
    model: &str,
) -> Result<UpstreamRequest, ApiError> {
    let mut out = Map::new();
    let mut messages = Vec::new();
    for (i, m) in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mut m = m.as_object().cloned().unwrap_or_default();
        if let Some(Value::Array(parts)) = m.get("content") {
            let kind = |p: &Value| p.get("type").and_then(Value::as_str).map(str::to_owned);
            if let Some(other) = parts
                .iter()
                .filter_map(kind)
                .find(|k| k != "text" && k != "image_url")
            {
                return Err(ApiError::invalid_request(format!(
                    "workers_ai takes text and images through this gateway, not `{}` parts",
                    crate::error::shown(&other)
                ))
                .with_param(&format!("messages[{i}]")));
            }
            if !parts
                .iter()
                .any(|p| kind(p).as_deref() == Some("image_url"))
            {
                let text: String = parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect();
                m.insert("content".into(), Value::String(text));
            }
            // With images the parts go as they are (OpenAI's shape, which the vision models take): the gateway
            // has made every image a data: URL, the only kind Workers AI reads (shared/providers-more.md §6.5).
        }
        if m.get("role").and_then(Value::as_str) == Some("developer") {
            m.insert("role".into(), json!("system"));
        }
        m.remove("reasoning_content");
        messages.push(Value::Object(m));
    }
    out.insert("messages".into(), Value::Array(messages));
    for field in PASSED_FIELDS {
        if let Some(v) = body.get(*field) {
            out.insert((*field).into(), v.clone());
        }
    }
    if let Some(n) = body.get("max_completion_tokens") {
        out.entry("max_tokens").or_insert(n.clone());
    }
    Ok(openai::post(p, &format!("/run/{model}"), &out))
}

fn embeddings_request(
    p: &ProviderConfig,
    body: Map<String, Value>,
    model: &str,
) -> Result<UpstreamRequest, ApiError> {
    let text = match body.get("input") {
        Some(v @ Value::String(_)) => v.clone(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Value::Array(a.clone()),
        _ => {
            return Err(ApiError::invalid_request(
                "workers_ai embeds text: `input` must be a string or an array of strings",
            )
            .with_param("input"))
        }
    };
    let mut out = Map::new();
    out.insert("text".into(), text);
    Ok(openai::post(p, &format!("/run/{model}"), &out))
}

fn images_request(
    p: &ProviderConfig,
    body: &Map<String, Value>,
    model: &str,
) -> Result<UpstreamRequest, ApiError> {
    images::one_image_only(&p.name, body.get("n"))?;
    let mut out = Map::new();
    out.insert(
        "prompt".into(),
        body.get("prompt").cloned().unwrap_or(json!("")),
    );
    if model.contains("flux") {
        // The flux schema forbids any other field.
        if let Some(steps) = body.get("steps").filter(|s| s.is_u64()) {
            out.insert("steps".into(), steps.clone());
        }
    } else {
        if let Some((w, h)) = images::size(body.get("size")) {
            out.insert("width".into(), json!(w));
            out.insert("height".into(), json!(h));
        }
        for field in ["negative_prompt", "seed", "num_steps", "guidance"] {
            if let Some(v) = body.get(field).filter(|v| !v.is_null()) {
                out.insert(field.into(), v.clone());
            }
        }
    }
    Ok(openai::post(p, &format!("/run/{model}"), &out))
}

/// flux's base64 `image` in the envelope, or a Stable Diffusion model's PNG bytes.
fn images_answer(
    p: &ProviderConfig,
    answer: super::Media,
    created: u64,
) -> Result<Value, ApiError> {
    match answer {
        super::Media::Json(v) => {
            if let Some(e) = envelope_error(&v, &p.name) {
                return Err(e);
            }
            let image = v["result"]["image"]
                .as_str()
                .ok_or_else(|| super::Media::missing(&p.name, "images", "`result.image`"))?;
            // flux answers JPEG in practice (the schema does not say; the first bytes do: `/9j/` is JPEG's
            // magic number in base64, `iVBOR` PNG's).
            let mime = [
                ("/9j/", "image/jpeg"),
                ("iVBOR", "image/png"),
                ("UklGR", "image/webp"),
            ]
            .into_iter()
            .find(|(magic, _)| image.starts_with(magic))
            .map(|(_, m)| m);
            Ok(images::from_base64(
                vec![(image.to_owned(), mime.map(str::to_owned))],
                created,
            ))
        }
        super::Media::Raw {
            bytes,
            content_type,
        } => {
            let mime = images::sniff(&bytes)
                .map(str::to_owned)
                .or(content_type.filter(|c| c.starts_with("image/")))
                .ok_or_else(|| super::Media::missing(&p.name, "images", "a picture"))?;
            Ok(images::from_base64(
                vec![(crate::base64::encode(&bytes), Some(mime))],
                created,
            ))
        }
    }
}

fn transcription_request(
    p: &ProviderConfig,
    call: &audio::Transcription,
    model: &str,
) -> UpstreamRequest {
    let mut out = Map::new();
    let audio = &call.file.bytes;
    if model.contains("turbo") {
        out.insert("audio".into(), json!(crate::base64::encode(audio)));
        if let Some(l) = call.field("language") {
            out.insert("language".into(), json!(l));
        }
        if let Some(prompt) = call.field("prompt") {
            out.insert("initial_prompt".into(), json!(prompt));
        }
    } else {
        out.insert("audio".into(), json!(audio));
    }
    openai::post(p, &format!("/run/{model}"), &out)
}

/// Whisper's output as a transcript: its text, segments (numbered, as OpenAI's are) or words, `vtt`, and the
/// turbo model's language and duration.
fn transcription_answer(p: &ProviderConfig, answer: super::Media) -> Result<Value, ApiError> {
    let super::Media::Json(v) = answer else {
        return Err(super::Media::missing(&p.name, "audio", "JSON"));
    };
    if let Some(e) = envelope_error(&v, &p.name) {
        return Err(e);
    }
    let r = &v["result"];
    if !r["text"].is_string() {
        return Err(super::Media::missing(&p.name, "audio", "`result.text`"));
    }
    let segments: Value = match r["segments"].as_array() {
        Some(s) => s
            .iter()
            .enumerate()
            .map(|(i, seg)| {
                let mut seg = seg.clone();
                seg["id"] = json!(i);
                seg
            })
            .collect(),
        None => Value::Null,
    };
    let info = &r["transcription_info"];
    Ok(audio::transcript(
        &r["text"],
        &[
            ("language", &info["language"]),
            ("duration", &info["duration"]),
            ("segments", &segments),
            ("words", &r["words"]),
            ("vtt", &r["vtt"]),
        ],
    ))
}

fn speech_request(
    p: &ProviderConfig,
    body: &Map<String, Value>,
    model: &str,
) -> Result<UpstreamRequest, ApiError> {
    let input = body.get("input").cloned().unwrap_or(json!(""));
    let format = body.get("response_format").and_then(Value::as_str);
    let mut out = Map::new();
    if model.contains("aura") {
        out.insert("text".into(), input);
        if let Some(v) = body.get("voice").and_then(Value::as_str) {
            out.insert("speaker".into(), json!(v));
        }
        let encoding = match format.unwrap_or("mp3") {
            "wav" | "pcm" => "linear16",
            f @ ("mp3" | "opus" | "aac" | "flac") => f,
            _ => "mp3",
        };
        out.insert("encoding".into(), json!(encoding));
    } else {
        if format.is_some_and(|f| f != "mp3") {
            return Err(ApiError::invalid_request(format!(
                "`{model}` on provider `{}` speaks MP3 only: `response_format` must be `mp3`",
                p.name
            ))
            .with_param("response_format"));
        }
        out.insert("prompt".into(), input);
        if let Some(l) = body.get("language").and_then(Value::as_str) {
            out.insert("lang".into(), json!(l));
        }
    }
    Ok(openai::post(p, &format!("/run/{model}"), &out))
}

/// melotts's base64 MP3 in the envelope, or aura's bytes.
fn speech_answer(
    p: &ProviderConfig,
    answer: super::Media,
    format: Option<&str>,
) -> Result<(Vec<u8>, String), ApiError> {
    match answer {
        super::Media::Json(v) => {
            if let Some(e) = envelope_error(&v, &p.name) {
                return Err(e);
            }
            let bytes = v["result"]["audio"]
                .as_str()
                .and_then(crate::base64::decode)
                .ok_or_else(|| super::Media::missing(&p.name, "audio", "`result.audio`"))?;
            Ok((bytes, "audio/mpeg".into()))
        }
        super::Media::Raw {
            bytes,
            content_type,
        } => Ok(audio::speech_bytes(bytes, content_type, format)),
    }
}

/// Usage inside the envelope's result, or at the top level of a stream event.
fn usage(response: &Value) -> Option<Usage> {
    openai::usage(
        response
            .get("result")
            .filter(|r| r.is_object())
            .unwrap_or(response),
    )
}

/// The envelope's error, when it says `success: false` (even with HTTP 200).
fn envelope_error(answer: &Value, provider: &str) -> Option<ApiError> {
    (answer.get("success") == Some(&Value::Bool(false))).then(|| error_for(200, answer, provider))
}

/// The envelope's result as an OpenAI `chat.completion` (replaces it in place).
fn normalize_answer(answer: &mut Value, created: u64) {
    let result = answer.get("result").cloned().unwrap_or(Value::Null);
    if result.get("choices").is_some() {
        *answer = result;
        return;
    }
    let calls: Vec<Value> = result
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| tool_call(c, i, created))
        .collect();
    let mut message = json!({"role": "assistant", "content": result.get("response").cloned().unwrap_or(Value::Null)});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls.clone());
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let mut out = json!({"id": format!("chatcmpl-workers-ai-{created}"), "object": "chat.completion", "created": created,
        "model": Value::Null, "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}]});
    if let Some(u) = result.get("usage") {
        out["usage"] = u.clone();
    }
    *answer = out;
}

/// A tool call in either of Workers AI's shapes: legacy `{name, arguments: {…}}` or OpenAI's.
fn tool_call(c: &Value, i: usize, seed: u64) -> Value {
    if c.get("function").is_some() {
        return c.clone();
    }
    let args = match c.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "{}".to_owned(),
    };
    json!({"id": format!("call_{seed}_{i}"), "type": "function", "function": {"name": c.get("name").cloned().unwrap_or(Value::Null), "arguments": args}})
}

/// `{"result":{"shape":[n,d],"data":[[…]]}}` as an OpenAI embedding list (replaces it in place).
fn normalize_embeddings(answer: &mut Value, model: &str) {
    let data: Vec<Value> = answer
        .pointer("/result/data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    *answer = json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 0, "total_tokens": 0}});
}

/// Stateful: a synthesized id and role chunk for native streams, and the final cumulative usage.
#[derive(Debug)]
pub struct StreamState {
    created: u64,
    role_sent: bool,
    openai_shaped: bool,
    usage: Option<(Usage, Value)>,
}

impl NewStream for StreamState {
    fn new_stream(created: u64) -> Self {
        Self {
            created,
            role_sent: false,
            openai_shaped: false,
            usage: None,
        }
    }
}

impl StreamState {
    fn chunk(&self, delta: Value, finish: Value) -> StreamEvent {
        let v = json!({"id": format!("chatcmpl-workers-ai-{}", self.created), "object": "chat.completion.chunk", "created": self.created,
            "model": Value::Null, "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        StreamEvent::chunk(&v, v.to_string(), None)
    }

    /// `[DONE]`: a native stream's finish chunk, then the final cumulative usage.
    fn done(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.openai_shaped {
            out.push(self.chunk(json!({}), json!("stop")));
        }
        if let Some((u, raw)) = self.usage.take() {
            let usage_chunk = json!({"id": format!("chatcmpl-workers-ai-{}", self.created), "object": "chat.completion.chunk",
                "created": self.created, "model": Value::Null, "choices": [], "usage": raw});
            out.push(StreamEvent::UsageOnly(u, usage_chunk.to_string()));
        }
    }

    fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) {
        let Ok(mut v) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Malformed(data.to_owned()));
            return;
        };
        if v.get("errors").is_some() || v.get("error").is_some() {
            let err = error_for(502, &v, "workers_ai");
            out.push(StreamEvent::error(&err));
            return;
        }
        if let Value::Object(o) = &mut v {
            o.remove("p");
        }
        if v.get("choices").is_some() {
            // A chat-completions-backed model: OpenAI chunks whose per-chunk usage is incremental; the
            // cumulative usage comes last in native form.
            self.openai_shaped = true;
            if let Value::Object(o) = &mut v {
                o.remove("usage");
            }
            if v.get("choices")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                return;
            }
            out.push(StreamEvent::chunk(&v, v.to_string(), None));
            return;
        }
        // The cumulative usage; it is sent (and logged) at [DONE].
        if let Some(u) = openai::usage(&v) {
            self.usage = Some((u, v.get("usage").cloned().unwrap_or(Value::Null)));
        }
        if !self.role_sent {
            self.role_sent = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
        }
        if let Some(text) = v
            .get("response")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            out.push(self.chunk(json!({"content": text}), Value::Null));
        }
    }
}

fn error_for(status: u16, v: &Value, provider: &str) -> ApiError {
    let first = v.pointer("/errors/0");
    let code = first
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let message = first
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("error");
    let said = format!("upstream `{provider}` returned {status} (code {code}): {message}");
    match code {
        5007 | 3042 => ApiError::model_not_found(said),
        10000 => ApiError::upstream_auth(provider, said),
        3036 | 4006 => ApiError::quota(said),
        _ if message.contains("daily free allocation") => ApiError::quota(said),
        3040 => ApiError::rate_limited(said),
        3050 => ApiError::upstream_unavailable(said),
        3006 => ApiError::new(ErrorCode::RequestTooLarge, said),
        3007 | 3008 => ApiError::upstream_timeout(said),
        5016 | 5018 | 3041 | 5035 | 3023 => ApiError::permission(said),
        _ if message.contains("maximum context length") => ApiError::context_length(said),
        _ if (400..500).contains(&status) => ApiError::invalid_request(said),
        _ => ApiError::upstream_failed(said),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Dialect;

    crate::providers::connector_test_helpers!(Dialect::WorkersAi);

    #[test]
    fn native_and_openai_shaped_answers_become_chat_completions() {
        // providers.md §6.2
        let mut v = json!({"result":{"response":"Hello, World first appeared in 1974.","usage":{"prompt_tokens":129,"completion_tokens":7,"total_tokens":136}},"success":true,"errors":[],"messages":[]});
        assert_eq!(usage(&v).map(|u| u.prompt_tokens), Some(129));
        normalize_answer(&mut v, 5);
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "Hello, World first appeared in 1974."
        );
        assert_eq!(
            (
                v["choices"][0]["finish_reason"].as_str(),
                v["created"].as_u64()
            ),
            (Some("stop"), Some(5))
        );
        let mut legacy = json!({"result":{"response":null,"tool_calls":[{"name":"getWeather","arguments":{"latitude":"51.5"}}]},"success":true});
        normalize_answer(&mut legacy, 5);
        assert_eq!(legacy["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            legacy["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"latitude\":\"51.5\"}"
        );
        // §6.1: chat-completions-backed models answer in OpenAI's shape already.
        let mut oa = json!({"result":{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"hi","role":"assistant"}}],"created":1791402571,"id":"8dec","model":"@cf/google/gemma-4-26b-a4b-it-external","object":"chat.completion"},"success":true});
        normalize_answer(&mut oa, 5);
        assert_eq!(oa["id"], "8dec");
    }

    #[test]
    fn the_native_stream_fixture_becomes_openai_chunks() {
        // providers.md §6.3, Llama-style
        let mut s = Dialect::WorkersAi.stream_translator(9);
        let mut out = Vec::new();
        for data in [
            r#"{"response":"Hello","p":"abcdefghijklmnopqrstuvw"}"#,
            r#"{"response":"!","p":"abc"}"#,
            r#"{"response":""}"#,
            r#"{"response":"","usage":{"prompt_tokens":755,"completion_tokens":10,"total_tokens":765}}"#,
            "[DONE]",
        ] {
            out.extend(s.events(data));
        }
        let texts: Vec<String> = out
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Chunk { data, .. } => Some(data.clone()),
                _ => None,
            })
            .collect();
        assert!(texts[0].contains(r#""role":"assistant""#));
        assert!(texts[1].contains(r#""content":"Hello""#) && !texts[1].contains("\"p\""));
        assert!(texts.last().unwrap().contains(r#""finish_reason":"stop""#));
        assert!(
            matches!(&out[out.len() - 2], StreamEvent::UsageOnly(u, _) if u.total_tokens == 765)
        );
        assert_eq!(out.last(), Some(&StreamEvent::End));
    }

    #[test]
    fn envelope_errors_map_by_code() {
        let e = upstream_error("workers_ai", 429, &[], br#"{"errors":[{"message":"AiError: AiError: you have used up your daily free allocation of 10,000 neurons","code":4006}],"success":false}"#);
        assert_eq!((e.status(), e.kind()), (402, "insufficient_quota"));
        let e = upstream_error("workers_ai", 429, &[], br#"{"success":false,"errors":[{"code":3040,"message":"Capacity temporarily exceeded, please try again."}]}"#);
        assert_eq!(e.status(), 429);
        let e = upstream_error(
            "workers_ai",
            401,
            &[],
            br#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#,
        );
        assert_eq!(e.status(), 502);
        let e = upstream_error("workers_ai", 400, &[], br#"{"success":false,"errors":[{"code":5007,"message":"No such model"}],"messages":[],"result":null}"#);
        assert_eq!(e.code.code(), Some("model_not_found"));
        assert!(envelope_error(&json!({"success": false, "errors": [{"code": 3050, "message": "AiError: Max retries exhausted"}]}), "workers_ai").is_some_and(|e| e.status() == 503));
    }
}
