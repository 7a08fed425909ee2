//! The pipeline end to end against an in-memory host (`gateway_core::testing`): what a client sees and what
//! the log row says. One module per topic; the fixtures and policy helpers they share are here.
#![allow(clippy::unwrap_used)]

mod archive;
mod auth;
mod cache;
mod console;
mod fallback;
mod fronts;
mod limits;
mod policy;
mod providers;
mod records;
mod routes;
mod streams;

use std::rc::Rc;

use futures::executor::block_on;
use futures::StreamExt;
use gateway_core::testing::*;
use gateway_core::*;
use serde_json::{json, Value};

const CHAT: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
const STREAM: &str =
    r#"{"model":"openai/gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

fn ok_json() -> Script {
    let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}});
    Script::Reply(200, vec![], vec![serde_json::to_vec(&body).unwrap()])
}

const ROLE: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
const TEXT: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
const FINISH: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
const USAGE: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;

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

const ZH_POLICY: &str = "rule zh: when lang == zh -> deepseek fallback openai:gpt-4o-mini\ndeny no_free: when key.tier == \"free\" -> deny 403 \"upgrade to use this gateway\"\ndefault -> requested\n";
const ZH_CHAT: &str =
    r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"你好，请介绍一下你自己"}]}"#;
const RATE_LIMITED: &[u8] = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;

const ERROR_EVENT: &str = r#"{"error":{"message":"The server is overloaded","type":"server_error","param":null,"code":"insufficient_system_resource"}}"#;

const RETRY_POLICY: &str = "rule zh: when lang == zh -> deepseek fallback openai:gpt-4o-mini with retries 1, retry_on {5xx}\ndefault -> requested\n";
