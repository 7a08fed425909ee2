//! Dispatch: carries out a plan. Each target in order, retried with backoff as the rule's options allow,
//! moving on when a failure is one the rule (or, without `retry_on`, the gateway) counts as retryable. Every
//! attempt is recorded and its outcome fed to the cooldowns. Nothing has reached the client while this runs; a
//! stream is handed over once its first content token has arrived.

use gateway_policy::artifact::Options;
use std::sync::Arc;

use super::plan::AttemptPlan;
use super::request::ApiCall;
use super::upstream::{Answer, Failure};
use super::Gateway;
use crate::error::{ApiError, FailureClass};
use crate::log::Attempt;
use crate::ports::Host;
use crate::providers::Providers;

/// A retry waits at most this long; a longer `Retry-After` moves on to the next target instead.
const MAX_RETRY_WAIT_MS: f64 = 5_000.0;
const BASE_BACKOFF_MS: u64 = 200;

/// Every attempt made, in order, and the answer, or the error the client gets (the last one, naming what
/// else was tried).
pub(super) struct Dispatched {
    pub attempts: Vec<Attempt>,
    pub result: Result<Answer, ApiError>,
}

impl<H: Host> Gateway<H> {
    /// `started`: when the request arrived (Unix ms), for the time to the first token.
    pub(super) async fn dispatch(
        &self,
        call: &ApiCall,
        plan: &AttemptPlan<'_>,
        started: f64,
        providers: &Arc<Providers>,
    ) -> Dispatched {
        let options = &plan.options;
        let retries = options.retries.unwrap_or(0);
        let mut attempts = Vec::new();
        let mut tried: Vec<String> = Vec::new();
        let mut last: Option<ApiError> = None;
        for target in &plan.targets {
            let name = target.name();
            let mut retry = 0;
            loop {
                let began = self.host.now_ms();
                let result = self
                    .attempt(call, target, options, (started, providers))
                    .await;
                let now = self.host.now_ms();
                let mut attempt = Attempt {
                    provider: target.provider.name.to_owned(),
                    model: target.model.clone(),
                    status: 200,
                    ms: ((now - began) * 1000.0).round() / 1000.0,
                    error: None,
                };
                let cooldown_ms = self.config.cooldown_ms;
                let f = match result {
                    Ok(answer) => {
                        attempts.push(attempt);
                        self.shared
                            .record_attempt(&name, false, None, now, cooldown_ms);
                        return Dispatched {
                            attempts,
                            result: Ok(answer),
                        };
                    }
                    Err(f) => f,
                };
                attempt.status = f.status;
                attempt.error = Some(f.class);
                let fault = attempt.provider_fault();
                attempts.push(attempt);
                let retry_after_ms = f.err.retry_after.as_deref().and_then(retry_after_ms);
                self.shared
                    .record_attempt(&name, fault, retry_after_ms, now, cooldown_ms);
                if !falls_back(&f, options) {
                    return Dispatched {
                        attempts,
                        result: Err(with_tried(f.err, &tried)),
                    };
                }
                tried.push(format!(
                    "{name} ({} {})",
                    f.err.status(),
                    f.err.code.log_code()
                ));
                if retry < retries {
                    let jitter = self.host.random_u64();
                    if let Some(wait) = backoff_ms(retry, retry_after_ms, jitter) {
                        retry += 1;
                        self.host.sleep(wait).await;
                        continue;
                    }
                }
                last = Some(f.err);
                break;
            }
        }
        tried.pop();
        let err = last.unwrap_or_else(|| ApiError::internal("no attempt was made"));
        Dispatched {
            attempts,
            result: Err(with_tried(err, &tried)),
        }
    }
}

/// Whether a failed attempt moves on (a retry, then the next target): as the rule's `retry_on` says, or,
/// without one, when the failure is retryable (rate limits, upstream failures, timeouts, unreachable).
/// Timeouts count as 504 and unreachable upstreams as 502 for status patterns.
fn falls_back(f: &Failure, options: &Options) -> bool {
    if options.retry_on.is_empty() {
        return f.err.retryable();
    }
    options.retry_on.iter().any(|p| match p.as_str() {
        "timeout" => f.class == FailureClass::Timeout,
        "connect" => f.class == FailureClass::Connect,
        p if p.len() == 3 && p.ends_with("xx") => {
            u16::from(p.as_bytes()[0].wrapping_sub(b'0')) == f.status / 100
        }
        p => p.parse::<u16>().ok() == Some(f.status),
    })
}

/// `Retry-After` in milliseconds (seconds; an HTTP date is not honoured).
fn retry_after_ms(value: &str) -> Option<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| s * 1000.0)
}

/// How long to wait before retry number `retry` (0-based) of the same target: what `Retry-After` asked for,
/// or exponential backoff from 200 ms with jitter. `None` when the upstream asks for longer than a retry may
/// wait: the next target is tried instead.
fn backoff_ms(retry: u32, retry_after_ms: Option<f64>, jitter: u64) -> Option<u64> {
    match retry_after_ms {
        Some(ms) if ms > MAX_RETRY_WAIT_MS => None,
        Some(ms) => Some(ms.ceil() as u64),
        None => {
            let base = BASE_BACKOFF_MS << retry.min(4);
            Some(base / 2 + jitter % (base / 2 + 1))
        }
    }
}

fn with_tried(mut err: ApiError, tried: &[String]) -> ApiError {
    if !tried.is_empty() {
        err.message = format!("{} (also tried: {})", err.message, tried.join(", "));
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn failure(code: ErrorCode) -> Failure {
        Failure::from(ApiError::new(code, "x"))
    }

    fn retry_on(items: &[&str]) -> Options {
        Options {
            retry_on: items.iter().map(|s| s.to_string()).collect(),
            ..Options::default()
        }
    }

    #[test]
    fn retry_on_matches_statuses_classes_and_patterns() {
        let timeout = failure(ErrorCode::UpstreamTimeout);
        let unreachable = failure(ErrorCode::UpstreamUnreachable);
        let limited = failure(ErrorCode::RateLimited { code: None });
        assert_eq!(
            (timeout.class, unreachable.class),
            (FailureClass::Timeout, FailureClass::Connect)
        );
        let opts = retry_on(&["429", "timeout"]);
        assert!(falls_back(&limited, &opts));
        assert!(falls_back(&timeout, &opts));
        assert!(!falls_back(&unreachable, &opts));
        // Status patterns see a timeout as 504 and an unreachable upstream as 502.
        let opts = retry_on(&["5xx"]);
        assert!(falls_back(&timeout, &opts) && falls_back(&unreachable, &opts));
        assert!(!falls_back(&limited, &opts));
        let bad = Failure::from(ApiError::invalid_request("no"));
        assert!(!falls_back(&bad, &Options::default()));
        assert!(falls_back(&bad, &retry_on(&["4xx"])));
        assert!(falls_back(&limited, &Options::default()));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_short_retry_after_only() {
        for retry in 0..4 {
            let base = 200u64 << retry;
            for jitter in [0, 7, 1_000_003, u64::MAX] {
                let wait = backoff_ms(retry, None, jitter).unwrap();
                assert!((base / 2..=base).contains(&wait), "{retry} {wait}");
            }
        }
        assert_eq!(backoff_ms(0, Some(1_000.0), 5), Some(1_000));
        assert_eq!(backoff_ms(0, Some(30_000.0), 5), None);
        assert_eq!(retry_after_ms("2"), Some(2_000.0));
        assert_eq!(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after_ms("-1"), None);
    }
}
