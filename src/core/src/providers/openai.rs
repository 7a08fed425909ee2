//! OpenAI and any OpenAI-compatible upstream (Moonshot, Zhipu, DashScope, vLLM, Ollama, SGLang, llama.cpp's
//! server, proxies): `/chat/completions`, `/embeddings`. The client's body is forwarded nearly as is; this
//! connector sets the model, asks for usage on streams, applies the provider's declared quirks (catalog
//! `quirks`: the answer-limit field's name, how streams report usage, fields to strip, a model-id prefix, the
//! key's header), and reads usage and errors back.

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};
use crate::log::Usage;
use crate::ports::UpstreamRequest;
use crate::providers::{
    Auth, Connector, ErrorResponse, MaxTokens, ProviderConfig, StreamEvent, StreamUsage,
};

/// OpenAI's own API, and the default dialect of any OpenAI-compatible service.
pub struct OpenAi;

impl Connector for OpenAi {
    type StreamState = ();

    /// A chunk is forwarded unchanged, except that usage on a chunk with choices (services that send it on the
    /// finish chunk, unasked) becomes OpenAI's own `choices: []` usage chunk, which the relay drops when the
    /// client did not ask for usage.
    fn stream_event(&self, _state: &mut (), data: &str, out: &mut Vec<StreamEvent>) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Malformed(data.to_owned()));
            return;
        };
        let u = usage(&v);
        crate::providers::move_usage_off_chunk(v, data, u, out);
    }

    fn chat_request(
        &self,
        p: &ProviderConfig,
        mut body: Map<String, Value>,
        model: &str,
        stream: bool,
    ) -> Result<UpstreamRequest, ApiError> {
        passed_on(p, &mut body, model);
        // DeepSeek's `reasoning_content` on assistant turns is DeepSeek's; OpenAI does not take it.
        strip_message_field(&mut body, "reasoning_content");
        let q = &p.quirks;
        match q.stream_usage {
            StreamUsage::Request => ask_for_usage(&mut body, stream),
            // Sent unasked, or not at all: a service that does not know `stream_options` may reject it.
            StreamUsage::Always | StreamUsage::Never => {
                body.remove("stream_options");
            }
        }
        if let Some(field) = q.max_tokens {
            let (to, from) = match field {
                MaxTokens::MaxTokens => ("max_tokens", "max_completion_tokens"),
                MaxTokens::MaxCompletionTokens => ("max_completion_tokens", "max_tokens"),
            };
            if let Some(n) = body.remove(from) {
                body.entry(to).or_insert(n);
            }
        }
        for field in &q.strip {
            body.remove(field);
        }
        Ok(post(p, "/chat/completions", &body))
    }

    /// OpenAI's `/images/generations`, as the client sent it (shared/providers-more.md §5.1).
    fn images_request(
        &self,
        p: &ProviderConfig,
        mut body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
        passed_on(p, &mut body, model);
        whole(&mut body);
        if stream && model.starts_with("dall-e") {
            // dall-e answers URLs unless asked; a stream needs the picture.
            body.insert("response_format".into(), Value::String("b64_json".into()));
        }
        for field in &p.quirks.strip {
            body.remove(field);
        }
        Ok(post(p, "/images/generations", &body))
    }

    /// OpenAI's `/audio/transcriptions` (§5.2): `verbose_json` from whisper-1 (its duration prices it, its
    /// segments make subtitles), `json` from the GPT transcribe models (they take no other), rendered as asked.
    fn transcription_request(
        &self,
        p: &ProviderConfig,
        call: &crate::providers::audio::Transcription,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        let model = upstream_model(p, model);
        let format = if model.starts_with("whisper") {
            "verbose_json"
        } else {
            "json"
        };
        let url = format!("{}/audio/transcriptions", p.base_url);
        let form = crate::providers::audio::form(call, &model, format);
        Ok(crate::providers::body_post(
            p,
            url,
            |key| key_header(p, key),
            form,
        ))
    }

    /// OpenAI's `/audio/speech` (§5.3), as the client sent it; the answer is the audio's bytes.
    fn speech_request(
        &self,
        p: &ProviderConfig,
        mut body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        passed_on(p, &mut body, model);
        whole(&mut body);
        Ok(post(p, "/audio/speech", &body))
    }

    fn embeddings_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        let mut req = embeddings_request(p, body, &upstream_model(p, model));
        if !p.quirks.strip.is_empty() {
            if let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&req.body) {
                for field in &p.quirks.strip {
                    body.remove(field);
                }
                req.body = serde_json::to_vec(&body).unwrap_or_default();
            }
        }
        Ok(req)
    }
}

/// A body as the client sent it, for the service: its model id, without the gateway's `provider` field.
fn passed_on(p: &ProviderConfig, body: &mut Map<String, Value>, model: &str) {
    prepare_body(body, &upstream_model(p, model));
    body.remove("provider");
}

/// A media body without what would make the service stream: the gateway asks for the whole answer and makes
/// the events itself.
fn whole(body: &mut Map<String, Value>) {
    for field in ["stream", "partial_images", "stream_format"] {
        body.remove(field);
    }
}

/// The model id the service knows: the declared prefix (`accounts/fireworks/models/`) before the catalog's id.
fn upstream_model(p: &ProviderConfig, model: &str) -> String {
    match &p.quirks.model_prefix {
        Some(prefix) if !model.starts_with(prefix.as_str()) => format!("{prefix}{model}"),
        _ => model.to_owned(),
    }
}

/// On streams, always asks for usage so the log row has token counts; the relay drops the usage chunk again
/// when the client did not ask for it.
pub(crate) fn ask_for_usage(body: &mut Map<String, Value>, stream: bool) {
    if stream {
        let options = body
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(o) = options {
            o.insert("include_usage".into(), Value::Bool(true));
        } else {
            *options = serde_json::json!({"include_usage": true});
        }
    }
}

/// OpenAI's `/embeddings`, which OpenRouter and SiliconFlow take as well.
pub(crate) fn embeddings_request(
    p: &ProviderConfig,
    mut body: Map<String, Value>,
    model: &str,
) -> UpstreamRequest {
    prepare_body(&mut body, model);
    body.remove("provider");
    post(p, "/embeddings", &body)
}

/// Removes a field from every message.
pub(crate) fn strip_message_field(body: &mut Map<String, Value>, field: &str) {
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for m in messages {
            if let Value::Object(m) = m {
                m.remove(field);
            }
        }
    }
}

/// Sets the model and removes the gateway's own `provider` field (a string; OpenRouter's `provider` routing
/// object is left for the OpenRouter connector to keep and the others to drop).
pub(crate) fn prepare_body(body: &mut Map<String, Value>, model: &str) {
    if body.get("provider").is_some_and(Value::is_string) {
        body.remove("provider");
    }
    body.insert("model".into(), Value::String(model.to_owned()));
}

/// The OpenAI body cleaned for an OpenAI-compatible provider that predates parts of OpenAI's API: the model set,
/// the gateway's `provider` and the `dropped` fields removed, `max_completion_tokens` sent as `max_tokens`, and
/// `developer` messages sent as `system`.
pub(crate) fn compatible_body(body: &mut Map<String, Value>, model: &str, dropped: &[&str]) {
    prepare_body(body, model);
    body.remove("provider");
    for field in dropped {
        body.remove(*field);
    }
    if let Some(n) = body.remove("max_completion_tokens") {
        body.entry("max_tokens").or_insert(n);
    }
    rename_developer_role(body);
}

/// `developer` messages become `system` messages, for providers that predate the role.
pub(crate) fn rename_developer_role(body: &mut Map<String, Value>) {
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for m in messages.iter_mut().filter_map(Value::as_object_mut) {
            if m.get("role").and_then(Value::as_str) == Some("developer") {
                m.insert("role".into(), Value::String("system".into()));
            }
        }
    }
}

pub(crate) fn post(p: &ProviderConfig, path: &str, body: &Map<String, Value>) -> UpstreamRequest {
    let url = format!("{}{path}", p.base_url);
    crate::providers::json_post(p, url, |key| key_header(p, key), body)
}

/// The key in the header the provider's declaration says.
pub(crate) fn key_header(p: &ProviderConfig, key: &str) -> (&'static str, String) {
    match p.quirks.auth {
        Auth::Bearer => ("authorization", format!("Bearer {key}")),
        Auth::XApiKey => ("x-api-key", key.to_owned()),
    }
}

/// Reads `usage` (providers.md §7.2, OpenAI row). `None` when absent or null.
pub fn usage(response: &Value) -> Option<Usage> {
    let u = response.get("usage")?.as_object()?;
    let n = |v: Option<&Value>| v.and_then(Value::as_u64);
    let prompt = n(u.get("prompt_tokens")).unwrap_or(0);
    let completion = n(u.get("completion_tokens")).unwrap_or(0);
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: n(u.get("total_tokens")).unwrap_or(prompt + completion),
        cached_tokens: n(u
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens"))),
        reasoning_tokens: n(u
            .get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens"))),
        // Not OpenAI's: the gateway's own field for the prompt tokens a provider wrote to its cache
        // (Anthropic), sent in the OpenAI answers it builds.
        cache_write_tokens: n(u
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cache_write_tokens"))),
        ..Usage::default()
    })
}

/// Classifies one `data:` payload of an OpenAI chat stream; the payload is forwarded unchanged.
pub fn stream_event(data: &str) -> StreamEvent {
    let Ok(v) = serde_json::from_str::<Value>(data) else {
        return StreamEvent::Malformed(data.to_owned());
    };
    let u = usage(&v);
    classify(&v, data.to_owned(), u)
}

/// Classifies a parsed chunk whose client-bound payload is `data`.
pub(crate) fn classify(v: &Value, data: String, usage: Option<Usage>) -> StreamEvent {
    if v.get("error").is_some_and(|e| !e.is_null()) {
        return StreamEvent::Error(data);
    }
    let no_choices = v
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty);
    match usage {
        Some(u) if no_choices => StreamEvent::UsageOnly(u, data),
        u => StreamEvent::chunk(v, data, u),
    }
}

/// Maps an OpenAI-shaped error response to the client's error (providers.md §1.5, §7.3); shared by the
/// OpenAI-shaped providers for the errors they do not word differently.
pub(crate) fn error_from_object(e: &ErrorResponse<'_>) -> ApiError {
    let (provider, status) = (e.provider, e.status);
    let obj = e
        .json
        .and_then(|v| v.get("error"))
        .and_then(Value::as_object);
    let field = |k: &str| {
        obj.and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let upstream_message = field("message").unwrap_or_else(|| e.snippet());
    let code = field("code");
    let message = format!("upstream `{provider}` returned HTTP {status}: {upstream_message}");
    let mut err = match status {
        401 | 403 => ApiError::upstream_auth(provider, message),
        429 if code.as_deref() == Some("insufficient_quota") => {
            ApiError::new(ErrorCode::InsufficientQuota { status: 429 }, message)
        }
        429 => ApiError::new(ErrorCode::RateLimited { code }, message),
        400..=499 => ApiError::new(
            ErrorCode::UpstreamRejected { status, code },
            upstream_message,
        ),
        503 => ApiError::upstream_unavailable(message),
        _ => ApiError::upstream_failed(message),
    };
    if status < 500 && status != 401 && status != 403 {
        err.param = field("param");
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Dialect;

    crate::providers::connector_test_helpers!(Dialect::OpenAi);

    fn provider() -> ProviderConfig {
        crate::providers::test_provider(
            "openai",
            "http://up/v1",
            "m",
            crate::providers::Dialect::OpenAi,
        )
    }

    #[test]
    fn usage_on_a_finish_chunk_becomes_a_usage_chunk() {
        let events = stream_events(
            r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
        );
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(
            matches!(&events[0], StreamEvent::Chunk { usage: None, content: true, data } if !data.contains("usage"))
        );
        assert!(matches!(&events[1], StreamEvent::UsageOnly(u, _) if u.total_tokens == 5));
    }

    #[test]
    fn declared_quirks_shape_the_request() {
        let mut p = provider();
        p.quirks = crate::providers::Quirks {
            max_tokens: Some(MaxTokens::MaxTokens),
            stream_usage: StreamUsage::Never,
            strip: vec!["user".into(), "logit_bias".into()],
            model_prefix: Some("accounts/fw/models/".into()),
            auth: Auth::XApiKey,
        };
        let Value::Object(body) = serde_json::json!({"model": "m", "stream": true, "user": "u1",
            "logit_bias": {"1": 2}, "max_completion_tokens": 50,
            "stream_options": {"include_usage": true}, "messages": []})
        else {
            unreachable!()
        };
        let req = OpenAi.chat_request(&p, body, "llama-3", true).unwrap();
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(sent["model"], "accounts/fw/models/llama-3");
        assert_eq!(sent["max_tokens"], 50);
        for gone in [
            "max_completion_tokens",
            "user",
            "logit_bias",
            "stream_options",
        ] {
            assert!(sent.get(gone).is_none(), "{gone} was sent");
        }
        assert!(req
            .headers
            .contains(&("x-api-key".into(), "sk-test".into())));
        assert!(!req.headers.iter().any(|(k, _)| k == "authorization"));

        p.quirks.max_tokens = Some(MaxTokens::MaxCompletionTokens);
        p.quirks.stream_usage = StreamUsage::Request;
        let Value::Object(body) =
            serde_json::json!({"model": "m", "stream": true, "max_tokens": 7, "messages": []})
        else {
            unreachable!()
        };
        let sent: Value = serde_json::from_slice(
            &OpenAi
                .chat_request(&p, body, "accounts/fw/models/x", true)
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(sent["model"], "accounts/fw/models/x");
        assert_eq!(sent["max_completion_tokens"], 7);
        assert_eq!(sent["stream_options"]["include_usage"], true);
    }

    #[test]
    fn stream_request_asks_for_usage_and_drops_gateway_fields() {
        let body = serde_json::json!({"model": "openai/gpt-4o-mini", "provider": "openai", "stream": true,
            "stream_options": {"include_obfuscation": false}, "messages": []});
        let Value::Object(body) = body else {
            unreachable!()
        };
        let req = OpenAi
            .chat_request(&provider(), body, "gpt-4o-mini", true)
            .unwrap();
        assert_eq!(req.url, "http://up/v1/chat/completions");
        assert!(req
            .headers
            .contains(&("authorization".into(), "Bearer sk-test".into())));
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(sent["model"], "gpt-4o-mini");
        assert!(sent.get("provider").is_none());
        assert_eq!(
            sent["stream_options"],
            serde_json::json!({"include_obfuscation": false, "include_usage": true})
        );
    }

    #[test]
    fn usage_reads_details_from_the_real_fixture() {
        // providers.md §1.3
        let v = serde_json::json!({"usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}});
        assert_eq!(
            usage(&v),
            Some(Usage {
                prompt_tokens: 1117,
                completion_tokens: 46,
                total_tokens: 1163,
                cached_tokens: Some(0),
                reasoning_tokens: Some(0),
                cache_write_tokens: None,
                ..Usage::default()
            })
        );
        assert_eq!(usage(&serde_json::json!({"usage": null})), None);
    }

    #[test]
    fn stream_events_are_classified() {
        // providers.md §1.4 (real gpt-4o capture)
        let usage_chunk = r#"{"id":"chatcmpl-A","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_5050236cbd","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":30,"total_tokens":44,"completion_tokens_details":{"reasoning_tokens":0}}}"#;
        assert!(
            matches!(stream_event(usage_chunk), StreamEvent::UsageOnly(u, _) if u.total_tokens == 44)
        );
        let content = r#"{"id":"chatcmpl-A","choices":[{"index":0,"delta":{"content":"."},"logprobs":null,"finish_reason":null}],"usage":null}"#;
        assert_eq!(
            stream_event(content),
            StreamEvent::Chunk {
                usage: None,
                data: content.to_owned(),
                content: true
            }
        );
        let err = r#"{"error":{"message":"boom"}}"#;
        assert_eq!(stream_event(err), StreamEvent::Error(err.to_owned()));
        assert_eq!(
            stream_event("not json"),
            StreamEvent::Malformed("not json".to_owned())
        );
    }

    #[test]
    fn upstream_errors_map_to_gateway_statuses() {
        let h = vec![("retry-after".to_owned(), "2".to_owned())];
        let body = br#"{"error":{"message":"Rate limit reached","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
        let e = upstream_error("openai", 429, &h, body);
        assert_eq!(
            (e.status(), e.kind(), e.retry_after.as_deref()),
            (429, "rate_limit_error", Some("2"))
        );
        let quota = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert_eq!(
            upstream_error("openai", 429, &[], quota).kind(),
            "insufficient_quota"
        );
        assert_eq!(upstream_error("openai", 500, &[], b"").status(), 502);
        assert_eq!(
            upstream_error("openai", 503, &[], b"overloaded").status(),
            503
        );
        let auth = upstream_error("openai", 401, &[], b"{}");
        assert_eq!(
            (auth.status(), auth.code.code()),
            (502, Some("upstream_authentication_failed"))
        );
        let missing = br#"{"error":{"message":"The model `gpt-9` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;
        let e = upstream_error("openai", 404, &[], missing);
        assert_eq!((e.status(), e.code.code()), (404, Some("model_not_found")));
        assert_eq!(e.message, "The model `gpt-9` does not exist");
    }
}
