//! The core's CPU cost per request, without network: `Gateway::handle` with the example policies loaded,
//! against an in-memory upstream that answers at once (JSON and a 12-event stream).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::rc::Rc;

use criterion::{criterion_group, criterion_main, Criterion};
use futures::executor::block_on;
use futures::future::{self, FutureExt, LocalBoxFuture};
use futures::stream::{self, StreamExt};
use gateway_core::auth::hash_key;
use gateway_core::*;

const KEY: &str = "gw-bench-key";

#[derive(Clone)]
struct Host {
    stream: bool,
}

impl Upstream for Host {
    async fn send(&self, _r: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        let chunks: Vec<Vec<u8>> = if self.stream {
            let mut events = vec![r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#.to_string()];
            for w in [
                "Sea ",
                "kayaking, ",
                "a ",
                "lighthouse ",
                "walk, ",
                "and ",
                "a ",
                "fish ",
                "market ",
                "visit.",
            ] {
                events.push(format!(r#"{{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{{"index":0,"delta":{{"content":"{w}"}},"finish_reason":null}}]}}"#));
            }
            events.push(r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#.into());
            events.push(r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":10,"total_tokens":40}}"#.into());
            events.push("[DONE]".into());
            events
                .into_iter()
                .map(|e| format!("data: {e}\n\n").into_bytes())
                .collect()
        } else {
            vec![br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Sea kayaking, a lighthouse walk, and a fish market visit."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":30,"completion_tokens":14,"total_tokens":44}}"#.to_vec()]
        };
        Ok(UpstreamResponse {
            status: 200,
            headers: vec![],
            body: stream::iter(chunks.into_iter().map(Ok)).boxed_local(),
        })
    }
}

impl KeyStore for Host {
    async fn find_key(&self, _h: &str) -> Result<Option<KeyRecord>, String> {
        Ok(Some(KeyRecord {
            id: "key_1".into(),
            name: "bench".into(),
            team: Some("web".into()),
            tier: Some("pro".into()),
            tags: vec![],
            revoked: false,
            expires_at_ms: None,
            created_at_ms: 0,
        }))
    }
}

impl PolicyStore for Host {
    async fn active_policy(&self) -> Result<Option<String>, String> {
        Ok(None)
    }
    async fn policy_artifact(&self, _h: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
    async fn health_snapshot(&self) -> Result<Option<String>, String> {
        Ok(None)
    }
}

impl Clock for Host {
    fn now_ms(&self) -> f64 {
        1_700_000_000_000.0
    }
    fn sleep(&self, _ms: u64) -> LocalBoxFuture<'static, ()> {
        future::pending().boxed_local()
    }
    fn random_u64(&self) -> u64 {
        7
    }
}

fn gateway(stream: bool) -> Gateway<Host> {
    use gateway_policy::{catalog::Catalog, check::check, compile::compile, load};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let files = load::sources(&[dir]).unwrap();
    let artifact = compile(&check(files, &Catalog::builtin()), &Catalog::builtin()).unwrap();
    let config = GatewayConfig::from_lookup(|k| match k {
        "OPENAI_API_KEY" | "OPENROUTER_API_KEY" | "DEEPSEEK_API_KEY" => Some("sk".into()),
        _ => None,
    })
    .unwrap();
    Gateway::new(Host { stream }, Rc::new(config)).with_policy(Some(Rc::new(
        gateway_policy::Policy::new(artifact).unwrap(),
    )))
}

fn request(stream: bool) -> GatewayRequest {
    let body = format!(
        r#"{{"model":"gpt-4o-mini","stream":{stream},"messages":[{{"role":"system","content":"You are a concise assistant."}},{{"role":"user","content":"Give me three ideas for a weekend trip near the sea, one line each."}}]}}"#
    );
    GatewayRequest {
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), format!("Bearer {KEY}")),
        ],
        body: RequestBody::Bytes(body.into_bytes()),
    }
}

fn run(gw: &Gateway<Host>, stream: bool) -> usize {
    block_on(async {
        let h = gw.handle(request(stream)).await;
        let n = match h.response.body {
            Body::Full(b) => b.len(),
            Body::Stream(s) => s.map(|c| c.len()).collect::<Vec<_>>().await.iter().sum(),
        };
        let rec = h.record.await;
        let _ = std::hint::black_box(rec.sql_params());
        n
    })
}

fn pipeline(c: &mut Criterion) {
    let _ = hash_key(KEY);
    let json = gateway(false);
    c.bench_function("handle chat JSON (example policies)", |b| {
        b.iter(|| run(&json, false))
    });
    let streaming = gateway(true);
    c.bench_function("handle chat stream, 14 events (example policies)", |b| {
        b.iter(|| run(&streaming, true))
    });
    let attrs_body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(match &request(false).body {
            RequestBody::Bytes(b) => b,
            RequestBody::TooLarge => &[][..],
        })
        .unwrap();
    c.bench_function("request attributes", |b| {
        b.iter(|| {
            gateway_core::attributes::request_attrs(&gateway_core::attributes::RequestFacts {
                body: &attrs_body,
                headers: &[],
                key: None,
                endpoint: "chat",
                provider: "openai",
                model: "gpt-4o-mini",
                now_ms: 1.0,
                id_hash: 3,
            })
        })
    });
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
