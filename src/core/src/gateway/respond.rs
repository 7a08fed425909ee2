//! Respond: the response for what the pipeline produced, with the gateway's headers (which target answered,
//! after how many attempts, which rule of which policy decided, the request id), and the log row's future.

use futures::future::{self, FutureExt, LocalBoxFuture};
use futures::stream::StreamExt;

use super::record::Trace;
use super::{relay, Refused, Reply};
use crate::config::GatewayConfig;
use crate::http::{Body, GatewayResponse, JSON};
use crate::log::LogRecord;
use crate::ports::Host;

type Headers = Vec<(String, String)>;

pub(super) fn respond<H: Host>(
    outcome: Result<Reply, Refused>,
    mut trace: Trace,
    host: &H,
    config: &GatewayConfig,
) -> (GatewayResponse, LocalBoxFuture<'static, LogRecord>) {
    let request_id = ("x-request-id".to_owned(), trace.id().to_owned());
    let limit_headers = trace.rate_limit_headers().to_vec();
    let cache_header = trace
        .cache_state()
        .map(|s| ("x-gateway-cache".to_owned(), s.to_owned()));
    // Messages and Responses clients get their own API's answer, events and errors.
    let (front, ctx) = trace.front();
    let (status, mut headers, body, record) = match outcome {
        Ok(Reply::Local {
            status,
            body,
            content_type,
            headers: more,
        }) => {
            let record = trace.answered(status, host.now_ms());
            let mut headers = vec![self::content_type(content_type.unwrap_or(JSON))];
            headers.extend(more);
            (status, headers, Body::Full(body), ready(record))
        }
        Ok(Reply::Json(body)) => {
            let mut headers = target_headers(&trace);
            headers.push(content_type(JSON));
            if trace.keeps_answer() {
                if let Ok(answer) = serde_json::from_slice(&body) {
                    trace.answer(answer, true);
                }
            }
            let record = trace.answered(200, host.now_ms());
            cost_header(&mut headers, &record);
            (
                200,
                headers,
                Body::Full(front.answer(body, &ctx)),
                ready(record),
            )
        }
        Ok(Reply::Stream(mut source)) => {
            let mut headers = target_headers(&trace);
            headers.push(content_type("text/event-stream; charset=utf-8"));
            headers.push(("cache-control".into(), "no-cache".into()));
            trace.streaming();
            if trace.keeps_answer() {
                source.assemble();
            }
            let idle = config.stream_idle_timeout_ms;
            let (mut body, record) = relay::relay(host.clone(), *source, trace, idle);
            if let Some(mut restream) = front.restream(&ctx) {
                body = body
                    .map(move |bytes| restream.feed(&bytes))
                    .filter(|bytes| future::ready(!bytes.is_empty()))
                    .boxed_local();
            }
            (200, headers, Body::Stream(body), record)
        }
        Ok(Reply::Media { body, content_type }) => {
            let mut headers = target_headers(&trace);
            headers.push(("content-type".into(), content_type));
            let record = trace.answered(200, host.now_ms());
            cost_header(&mut headers, &record);
            (200, headers, Body::Full(body), ready(record))
        }
        Ok(Reply::Cached { body, stream }) => {
            let mut headers = target_headers(&trace);
            if stream {
                headers.push(content_type("text/event-stream; charset=utf-8"));
                headers.push(("cache-control".into(), "no-cache".into()));
            } else {
                headers.push(content_type(JSON));
            }
            let record = trace.answered(200, host.now_ms());
            if let (false, Some(cost)) = (stream, &record.cost) {
                // As every JSON answer says what it cost: here nothing, in the reporting currency.
                headers.push((
                    "x-gateway-cost".into(),
                    format!("0 {}; cached", cost.currency),
                ));
            }
            let body = match (stream, front.restream(&ctx)) {
                (true, Some(mut restream)) => restream.feed(&body),
                (true, None) => body,
                (false, _) => front.answer(body, &ctx),
            };
            (200, headers, Body::Full(body), ready(record))
        }
        Err(Refused { err, allow }) => {
            let mut headers = json();
            if let Some(r) = &err.retry_after {
                headers.push(("retry-after".into(), r.clone()));
            }
            if let Some(methods) = allow {
                headers.push(("allow".into(), methods.into()));
            }
            // A denied request, or one whose every attempt failed, still says which rule decided.
            policy_headers(&mut headers, &trace);
            if trace.attempted() {
                headers.push(("x-gateway-attempts".into(), trace.attempts().to_string()));
            }
            let record = trace.refused(&err, host.now_ms());
            let body = front.error_body(&err, &ctx);
            (err.status(), headers, Body::Full(body), ready(record))
        }
    };
    headers.extend(limit_headers);
    headers.extend(cache_header);
    headers.push(request_id);
    let response = GatewayResponse {
        status,
        headers,
        body,
    };
    (response, record)
}

/// `x-gateway-cost: 0.002424 CNY`: the exact amount in the provider's currency (`; estimated` when the provider
/// reported no usage and the gateway counted the tokens).
fn cost_header(headers: &mut Headers, record: &LogRecord) {
    if let Some(cost) = &record.cost {
        let amount = gateway_policy::prices::format_pico(u128::from(cost.pico));
        let estimated = if cost.estimated { "; estimated" } else { "" };
        headers.push((
            "x-gateway-cost".into(),
            format!("{amount} {}{estimated}", cost.currency),
        ));
    }
}

/// Which target answered, after how many attempts, and which rule of which policy decided.
fn target_headers(trace: &Trace) -> Headers {
    let (provider, model) = trace.target();
    let mut headers = vec![
        ("x-gateway-provider".into(), provider.to_owned()),
        ("x-gateway-model".into(), model.to_owned()),
        ("x-gateway-attempts".into(), trace.attempts().to_string()),
    ];
    policy_headers(&mut headers, trace);
    headers
}

fn policy_headers(headers: &mut Headers, trace: &Trace) {
    if let Some((hash, rule)) = trace.policy() {
        headers.push(("x-gateway-policy".into(), hash.to_owned()));
        headers.push(("x-gateway-rule".into(), rule.to_owned()));
    }
}

fn content_type(value: &str) -> (String, String) {
    ("content-type".into(), value.into())
}

fn json() -> Headers {
    vec![content_type(JSON)]
}

fn ready(record: LogRecord) -> LocalBoxFuture<'static, LogRecord> {
    future::ready(record).boxed_local()
}
