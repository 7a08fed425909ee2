//! Azure OpenAI (shared/providers-more.md §3): OpenAI's wire format behind customer-named deployments.
//! - URLs: a base URL ending in `/openai/v1` is the v1 API (`{base}/chat/completions`, the deployment in the
//!   body's `model`); any other base is the dated API, `{base}/deployments/{deployment}/chat/completions` with
//!   the base's query (`?api-version=2024-10-21`) kept. The catalog's model ids are the deployment names.
//! - The key goes in `api-key`.
//! - Streams: chunks without choices that carry no usage (the first one, with `prompt_filter_results`) and
//!   asynchronous filter annotations (choices without a `delta`) are not passed on; a `content_filter` finish is.
//! - Errors: a prompt blocked by the content filter is a 400 `content_filter` (not retried: it is billed); a
//!   deployment that does not exist is `model_not_found`; a 429's delay is `Retry-After` or "retry after N
//!   seconds" in the message.

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};
use crate::ports::UpstreamRequest;
use crate::providers::openai::{self, ask_for_usage, prepare_body};
use crate::providers::{Connector, ErrorResponse, ProviderConfig, StreamEvent};

pub struct AzureOpenAi;

impl Connector for AzureOpenAi {
    type StreamState = ();

    fn chat_request(
        &self,
        p: &ProviderConfig,
        mut body: Map<String, Value>,
        model: &str,
        stream: bool,
    ) -> Result<UpstreamRequest, ApiError> {
        prepare_body(&mut body, model);
        body.remove("provider");
        openai::strip_message_field(&mut body, "reasoning_content");
        ask_for_usage(&mut body, stream);
        Ok(request(p, "chat/completions", model, &body))
    }

    fn embeddings_request(
        &self,
        p: &ProviderConfig,
        mut body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        prepare_body(&mut body, model);
        body.remove("provider");
        Ok(request(p, "embeddings", model, &body))
    }

    fn stream_event(&self, _state: &mut (), data: &str, out: &mut Vec<StreamEvent>) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Malformed(data.to_owned()));
            return;
        };
        let choices = v.get("choices").and_then(Value::as_array);
        let no_choices = choices.is_none_or(Vec::is_empty);
        let has_usage = v.get("usage").is_some_and(|u| !u.is_null());
        let annotation_only = choices.is_some_and(|c| {
            !c.is_empty()
                && c.iter()
                    .all(|c| c.get("delta").is_none() && c["finish_reason"].is_null())
        });
        if v.get("error").is_none() && ((no_choices && !has_usage) || annotation_only) {
            return; // filter results only: nothing for the client
        }
        let u = openai::usage(&v);
        crate::providers::move_usage_off_chunk(v, data, u, out);
    }

    fn upstream_error(&self, e: &ErrorResponse<'_>) -> ApiError {
        let error = e.json.and_then(|v| v.get("error"));
        let field = |k: &str| {
            error.and_then(|o| o.get(k)).and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })
        };
        let code = field("code").unwrap_or_default();
        let said = field("message").unwrap_or_else(|| e.snippet());
        let message = format!(
            "upstream `{}` returned HTTP {}: {said}",
            e.provider, e.status
        );
        match (e.status, code.as_str()) {
            (400, "content_filter") => {
                let mut err = ApiError::new(
                    ErrorCode::UpstreamRejected {
                        status: 400,
                        code: Some("content_filter".into()),
                    },
                    said,
                );
                err.param = Some("prompt".into());
                err
            }
            (404, _) | (_, "DeploymentNotFound") => ApiError::model_not_found(message),
            (429, _) => {
                let mut err = ApiError::rate_limited(message);
                err.retry_after = crate::http::find_header(e.headers, "retry-after")
                    .map(str::to_owned)
                    .or_else(|| seconds_in(&said).map(|s| s.to_string()));
                err
            }
            _ => openai::error_from_object(e),
        }
    }
}

/// The URL of `endpoint` for deployment `model`: the v1 API or the dated one (see the module doc).
fn request(
    p: &ProviderConfig,
    endpoint: &str,
    model: &str,
    body: &Map<String, Value>,
) -> UpstreamRequest {
    let (base, query) = match p.base_url.split_once('?') {
        Some((b, q)) => (b.trim_end_matches('/'), Some(q)),
        None => (p.base_url.as_str(), None),
    };
    let mut url = if base.ends_with("/v1") {
        format!("{base}/{endpoint}")
    } else {
        format!("{base}/deployments/{model}/{endpoint}")
    };
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    crate::providers::json_post(p, url, |key| ("api-key", key.to_owned()), body)
}

/// "Please retry after 6 seconds" / "Try again in 6 seconds": the 6.
fn seconds_in(message: &str) -> Option<u64> {
    let lower = message.to_ascii_lowercase();
    ["retry after ", "try again in "].iter().find_map(|m| {
        let rest = &lower[lower.find(m)? + m.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Dialect;
    use serde_json::json;

    crate::providers::connector_test_helpers!(Dialect::AzureOpenAi);

    fn provider(base: &str) -> ProviderConfig {
        crate::providers::test_provider("azure", base, "gpt-4o-mini", Dialect::AzureOpenAi)
    }

    #[test]
    fn dated_and_v1_urls_and_the_api_key_header() {
        let Value::Object(body) =
            json!({"model": "azure/prod-mini", "stream": true, "messages": []})
        else {
            unreachable!()
        };
        let dated = provider("https://acme.openai.azure.com/openai?api-version=2024-10-21");
        let req = AzureOpenAi
            .chat_request(&dated, body.clone(), "prod-mini", true)
            .unwrap();
        assert_eq!(
            req.url,
            "https://acme.openai.azure.com/openai/deployments/prod-mini/chat/completions?api-version=2024-10-21"
        );
        assert!(req.headers.contains(&("api-key".into(), "sk-test".into())));
        assert!(!req.headers.iter().any(|(k, _)| k == "authorization"));
        let v1 = provider("https://acme.openai.azure.com/openai/v1");
        let req = AzureOpenAi
            .chat_request(&v1, body, "prod-mini", true)
            .unwrap();
        assert_eq!(
            req.url,
            "https://acme.openai.azure.com/openai/v1/chat/completions"
        );
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            (
                sent["model"].as_str(),
                sent["stream_options"]["include_usage"].as_bool()
            ),
            (Some("prod-mini"), Some(true))
        );
    }

    #[test]
    fn the_real_stream_drops_filter_only_chunks() {
        // shared/providers-more.md §3.3 (a 2026 gpt-5.4-mini stream)
        assert!(stream_events(r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#).is_empty());
        let hi = stream_events(
            r#"{"choices":[{"content_filter_results":{"protected_material_text":{"detected":false,"filtered":false}},"delta":{"content":"Hi"},"finish_reason":null,"index":0,"logprobs":null}],"created":1785610058,"id":"chatcmpl-E89","model":"gpt-5.4-mini-2026-03-17","object":"chat.completion.chunk","usage":null}"#,
        );
        assert!(matches!(&hi[0], StreamEvent::Chunk { content: true, .. }));
        assert!(stream_events(r#"{"choices":[{"index":0,"finish_reason":null,"content_filter_offsets":{"check_offset":0},"content_filter_results":{}}],"id":"","model":"","created":0}"#).is_empty());
        let usage = stream_events(
            r#"{"choices":[],"created":1785610058,"id":"chatcmpl-E89","model":"gpt-5.4-mini-2026-03-17","object":"chat.completion.chunk","usage":{"completion_tokens":11,"prompt_tokens":23,"total_tokens":34}}"#,
        );
        assert!(matches!(&usage[0], StreamEvent::UsageOnly(u, _) if u.total_tokens == 34));
    }

    #[test]
    fn content_filter_deployment_and_rate_limit_errors() {
        let blocked = br#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"jailbreak":{"filtered":true,"detected":true}}}}}"#;
        let e = upstream_error("azure", 400, &[], blocked);
        assert_eq!(
            (e.status(), e.code.code(), e.param.as_deref(), e.retryable()),
            (400, Some("content_filter"), Some("prompt"), false)
        );
        let e = upstream_error("azure", 404, &[], br#"{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}"#);
        assert_eq!(e.code, ErrorCode::ModelNotFound);
        let e = upstream_error("azure", 429, &[], br#"{"error":{"code":"429","message":"Requests ... have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."}}"#);
        assert_eq!((e.status(), e.retry_after.as_deref()), (429, Some("6")));
        let e = upstream_error("azure", 401, &[], br#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}"#);
        assert_eq!(e.status(), 502);
    }
}
