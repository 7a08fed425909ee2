//! The core's CPU cost per request, without network: `Gateway::handle` with the example policies loaded,
//! against the in-memory host of `gateway_core::testing`, whose upstream answers at once (JSON and a 14-event
//! stream).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::rc::Rc;

use criterion::{criterion_group, criterion_main, Criterion};
use futures::executor::block_on;
use futures::stream::StreamExt;
use gateway_core::testing::{key_record, sse, FakeHost, Script, Timers};
use gateway_core::*;

const KEY: &str = "gw-bench-key";

/// The upstream's answer: a JSON chat completion, or a 14-event stream.
fn script(stream: bool) -> Script {
    let chunks: Vec<Vec<u8>> = if stream {
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
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        sse(&events)
    } else {
        vec![br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Sea kayaking, a lighthouse walk, and a fish market visit."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":30,"completion_tokens":14,"total_tokens":44}}"#.to_vec()]
    };
    Script::Reply(200, vec![], chunks)
}

fn gateway(stream: bool) -> Gateway<FakeHost> {
    gateway_limited(stream, false)
}

/// The key and its team with every kind of limit (never reached): requests and tokens per minute, streams,
/// budgets per day and month.
fn gateway_limited(stream: bool, limited: bool) -> Gateway<FakeHost> {
    use gateway_policy::{catalog::Catalog, check::check, compile::compile, load};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let files = load::sources(&[dir]).unwrap();
    let artifact = compile(&check(files, &Catalog::builtin()), &Catalog::builtin()).unwrap();
    let config = GatewayConfig::from_lookup(|k| match k {
        "OPENAI_API_KEY" | "OPENROUTER_API_KEY" | "DEEPSEEK_API_KEY" => Some("sk".into()),
        _ => None,
    })
    .unwrap();
    let mut record = key_record("key_1");
    record.team = Some("web".into());
    record.tier = Some("pro".into());
    let limits = gateway_core::limits::Limits {
        requests_per_minute: Some(1_000_000_000),
        tokens_per_minute: Some(1_000_000_000_000),
        concurrent_streams: Some(1_000_000),
        budget: Some(gateway_core::limits::Budget {
            currency: "CNY".into(),
            day: Some("1000000".into()),
            month: Some("10000000".into()),
        }),
    };
    if limited {
        record.limits = limits.clone();
    }
    let mut host = FakeHost::new(script(stream)).with_key(KEY, record);
    if limited {
        host.teams.borrow_mut().insert(
            "web".into(),
            gateway_core::TeamRecord {
                name: "web".into(),
                limits,
                ..Default::default()
            },
        );
    }
    host.timers = Timers::Never;
    host.record_sent = false;
    Gateway::new(host, Rc::new(config)).with_policy(Some(Rc::new(
        gateway_policy::Policy::new(artifact).unwrap(),
    )))
}

/// A gateway with this one policy.
fn gateway_with(text: &str) -> Gateway<FakeHost> {
    use gateway_policy::{
        catalog::Catalog, check::check, compile::compile, syntax::ast::SourceFile,
    };
    let files = vec![SourceFile {
        name: "p.policy".into(),
        text: text.into(),
    }];
    let artifact = compile(&check(files, &Catalog::builtin()), &Catalog::builtin()).unwrap();
    let config =
        GatewayConfig::from_lookup(|k| (k == "OPENAI_API_KEY").then(|| "sk".into())).unwrap();
    let mut host = FakeHost::new(script(false)).with_key(KEY, key_record("key_1"));
    host.timers = Timers::Never;
    host.record_sent = false;
    Gateway::new(host, Rc::new(config)).with_policy(Some(Rc::new(
        gateway_policy::Policy::new(artifact).unwrap(),
    )))
}

/// The bench's request with `temperature: 0`, and a header (`x-gateway-cache: refresh` to miss every time).
fn cacheable(header: Option<(&str, &str)>) -> GatewayRequest {
    let mut req = request(false);
    if let RequestBody::Bytes(b) = &mut req.body {
        *b = String::from_utf8_lossy(b)
            .replacen("{", "{\"temperature\":0,", 1)
            .into_bytes();
    }
    if let Some((k, v)) = header {
        req.headers.push((k.into(), v.into()));
    }
    req
}

fn run_req(gw: &Gateway<FakeHost>, req: GatewayRequest) -> usize {
    block_on(async {
        let h = gw.handle(req).await;
        let n = match h.response.body {
            Body::Full(b) => b.len(),
            Body::Stream(s) => s.map(|c| c.len()).collect::<Vec<_>>().await.iter().sum(),
        };
        let rec = h.record.await;
        let _ = std::hint::black_box(rec.sql_params());
        n
    })
}

fn request(stream: bool) -> GatewayRequest {
    let body = format!(
        r#"{{"model":"gpt-4o-mini","stream":{stream},"messages":[{{"role":"system","content":"You are a concise assistant."}},{{"role":"user","content":"Give me three ideas for a weekend trip near the sea, one line each."}}]}}"#
    );
    GatewayRequest {
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        query: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), format!("Bearer {KEY}")),
        ],
        body: RequestBody::Bytes(body.into_bytes()),
    }
}

fn run(gw: &Gateway<FakeHost>, stream: bool) -> usize {
    run_req(gw, request(stream))
}

/// The bench's request as the Anthropic Messages API (`/v1/messages`) or the Responses API (`/v1/responses`)
/// says it: translated to chat, answered in its own shape.
fn front_request(path: &str, stream: bool) -> GatewayRequest {
    let body = if path == "/v1/messages" {
        format!(
            r#"{{"model":"gpt-4o-mini","max_tokens":1024,"stream":{stream},"system":"You are a concise assistant.","messages":[{{"role":"user","content":"Give me three ideas for a weekend trip near the sea, one line each."}}]}}"#
        )
    } else {
        format!(
            r#"{{"model":"gpt-4o-mini","stream":{stream},"instructions":"You are a concise assistant.","input":"Give me three ideas for a weekend trip near the sea, one line each."}}"#
        )
    };
    let mut req = request(stream);
    req.path = path.into();
    req.body = RequestBody::Bytes(body.into_bytes());
    req
}

fn pipeline(c: &mut Criterion) {
    let json = gateway(false);
    c.bench_function("handle chat JSON (example policies)", |b| {
        b.iter(|| run(&json, false))
    });
    let limited = gateway_limited(false, true);
    c.bench_function("handle chat JSON, key and team with every limit", |b| {
        b.iter(|| run(&limited, false))
    });
    // One rule caching every request with `temperature: 0`.
    let cached = gateway_with("rule cached: when temperature == 0 and not has_tools -> openai:gpt-4o-mini with cache 10m\ndefault -> requested\n");
    c.bench_function("handle chat JSON, cacheable rule, no cache (bypass)", |b| {
        b.iter(|| run_req(&cached, cacheable(Some(("cache-control", "no-cache")))))
    });
    c.bench_function(
        "handle chat JSON, cacheable rule, miss and store (refresh)",
        |b| b.iter(|| run_req(&cached, cacheable(Some(("x-gateway-cache", "refresh"))))),
    );
    c.bench_function("handle chat JSON, cacheable rule, hit", |b| {
        b.iter(|| run_req(&cached, cacheable(None)))
    });
    // The same rule with and without the payload archive (redaction, the document, the store's write).
    let plain =
        gateway_with("rule r: when tokens > 0 -> openai:gpt-4o-mini\ndefault -> requested\n");
    c.bench_function("handle chat JSON, one rule", |b| {
        b.iter(|| run(&plain, false))
    });
    let archived = gateway_with(
        "rule r: when tokens > 0 -> openai:gpt-4o-mini with archive 7d\ndefault -> requested\n",
    );
    c.bench_function("handle chat JSON, one rule, archived", |b| {
        b.iter(|| run(&archived, false))
    });
    let streaming = gateway(true);
    c.bench_function("handle chat stream, 14 events (example policies)", |b| {
        b.iter(|| run(&streaming, true))
    });
    for (api, path) in [("Messages", "/v1/messages"), ("Responses", "/v1/responses")] {
        c.bench_function(&format!("handle {api} JSON (example policies)"), |b| {
            b.iter(|| run_req(&json, front_request(path, false)))
        });
        c.bench_function(
            &format!("handle {api} stream, 14 events (example policies)"),
            |b| b.iter(|| run_req(&streaming, front_request(path, true))),
        );
    }
    let attrs_body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(match &request(false).body {
            RequestBody::Bytes(b) => b,
            RequestBody::TooLarge | RequestBody::TimedOut => &[][..],
        })
        .unwrap();
    let facts = |classify| RequestFacts {
        body: &attrs_body,
        headers: &[],
        key: None,
        endpoint: "chat",
        provider: "openai",
        model: "gpt-4o-mini",
        now_ms: 1.0,
        id_hash: 3,
        classify,
    };
    c.bench_function("request attributes, task and has_code too", |b| {
        b.iter(|| request_attrs(&facts(true)))
    });
    c.bench_function("request attributes", |b| {
        b.iter(|| request_attrs(&facts(false)))
    });
    // The longest text the classifier reads: a 16 KiB code paste (it reads the instruction and 4 KiB of the rest).
    let paste = format!(
        "Why does this fail?\n```python\n{}```",
        "def total(items):\n    return sum(i.price * i.qty for i in items)\n".repeat(250)
    );
    let long_body = serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": paste}]});
    let long_body = long_body.as_object().cloned().unwrap_or_default();
    c.bench_function(
        "request attributes, task and has_code too, 16 KiB prompt",
        |b| {
            b.iter(|| {
                request_attrs(&RequestFacts {
                    body: &long_body,
                    ..facts(true)
                })
            })
        },
    );
    c.bench_function("request attributes, 16 KiB prompt", |b| {
        b.iter(|| {
            request_attrs(&RequestFacts {
                body: &long_body,
                ..facts(false)
            })
        })
    });
}

/// What a provider table costs to build (once per policy refresh, on the next request): the built-in catalog
/// with every provider configured, as the test settings configure them.
fn provider_table(c: &mut Criterion) {
    let catalog = gateway_policy::catalog::Catalog::builtin_json();
    c.bench_function("provider table from the built-in catalog", |b| {
        b.iter(|| gateway_core::Providers::from_catalog(&catalog, gateway_core::testing::setting))
    });
}

criterion_group!(benches, pipeline, provider_table);
criterion_main!(benches);
