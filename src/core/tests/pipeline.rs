//! The pipeline end to end against an in-memory host: what a client sees and what the log row says.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures::executor::block_on;
use futures::future::{self, FutureExt, LocalBoxFuture};
use futures::stream::{self, StreamExt};
use gateway_core::auth::hash_key;
use gateway_core::*;
use serde_json::{json, Value};

const KEY: &str = "gw-test-key";

#[derive(Clone)]
enum Script {
    /// Status, headers, body chunks, then end of body.
    Reply(u16, Vec<(String, String)>, Vec<Vec<u8>>),
    /// Body chunks, then the body never ends (a stalled upstream).
    Stall(Vec<Vec<u8>>),
    Unreachable,
}

#[derive(Clone)]
struct FakeHost {
    keys: Rc<HashMap<String, KeyRecord>>,
    script: Rc<RefCell<Script>>,
    /// Scripts for upstream URLs starting with a prefix (the first match wins); `script` otherwise.
    routes: Rc<RefCell<Vec<(String, Script)>>>,
    sent: Rc<RefCell<Vec<UpstreamRequest>>>,
    /// The published policy: `policy/active`'s hash and the artifact it names.
    published: Rc<RefCell<Option<(String, String)>>>,
    health: Rc<RefCell<Option<String>>>,
    now: Rc<std::cell::Cell<f64>>,
}

impl FakeHost {
    fn new(script: Script) -> Self {
        let record = KeyRecord {
            id: "key_test".into(),
            name: "test".into(),
            team: None,
            tier: None,
            tags: vec![],
            revoked: false,
            expires_at_ms: None,
            created_at_ms: 0,
        };
        let mut revoked = record.clone();
        revoked.id = "key_revoked".into();
        revoked.revoked = true;
        let keys = HashMap::from([(hash_key(KEY), record), (hash_key("gw-revoked"), revoked)]);
        Self {
            keys: Rc::new(keys),
            script: Rc::new(RefCell::new(script)),
            routes: Rc::default(),
            sent: Rc::default(),
            published: Rc::default(),
            health: Rc::default(),
            now: Rc::new(std::cell::Cell::new(1_700_000_000_000.0)),
        }
    }

    fn sent_body(&self) -> Value {
        serde_json::from_slice(&self.sent.borrow()[0].body).unwrap()
    }
}

impl Upstream for FakeHost {
    async fn send(&self, request: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        let routed = self
            .routes
            .borrow()
            .iter()
            .find(|(prefix, _)| request.url.starts_with(prefix.as_str()))
            .map(|(_, s)| s.clone());
        self.sent.borrow_mut().push(request);
        let script = routed.unwrap_or_else(|| self.script.borrow().clone());
        match script {
            Script::Reply(status, headers, chunks) => Ok(UpstreamResponse {
                status,
                headers,
                body: stream::iter(chunks.into_iter().map(Ok)).boxed_local(),
            }),
            Script::Stall(chunks) => Ok(UpstreamResponse {
                status: 200,
                headers: vec![],
                body: stream::iter(chunks.into_iter().map(Ok))
                    .chain(stream::pending())
                    .boxed_local(),
            }),
            Script::Unreachable => Err(UpstreamError::Connect("connection refused".into())),
        }
    }
}

impl KeyStore for FakeHost {
    async fn find_key(&self, key_hash: &str) -> Result<Option<KeyRecord>, String> {
        Ok(self.keys.get(key_hash).cloned())
    }
}

impl PolicyStore for FakeHost {
    async fn active_policy(&self) -> Result<Option<String>, String> {
        Ok(self.published.borrow().as_ref().map(|(h, _)| h.clone()))
    }
    async fn policy_artifact(&self, hash: &str) -> Result<Option<String>, String> {
        Ok(self
            .published
            .borrow()
            .as_ref()
            .filter(|(h, _)| h == hash)
            .map(|(_, json)| json.clone()))
    }
    async fn health_snapshot(&self) -> Result<Option<String>, String> {
        Ok(self.health.borrow().clone())
    }
}

impl Clock for FakeHost {
    fn now_ms(&self) -> f64 {
        self.now.get()
    }
    /// Timers fire at once: whatever the upstream has ready wins the race, anything it does not have is a stall.
    fn sleep(&self, _ms: u64) -> LocalBoxFuture<'static, ()> {
        future::ready(()).boxed_local()
    }
    fn random_u64(&self) -> u64 {
        42
    }
}

fn gateway(host: &FakeHost) -> Gateway<FakeHost> {
    let config = GatewayConfig::from_lookup(|k| match k {
        "OPENAI_BASE_URL" => Some("http://mock/v1".into()),
        "OPENAI_API_KEY" => Some("sk-upstream".into()),
        "MAX_BODY_BYTES" => Some("1000".into()),
        "DEEPSEEK_BASE_URL" => Some("http://ds".into()),
        "SILICONFLOW_BASE_URL" => Some("http://sf/v1".into()),
        "OPENROUTER_BASE_URL" => Some("http://or/api/v1".into()),
        "GEMINI_BASE_URL" => Some("http://gm/v1beta".into()),
        "WORKERS_AI_BASE_URL" => Some("http://cf/client/v4/accounts/acc/ai".into()),
        "GATEWAY_ADMIN_TOKEN" => Some("admin-secret".into()),
        "POLICY_REFRESH_MS" => Some("1000".into()),
        _ => None,
    })
    .unwrap();
    Gateway::new(host.clone(), Rc::new(config))
}

fn request(method: &str, path: &str, key: Option<&str>, body: &str) -> GatewayRequest {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(k) = key {
        headers.push(("authorization".into(), format!("Bearer {k}")));
    }
    GatewayRequest {
        method: method.into(),
        path: path.into(),
        headers,
        body: RequestBody::Bytes(body.as_bytes().to_vec()),
    }
}

struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    record: LogRecord,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

fn run(host: &FakeHost, req: GatewayRequest) -> Seen {
    run_with(&gateway(host), req)
}

const CHAT: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
const STREAM: &str =
    r#"{"model":"openai/gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

fn ok_json() -> Script {
    let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}});
    Script::Reply(200, vec![], vec![serde_json::to_vec(&body).unwrap()])
}

fn sse(events: &[&str]) -> Vec<Vec<u8>> {
    events
        .iter()
        .map(|e| format!("data: {e}\n\n").into_bytes())
        .collect()
}

const ROLE: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
const TEXT: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
const FINISH: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
const USAGE: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;

#[test]
fn healthz_needs_no_key() {
    let seen = run(
        &FakeHost::new(ok_json()),
        request("GET", "/healthz", None, ""),
    );
    assert_eq!(seen.status, 200);
    assert_eq!(seen.json(), json!({"status": "ok"}));
}

#[test]
fn missing_unknown_and_revoked_keys_get_401_with_an_openai_error() {
    for (key, message) in [
        (None, "missing API key"),
        (Some("gw-nope"), "incorrect API key provided"),
        (Some("gw-revoked"), "this API key has been revoked"),
    ] {
        let host = FakeHost::new(ok_json());
        let seen = run(&host, request("POST", "/v1/chat/completions", key, CHAT));
        assert_eq!(seen.status, 401);
        let err = &seen.json()["error"];
        assert!(err["message"].as_str().unwrap().contains(message), "{err}");
        assert_eq!(err["code"], "invalid_api_key");
        assert_eq!(seen.record.status, 401);
        assert!(
            host.sent.borrow().is_empty(),
            "nothing may reach the upstream"
        );
        assert!(seen.header("x-request-id").is_some());
    }
}

#[test]
fn unknown_route_is_404_and_wrong_method_is_405_with_allow() {
    let host = FakeHost::new(ok_json());
    let seen = run(&host, request("GET", "/v1/nothing", Some(KEY), ""));
    assert_eq!(seen.status, 404);
    assert_eq!(seen.json()["error"]["type"], "invalid_request_error");
    let seen = run(&host, request("GET", "/v1/chat/completions", Some(KEY), ""));
    assert_eq!(seen.status, 405);
    assert_eq!(seen.header("allow"), Some("POST"));
    assert_eq!(seen.record.status, 405);
}

#[test]
fn bad_bodies_are_400_naming_the_field() {
    let host = FakeHost::new(ok_json());
    for (body, param) in [
        ("{not json", Value::Null),
        ("[1,2]", Value::Null),
        (
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
            json!("model"),
        ),
        (r#"{"model":"m"}"#, json!("messages")),
        (r#"{"model":"m","messages":[]}"#, json!("messages")),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
            json!("stream"),
        ),
    ] {
        let seen = run(
            &host,
            request("POST", "/v1/chat/completions", Some(KEY), body),
        );
        assert_eq!(seen.status, 400, "{body}");
        assert_eq!(seen.json()["error"]["param"], param, "{body}");
    }
    assert!(host.sent.borrow().is_empty());
}

#[test]
fn oversized_bodies_are_413() {
    let host = FakeHost::new(ok_json());
    let mut req = request("POST", "/v1/chat/completions", Some(KEY), "");
    req.body = RequestBody::TooLarge;
    let seen = run(&host, req);
    assert_eq!(seen.status, 413);
    assert!(seen.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1000 bytes"));
    let big = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(2000)
    );
    assert_eq!(
        run(
            &host,
            request("POST", "/v1/chat/completions", Some(KEY), &big)
        )
        .status,
        413
    );
}

#[test]
fn json_chat_is_forwarded_with_the_configured_key_and_logged_with_usage() {
    let host = FakeHost::new(ok_json());
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(seen.status, 200);
    assert_eq!(seen.json()["choices"][0]["message"]["content"], "hello");
    assert_eq!(seen.header("x-gateway-provider"), Some("openai"));
    assert_eq!(seen.header("x-gateway-model"), Some("gpt-4o-mini"));
    let sent = &host.sent.borrow()[0];
    assert_eq!(sent.url, "http://mock/v1/chat/completions");
    assert!(sent
        .headers
        .contains(&("authorization".into(), "Bearer sk-upstream".into())));
    let r = &seen.record;
    assert_eq!(
        (r.status, r.key_id.as_deref(), r.provider.as_deref()),
        (200, Some("key_test"), Some("openai"))
    );
    assert_eq!(
        r.usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
        Some((9, 1))
    );
    assert_eq!(r.id, seen.header("x-request-id").unwrap());
    assert!(!r.stream);
}

#[test]
fn stream_is_relayed_event_by_event_and_the_unrequested_usage_chunk_is_dropped() {
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        sse(&[ROLE, TEXT, FINISH, USAGE, "[DONE]"]),
    ));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), STREAM),
    );
    assert_eq!(seen.status, 200);
    assert_eq!(
        seen.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(
        seen.body,
        format!("data: {ROLE}\n\ndata: {TEXT}\n\ndata: {FINISH}\n\ndata: [DONE]\n\n")
    );
    assert_eq!(
        host.sent_body()["stream_options"]["include_usage"],
        true,
        "usage is always requested upstream"
    );
    assert_eq!(
        host.sent_body()["model"],
        "gpt-4o-mini",
        "the provider prefix is stripped"
    );
    let r = &seen.record;
    assert_eq!(r.usage.map(|u| u.total_tokens), Some(7));
    assert!(r.stream && !r.truncated && r.ttft_ms.is_some());
}

#[test]
fn usage_chunk_is_kept_when_the_client_asked_for_it() {
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        sse(&[ROLE, FINISH, USAGE, "[DONE]"]),
    ));
    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), body),
    );
    assert!(seen.body.contains(r#""choices":[],"usage""#));
}

#[test]
fn a_stream_cut_before_done_ends_with_an_error_event_and_no_done() {
    let host = FakeHost::new(Script::Reply(200, vec![], sse(&[ROLE, TEXT])));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), STREAM),
    );
    assert!(seen
        .body
        .starts_with(&format!("data: {ROLE}\n\ndata: {TEXT}\n\n")));
    assert!(!seen.body.contains("[DONE]"));
    let last = seen.body.trim_end().rsplit("\n\n").next().unwrap();
    let err: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(err["error"]["code"], "upstream_truncated");
    assert!(seen.record.truncated);
    assert_eq!(seen.record.status, 502);
}

#[test]
fn a_stream_that_stalls_after_its_first_token_ends_with_a_timeout_error_event() {
    let host = FakeHost::new(Script::Stall(sse(&[ROLE, TEXT])));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), STREAM),
    );
    assert_eq!(seen.status, 200);
    assert!(seen
        .body
        .starts_with(&format!("data: {ROLE}\n\ndata: {TEXT}\n\n")));
    assert!(seen.body.contains(r#""code":"upstream_timeout""#));
    assert!(!seen.body.contains("[DONE]"));
    assert_eq!((seen.record.status, seen.record.truncated), (504, true));
    let attempt = &seen.record.attempt_log[0];
    assert_eq!(
        (attempt.status, attempt.error.as_deref()),
        (504, Some("stream"))
    );
}

#[test]
fn a_stream_that_stalls_before_its_first_token_is_a_timeout_error_not_a_stream() {
    // Only the content-free role chunk arrived: it is held back, so the client gets a plain HTTP error.
    let host = FakeHost::new(Script::Stall(sse(&[ROLE])));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), STREAM),
    );
    assert_eq!(seen.status, 504);
    assert_eq!(seen.json()["error"]["code"], "upstream_timeout");
    assert!(!seen.record.truncated);
    assert_eq!(seen.record.attempt_log[0].error.as_deref(), Some("timeout"));
}

#[test]
fn upstream_errors_before_the_first_byte_are_real_http_errors() {
    let body = br#"{"error":{"message":"Rate limit reached","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#.to_vec();
    let host = FakeHost::new(Script::Reply(
        429,
        vec![("retry-after".into(), "3".into())],
        vec![body],
    ));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), STREAM),
    );
    assert_eq!(seen.status, 429);
    assert_eq!(seen.header("retry-after"), Some("3"));
    assert_eq!(seen.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        seen.record.error_code.as_deref(),
        Some("rate_limit_exceeded")
    );

    let seen = run(
        &FakeHost::new(Script::Unreachable),
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(seen.status, 502);
    assert_eq!(seen.json()["error"]["code"], "upstream_unreachable");

    let host = FakeHost::new(Script::Reply(
        500,
        vec![],
        vec![b"<html>oops</html>".to_vec()],
    ));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(seen.status, 502);
    assert!(seen.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("<html>oops</html>"));
}

#[test]
fn models_are_provider_qualified_and_unconfigured_providers_are_404() {
    let host = FakeHost::new(ok_json());
    let seen = run(&host, request("GET", "/v1/models", Some(KEY), ""));
    let ids: Vec<String> = seen.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&"openai/gpt-4o-mini".to_owned()), "{ids:?}");
    // A bare model id with a slash that is not a provider name goes to the default provider verbatim.
    let body = r#"{"model":"meta-llama/llama-4","messages":[{"role":"user","content":"x"}]}"#;
    run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), body),
    );
    assert_eq!(host.sent_body()["model"], "meta-llama/llama-4");
}

#[test]
fn a_client_that_leaves_mid_stream_is_logged_as_499() {
    let host = FakeHost::new(Script::Stall(sse(&[ROLE, TEXT])));
    let record = block_on(async {
        let Handled {
            response, record, ..
        } = gateway(&host)
            .handle(request("POST", "/v1/chat/completions", Some(KEY), STREAM))
            .await;
        let Body::Stream(mut body) = response.body else {
            panic!("expected a stream")
        };
        assert!(body.next().await.is_some());
        drop(body);
        record.await
    });
    assert_eq!((record.status, record.truncated), (499, true));
    assert_eq!(record.error_code.as_deref(), Some("client_closed"));
}

#[test]
fn embeddings_are_forwarded() {
    let body = json!({"object": "list", "data": [{"object": "embedding", "embedding": [0.1], "index": 0}],
        "model": "text-embedding-3-small", "usage": {"prompt_tokens": 8, "total_tokens": 8}});
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        vec![serde_json::to_vec(&body).unwrap()],
    ));
    let req = request(
        "POST",
        "/v1/embeddings",
        Some(KEY),
        r#"{"model":"text-embedding-3-small","input":"hi"}"#,
    );
    let seen = run(&host, req);
    assert_eq!(seen.status, 200);
    assert_eq!(host.sent.borrow()[0].url, "http://mock/v1/embeddings");
    assert_eq!(seen.record.usage.map(|u| u.prompt_tokens), Some(8));
    let missing = run(
        &host,
        request("POST", "/v1/embeddings", Some(KEY), r#"{"model":"m"}"#),
    );
    assert_eq!(missing.json()["error"]["param"], "input");
}

#[test]
fn deepseek_streams_become_openai_streams() {
    // providers.md §2.4: keep-alive comments while queued, reasoning deltas, usage on the finish chunk.
    let role = r#"{"id":"b1","object":"chat.completion.chunk","created":1,"model":"deepseek-flash","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#;
    let thought = r#"{"id":"b1","object":"chat.completion.chunk","created":1,"model":"deepseek-flash","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Hm"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
    let finish = r#"{"id":"b1","object":"chat.completion.chunk","created":1,"model":"deepseek-flash","choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"completion_tokens_details":{"reasoning_tokens":1},"prompt_cache_hit_tokens":4,"prompt_cache_miss_tokens":5}}"#;
    let mut chunks = vec![b": keep-alive\n\n".to_vec()];
    chunks.extend(sse(&[role, thought, finish, "[DONE]"]));
    for wants_usage in [false, true] {
        let host = FakeHost::new(Script::Reply(200, vec![], chunks.clone()));
        let body = format!(
            r#"{{"model":"deepseek/deepseek-flash","stream":true,"stream_options":{{"include_usage":{wants_usage}}},"messages":[{{"role":"user","content":"hi"}}]}}"#
        );
        let seen = run(
            &host,
            request("POST", "/v1/chat/completions", Some(KEY), &body),
        );
        assert_eq!(host.sent.borrow()[0].url, "http://ds/chat/completions");
        assert_eq!(seen.header("x-gateway-provider"), Some("deepseek"));
        let events: Vec<&str> = seen.body.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(
            events[1],
            format!("data: {thought}"),
            "reasoning deltas pass through"
        );
        let finish_out: Value =
            serde_json::from_str(events[2].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(finish_out["choices"][0]["finish_reason"], "stop");
        assert!(
            finish_out.get("usage").is_none(),
            "usage is moved off the finish chunk"
        );
        if wants_usage {
            let usage: Value =
                serde_json::from_str(events[3].strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(
                (
                    usage["choices"].clone(),
                    usage["usage"]["total_tokens"].clone()
                ),
                (json!([]), json!(12))
            );
            assert_eq!(events[4], "data: [DONE]");
        } else {
            assert_eq!(events[3], "data: [DONE]");
        }
        let u = seen.record.usage.unwrap();
        assert_eq!(
            (u.total_tokens, u.cached_tokens, u.reasoning_tokens),
            (12, Some(4), Some(1))
        );
    }
}

#[test]
fn deepseek_has_no_embeddings_and_its_errors_keep_their_meaning() {
    let host = FakeHost::new(ok_json());
    let seen = run(
        &host,
        request(
            "POST",
            "/v1/embeddings",
            Some(KEY),
            r#"{"model":"deepseek/deepseek-flash","input":"x"}"#,
        ),
    );
    assert_eq!(seen.status, 400);
    assert!(host.sent.borrow().is_empty());
    let body = br#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#.to_vec();
    let host = FakeHost::new(Script::Reply(402, vec![], vec![body]));
    let seen = run(
        &host,
        request(
            "POST",
            "/v1/chat/completions",
            Some(KEY),
            r#"{"model":"deepseek/deepseek-flash","messages":[{"role":"user","content":"x"}]}"#,
        ),
    );
    assert_eq!(
        (seen.status, seen.json()["error"]["type"].as_str()),
        (402, Some("insufficient_quota"))
    );
}

/// Real stream fixtures (providers.md) per provider: the model to ask for and the upstream bytes.
fn fixtures() -> Vec<(&'static str, String)> {
    let openai = [ROLE, TEXT, FINISH, USAGE, "[DONE]"]
        .iter()
        .map(|e| format!("data: {e}\n\n"))
        .collect::<String>();
    let deepseek = concat!(
        ": keep-alive\n\n",
        "data: {\"id\":\"b1e2\",\"object\":\"chat.completion.chunk\",\"created\":1786782776,\"model\":\"deepseek-v4-flash\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"b1e2\",\"object\":\"chat.completion.chunk\",\"created\":1786782776,\"model\":\"deepseek-v4-flash\",\"choices\":[{\"index\":0,\"delta\":{\"content\":null,\"reasoning_content\":\"We\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"b1e2\",\"object\":\"chat.completion.chunk\",\"created\":1786782776,\"model\":\"deepseek-v4-flash\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"There\",\"reasoning_content\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"b1e2\",\"object\":\"chat.completion.chunk\",\"created\":1786782776,\"model\":\"deepseek-v4-flash\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\",\"reasoning_content\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":97,\"completion_tokens\":106,\"total_tokens\":203,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":88},\"prompt_cache_hit_tokens\":0,\"prompt_cache_miss_tokens\":97}}\n\n",
        "data: [DONE]\n\n"
    )
    .to_owned();
    let siliconflow = concat!(
        "data: {\"id\":\"01983a922eff7e1cee0f9a1cdbbd74f4\",\"object\":\"chat.completion.chunk\",\"created\":1753329315,\"model\":\"deepseek-ai/DeepSeek-V3\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\",\"reasoning_content\":null,\"role\":\"assistant\"},\"finish_reason\":null}],\"system_fingerprint\":\"\",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":0,\"total_tokens\":4}}\r\n\r\n",
        "data: {\"id\":\"01983a922eff7e1cee0f9a1cdbbd74f4\",\"object\":\"chat.completion.chunk\",\"created\":1753329315,\"model\":\"deepseek-ai/DeepSeek-V3\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"你好\",\"reasoning_content\":null},\"finish_reason\":null}],\"system_fingerprint\":\"\",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1,\"total_tokens\":5}}\r\n\r\n",
        "data: {\"id\":\"01983a922eff7e1cee0f9a1cdbbd74f4\",\"object\":\"chat.completion.chunk\",\"created\":1753329315,\"model\":\"deepseek-ai/DeepSeek-V3\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"！\",\"reasoning_content\":null},\"finish_reason\":\"eos\"}],\"system_fingerprint\":\"\",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}\r\n\r\n",
        "data: [DONE]\r\n\r\n"
    )
    .to_owned();
    let openrouter = concat!(
        ": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n",
        "data: {\"id\":\"gen-abc\",\"object\":\"chat.completion.chunk\",\"created\":1779358422,\"model\":\"openai/gpt-4o\",\"provider\":\"OpenAI\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,\"native_finish_reason\":null}]}\n\n",
        "data: {\"id\":\"gen-abc\",\"object\":\"chat.completion.chunk\",\"created\":1779358422,\"model\":\"openai/gpt-4o\",\"provider\":\"OpenAI\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":null,\"native_finish_reason\":null}]}\n\n",
        "data: {\"id\":\"gen-abc\",\"object\":\"chat.completion.chunk\",\"created\":1779358422,\"model\":\"openai/gpt-4o\",\"provider\":\"OpenAI\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":\"stop\",\"native_finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"gen-abc\",\"object\":\"chat.completion.chunk\",\"created\":1779358422,\"model\":\"openai/gpt-4o\",\"provider\":\"OpenAI\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,\"cost\":0.000075,\"is_byok\":false,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
        "data: [DONE]\n\n"
    )
    .to_owned();
    // providers.md §3.6: CRLF framing, no [DONE].
    let gemini = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"fixture ok\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 7,\"candidatesTokenCount\": 2,\"totalTokenCount\": 103,\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 7}],\"thoughtsTokenCount\": 94,\"serviceTier\": \"standard\"},\"modelVersion\": \"gemini-3.7-flash\",\"responseId\": \"WQuqavG5KbfUjMcPuP_n6QI\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\",\"thoughtSignature\": \"EqkECqYEARFNMg+g...\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 7,\"candidatesTokenCount\": 2,\"totalTokenCount\": 103,\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 7}],\"thoughtsTokenCount\": 94,\"serviceTier\": \"standard\"},\"modelVersion\": \"gemini-3.7-flash\",\"responseId\": \"WQuqavG5KbfUjMcPuP_n6QI\"}\r\n\r\n"
    )
    .to_owned();
    // providers.md §6.3, Llama-style native stream.
    let workers_ai = concat!(
        "data: {\"response\":\"Hello\",\"p\":\"abcdefghijklmnopqrstuvw\"}\n\n",
        "data: {\"response\":\"!\",\"p\":\"abcdefghijklmnopqrstuvw\"}\n\n",
        "data: {\"response\":\" How\",\"p\":\"abcdefgh\"}\n\n",
        "data: {\"response\":\"\"}\n\n",
        "data: {\"response\":\"\",\"usage\":{\"prompt_tokens\":755,\"completion_tokens\":10,\"total_tokens\":765}}\n\n",
        "data: [DONE]\n\n"
    )
    .to_owned();
    vec![
        ("workers_ai/@cf/meta/llama-3.1-8b-instruct", workers_ai),
        ("gemini/gemini-3.7-flash", gemini),
        ("openai/gpt-4o-mini", openai),
        ("deepseek/deepseek-flash", deepseek),
        ("siliconflow/deepseek-ai/DeepSeek-V3", siliconflow),
        ("openrouter/openai/gpt-4o", openrouter),
    ]
}

fn stream_through(model: &str, chunks: Vec<Vec<u8>>) -> (String, LogRecord) {
    let host = FakeHost::new(Script::Reply(200, vec![], chunks));
    let body = format!(
        r#"{{"model":"{model}","stream":true,"stream_options":{{"include_usage":true}},"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), &body),
    );
    (seen.body, seen.record)
}

#[test]
fn every_provider_fixture_ends_in_one_usage_chunk_and_done() {
    for (model, bytes) in fixtures() {
        let (out, record) = stream_through(model, vec![bytes.into_bytes()]);
        assert!(out.ends_with("data: [DONE]\n\n"), "{model}: {out}");
        let events: Vec<Value> = out
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let usage_chunks = events.iter().filter(|e| e["choices"] == json!([])).count();
        assert_eq!(usage_chunks, 1, "{model}: {out}");
        assert!(
            events
                .iter()
                .filter(|e| e["choices"] != json!([]))
                .all(|e| e.get("usage").is_none_or(Value::is_null)),
            "{model}"
        );
        assert!(record.usage.is_some() && !record.truncated, "{model}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// Upstream bytes arrive in arbitrary pieces (mid-line, mid-CRLF, mid-UTF-8): the client sees the same stream.
    #[test]
    fn rechunking_upstream_bytes_changes_nothing(which in 0usize..6, cuts in proptest::collection::vec(0usize..10_000, 0..40)) {
        let (model, bytes) = fixtures().swap_remove(which);
        let bytes = bytes.into_bytes();
        let (whole, whole_record) = stream_through(model, vec![bytes.clone()]);
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        points.dedup();
        let mut pieces = Vec::new();
        let mut last = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            pieces.push(bytes[last..p].to_vec());
            last = p;
        }
        let (split, split_record) = stream_through(model, pieces);
        proptest::prop_assert_eq!(whole, split);
        proptest::prop_assert_eq!(whole_record.usage, split_record.usage);
    }
}

fn compiled(policy_text: &str) -> gateway_policy::Artifact {
    use gateway_policy::{
        catalog::Catalog, check::check, compile::compile, syntax::ast::SourceFile,
    };
    let checked = check(
        vec![SourceFile {
            name: "p.policy".into(),
            text: policy_text.into(),
        }],
        &Catalog::builtin(),
    );
    assert_eq!(checked.errors(), 0, "{:#?}", checked.diagnostics);
    compile(&checked, &Catalog::builtin()).unwrap()
}

fn with_policy(host: &FakeHost, policy_text: &str) -> Gateway<FakeHost> {
    gateway(host).with_policy(Some(Rc::new(
        gateway_policy::Policy::new(compiled(policy_text)).unwrap(),
    )))
}

/// Publishes a policy in the host's store, as `gateway-policy publish` does in KV; returns its hash.
fn publish(host: &FakeHost, policy_text: &str) -> String {
    let artifact = compiled(policy_text);
    let hash = artifact.hash.clone();
    *host.published.borrow_mut() = Some((hash.clone(), serde_json::to_string(&artifact).unwrap()));
    hash
}

fn run_with(gw: &Gateway<FakeHost>, req: GatewayRequest) -> Seen {
    block_on(async {
        let Handled {
            response, record, ..
        } = gw.handle(req).await;
        let body = match response.body {
            Body::Full(b) => b,
            Body::Stream(s) => s.collect::<Vec<_>>().await.concat(),
        };
        Seen {
            status: response.status,
            headers: response.headers,
            body: String::from_utf8(body).unwrap(),
            record: record.await,
        }
    })
}

const ZH_POLICY: &str = "rule zh: when lang == zh -> deepseek fallback openai:gpt-4o-mini\ndeny no_free: when key.tier == \"free\" -> deny 403 \"upgrade to use this gateway\"\ndefault -> requested\n";
const ZH_CHAT: &str =
    r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"你好，请介绍一下你自己"}]}"#;
const RATE_LIMITED: &[u8] = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;

#[test]
fn the_policy_routes_and_a_rate_limited_provider_falls_back_to_the_next() {
    let host = FakeHost::new(ok_json());
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(429, vec![], vec![RATE_LIMITED.to_vec()]),
    ));
    let gw = with_policy(&host, ZH_POLICY);
    let seen = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.status, 200, "{}", seen.body);
    let urls: Vec<String> = host.sent.borrow().iter().map(|r| r.url.clone()).collect();
    assert_eq!(
        urls,
        [
            "http://ds/chat/completions",
            "http://mock/v1/chat/completions"
        ]
    );
    assert_eq!(host.sent_body()["model"], "deepseek-flash");
    assert_eq!(
        (
            seen.header("x-gateway-provider"),
            seen.header("x-gateway-attempts")
        ),
        (Some("openai"), Some("2"))
    );
    assert_eq!(seen.header("x-gateway-rule"), Some("zh"));
    assert_eq!(seen.header("x-gateway-policy").map(str::len), Some(64));
    let r = &seen.record;
    assert_eq!(
        (r.attempts, r.provider.as_deref(), r.rule_id.as_deref()),
        (2, Some("openai"), Some("zh"))
    );
}

#[test]
fn client_errors_do_not_fall_back_and_exhausted_attempts_say_what_was_tried() {
    let bad = br#"{"error":{"message":"bad parameter","type":"invalid_request_error","param":null,"code":null}}"#.to_vec();
    let host = FakeHost::new(ok_json());
    host.routes
        .borrow_mut()
        .push(("http://ds".into(), Script::Reply(400, vec![], vec![bad])));
    let seen = run_with(
        &with_policy(&host, ZH_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!((seen.status, seen.record.attempts), (400, 1));
    assert_eq!(host.sent.borrow().len(), 1);

    let host = FakeHost::new(Script::Reply(503, vec![], vec![b"overloaded".to_vec()]));
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(429, vec![], vec![RATE_LIMITED.to_vec()]),
    ));
    let seen = run_with(
        &with_policy(&host, ZH_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.status, 503);
    let message = seen.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("also tried: deepseek:deepseek-flash (429 rate_limit_exceeded)"),
        "{message}"
    );
    assert_eq!(seen.record.attempts, 2);
    assert_eq!(
        (
            seen.header("x-gateway-attempts"),
            seen.header("x-gateway-rule")
        ),
        (Some("2"), Some("zh"))
    );
}

#[test]
fn streams_fall_back_before_their_first_byte() {
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        sse(&[ROLE, TEXT, FINISH, USAGE, "[DONE]"]),
    ));
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(429, vec![], vec![RATE_LIMITED.to_vec()]),
    ));
    let body = r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"你好，请介绍一下你自己"}]}"#;
    let seen = run_with(
        &with_policy(&host, ZH_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), body),
    );
    assert_eq!(seen.status, 200);
    assert!(seen.body.ends_with("data: [DONE]\n\n"));
    assert_eq!(
        (seen.header("x-gateway-attempts"), seen.record.attempts),
        (Some("2"), 2)
    );
}

#[test]
fn a_deny_rule_answers_with_its_status_and_message_and_sends_nothing() {
    let mut keys = (*FakeHost::new(ok_json()).keys).clone();
    let mut free = keys[&hash_key(KEY)].clone();
    free.tier = Some("free".into());
    keys.insert(hash_key("gw-free"), free);
    let mut host = FakeHost::new(ok_json());
    host.keys = Rc::new(keys);
    let seen = run_with(
        &with_policy(&host, ZH_POLICY),
        request("POST", "/v1/chat/completions", Some("gw-free"), CHAT),
    );
    assert_eq!(seen.status, 403);
    let err = &seen.json()["error"];
    assert_eq!(
        (
            err["message"].as_str(),
            err["code"].as_str(),
            err["type"].as_str()
        ),
        (
            Some("upgrade to use this gateway"),
            Some("policy_denied"),
            Some("permission_error")
        )
    );
    assert_eq!(seen.record.rule_id.as_deref(), Some("no_free"));
    assert_eq!(seen.header("x-gateway-rule"), Some("no_free"));
    assert!(host.sent.borrow().is_empty());
}

#[test]
fn without_a_matching_rule_the_default_sends_what_was_requested() {
    let host = FakeHost::new(ok_json());
    let seen = run_with(
        &with_policy(&host, ZH_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(
        (seen.status, seen.header("x-gateway-rule")),
        (200, Some("default"))
    );
    assert_eq!(host.sent.borrow()[0].url, "http://mock/v1/chat/completions");
}

/// Runs a request and then the background work it left (a policy refresh), as the hosts do.
fn run_then_background(gw: &Gateway<FakeHost>, req: GatewayRequest) -> Seen {
    block_on(async {
        let Handled {
            response,
            record,
            background,
        } = gw.handle(req).await;
        let body = match response.body {
            Body::Full(b) => b,
            Body::Stream(s) => s.collect::<Vec<_>>().await.concat(),
        };
        if let Some(b) = background {
            b.await;
        }
        Seen {
            status: response.status,
            headers: response.headers,
            body: String::from_utf8(body).unwrap(),
            record: record.await,
        }
    })
}

const ERROR_EVENT: &str = r#"{"error":{"message":"The server is overloaded","type":"server_error","param":null,"code":"insufficient_system_resource"}}"#;

#[test]
fn a_stream_that_fails_before_its_first_token_falls_back_and_the_client_sees_one_clean_stream() {
    for failing in [
        // DeepSeek's mid-stream error event right after its role chunk.
        Script::Reply(200, vec![], sse(&[ROLE, ERROR_EVENT])),
        // Cut after the role chunk.
        Script::Reply(200, vec![], sse(&[ROLE])),
        // Stalled after the role chunk.
        Script::Stall(sse(&[ROLE])),
    ] {
        let host = FakeHost::new(Script::Reply(
            200,
            vec![],
            sse(&[ROLE, TEXT, FINISH, USAGE, "[DONE]"]),
        ));
        host.routes.borrow_mut().push(("http://ds".into(), failing));
        let body = r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"你好，请介绍一下你自己"}]}"#;
        let seen = run_with(
            &with_policy(&host, ZH_POLICY),
            request("POST", "/v1/chat/completions", Some(KEY), body),
        );
        assert_eq!(seen.status, 200);
        // Exactly one role chunk: the failed attempt's was held back, never sent.
        assert_eq!(
            seen.body,
            format!("data: {ROLE}\n\ndata: {TEXT}\n\ndata: {FINISH}\n\ndata: [DONE]\n\n")
        );
        let log: Vec<(&str, Option<&str>)> = seen
            .record
            .attempt_log
            .iter()
            .map(|a| (a.provider.as_str(), a.error.as_deref()))
            .collect();
        let first_error = log[0].1;
        assert!(
            matches!(first_error, Some("stream" | "timeout")),
            "{first_error:?}"
        );
        assert_eq!(log[1], ("openai", None));
        assert!(!seen.record.truncated);
    }
}

const RETRY_POLICY: &str = "rule zh: when lang == zh -> deepseek fallback openai:gpt-4o-mini with retries 1, retry_on {5xx}\ndefault -> requested\n";

#[test]
fn retries_repeat_the_same_target_then_fall_back_and_retry_on_limits_what_falls_back() {
    let host = FakeHost::new(ok_json());
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(503, vec![], vec![b"busy".to_vec()]),
    ));
    let seen = run_with(
        &with_policy(&host, RETRY_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.status, 200);
    let log: Vec<(&str, u16)> = seen
        .record
        .attempt_log
        .iter()
        .map(|a| (a.provider.as_str(), a.status))
        .collect();
    assert_eq!(log, [("deepseek", 503), ("deepseek", 503), ("openai", 200)]);
    assert_eq!(seen.header("x-gateway-attempts"), Some("3"));

    // A 429 is not in `retry_on {5xx}`: no retry, no fallback.
    let host = FakeHost::new(ok_json());
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(
            429,
            vec![("retry-after".into(), "1".into())],
            vec![RATE_LIMITED.to_vec()],
        ),
    ));
    let seen = run_with(
        &with_policy(&host, RETRY_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!((seen.status, seen.record.attempts), (429, 1));
}

#[test]
fn a_model_that_keeps_failing_cools_down_and_is_tried_last() {
    let host = FakeHost::new(ok_json());
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(500, vec![], vec![b"boom".to_vec()]),
    ));
    let gw = with_policy(&host, ZH_POLICY);
    for _ in 0..3 {
        let seen = run_with(
            &gw,
            request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
        );
        assert_eq!(seen.record.attempt_log[0].provider, "deepseek");
    }
    let seen = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.status, 200);
    assert_eq!(seen.record.attempts, 1);
    assert_eq!(seen.record.provider.as_deref(), Some("openai"));
    let decision: Value =
        serde_json::from_str(seen.record.decision_attrs.as_deref().unwrap()).unwrap();
    assert_eq!(
        decision["plan"],
        json!(["openai:gpt-4o-mini", "deepseek:deepseek-flash"])
    );
    // After the cooldown, it is first again.
    host.now.set(host.now.get() + 31_000.0);
    let seen = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.record.attempt_log[0].provider, "deepseek");
}

#[test]
fn targets_that_cannot_take_images_are_skipped_and_the_log_says_why() {
    let host = FakeHost::new(ok_json());
    let policy = "rule pics: when has_images -> deepseek:deepseek-v4-pro fallback openai:gpt-5.5\ndefault -> requested\n";
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}"#;
    let seen = run_with(
        &with_policy(&host, policy),
        request("POST", "/v1/chat/completions", Some(KEY), body),
    );
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(host.sent.borrow().len(), 1);
    assert_eq!(host.sent_body()["model"], "gpt-5.5");
    let decision: Value =
        serde_json::from_str(seen.record.decision_attrs.as_deref().unwrap()).unwrap();
    assert_eq!(decision["attrs"]["has_images"], true);
    assert_eq!(
        decision["skipped"],
        json!(["deepseek:deepseek-v4-pro (no image input)"])
    );
    assert!(!seen
        .record
        .decision_attrs
        .as_deref()
        .unwrap()
        .contains("what is this"));
}

#[test]
fn the_published_policy_is_loaded_refreshed_in_the_background_and_a_broken_one_never_replaces_it() {
    let host = FakeHost::new(ok_json());
    let gw = gateway(&host);
    // Nothing published: the built-in default sends what was requested.
    let seen = run_then_background(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(
        (
            seen.header("x-gateway-policy"),
            seen.header("x-gateway-provider")
        ),
        (Some("builtin"), Some("openai"))
    );
    let first = publish(&host, ZH_POLICY);
    // Still within the refresh interval: the old decision stands, and no refresh is due.
    let seen = run_then_background(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.header("x-gateway-policy"), Some("builtin"));
    host.now.set(host.now.get() + 1_000.0);
    // Due: this request still uses what it has and refreshes after its response.
    let seen = run_then_background(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.header("x-gateway-policy"), Some("builtin"));
    let seen = run_then_background(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.header("x-gateway-policy"), Some(first.as_str()));
    assert_eq!(seen.header("x-gateway-provider"), Some("deepseek"));

    // A pointer to a corrupted artifact, then to a missing one: the good policy stays.
    for broken in [
        Some(("0".repeat(64), r#"{"format":1,"hash":"nope"}"#.to_string())),
        Some(("f".repeat(64), String::new())),
    ] {
        let (hash, json) = broken.unwrap();
        *host.published.borrow_mut() = Some((hash, json));
        host.now.set(host.now.get() + 1_000.0);
        run_then_background(&gw, request("GET", "/v1/models", Some(KEY), ""));
        let seen = run_then_background(
            &gw,
            request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
        );
        assert_eq!(seen.header("x-gateway-policy"), Some(first.as_str()));
    }
    let status = run_with(
        &gw,
        GatewayRequest {
            headers: vec![("authorization".into(), "Bearer admin-secret".into())],
            ..request("GET", "/admin/status", None, "")
        },
    );
    assert_eq!(status.status, 200);
    let status = status.json();
    assert_eq!(status["policy"]["hash"], first.as_str());
    assert!(status["policy"]["last_error"]
        .as_str()
        .unwrap()
        .contains("policy/"));
}

#[test]
fn a_fresh_isolate_waits_for_the_published_policy_before_its_first_decision() {
    let host = FakeHost::new(ok_json());
    let hash = publish(&host, ZH_POLICY);
    let seen = run_with(
        &gateway(&host),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.header("x-gateway-policy"), Some(hash.as_str()));
    assert_eq!(seen.record.policy_hash.as_deref(), Some(hash.as_str()));
}

#[test]
fn health_from_the_snapshot_steers_the_policy() {
    let host = FakeHost::new(ok_json());
    publish(
        &host,
        "rule degraded: when lang == zh and not health.deepseek.up -> openai:gpt-4o-mini\nrule zh: when lang == zh -> deepseek\ndefault -> requested\n",
    );
    let down = r#"{"at_ms":1,"window_ms":300000,"providers":{"deepseek":{"attempts":10,"errors":9,"error_rate":0.9,"p50_ms":0,"up":false}}}"#;
    *host.health.borrow_mut() = Some(down.into());
    let seen = run_with(
        &gateway(&host),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.header("x-gateway-rule"), Some("degraded"));
    let decision: Value =
        serde_json::from_str(seen.record.decision_attrs.as_deref().unwrap()).unwrap();
    assert_eq!(decision["attrs"]["health"]["deepseek"]["up"], false);
}

#[test]
fn the_admin_endpoint_needs_its_own_token() {
    let host = FakeHost::new(ok_json());
    let admin = |auth: Option<&str>| {
        let mut req = request("GET", "/admin/status", None, "");
        if let Some(a) = auth {
            req.headers
                .push(("authorization".into(), format!("Bearer {a}")));
        }
        run(&host, req).status
    };
    assert_eq!(admin(None), 401);
    assert_eq!(admin(Some(KEY)), 401);
    assert_eq!(admin(Some("admin-secret")), 200);
}
