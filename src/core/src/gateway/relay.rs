//! Relays an upstream chat stream to the client event by event, as each event completes.
//!
//! It reads usage for the log, drops the usage chunk the client did not ask for, and never lets a
//! stream that did not finish look finished: a cut, a stall or a read error after the first byte ends
//! the client's stream with a terminal `data: {"error": …}` event and no `[DONE]`.

use futures::channel::oneshot;
use futures::future::{self, Either, FutureExt, LocalBoxFuture};
use futures::stream::{self, LocalBoxStream, StreamExt};

use crate::error::ApiError;
use crate::log::LogRecord;
use crate::ports::{ByteStream, Clock};
use crate::providers::{StreamEvent, StreamTranslator};
use crate::sse::{encode_data, Decoder};

const DONE: &[u8] = b"data: [DONE]\n\n";

pub(super) fn relay<H: Clock + Clone + 'static>(
    host: H,
    upstream: ByteStream,
    translator: StreamTranslator,
    rec: LogRecord,
    start: f64,
    idle_ms: u64,
    client_wants_usage: bool,
) -> (
    LocalBoxStream<'static, Vec<u8>>,
    LocalBoxFuture<'static, LogRecord>,
) {
    let (tx, rx) = oneshot::channel();
    let fallback = rec.clone();
    let relay = Relay {
        upstream,
        translator,
        decoder: Decoder::new(),
        idle_ms,
        client_wants_usage,
        finished: false,
        recorder: Recorder {
            host,
            rec,
            start,
            tx: Some(tx),
        },
    };
    let body = stream::unfold(relay, |mut r| async move {
        r.next_chunk().await.map(|c| (c, r))
    })
    .boxed_local();
    let record = rx.map(move |r| r.unwrap_or(fallback)).boxed_local();
    (body, record)
}

struct Relay<H: Clock> {
    upstream: ByteStream,
    translator: StreamTranslator,
    decoder: Decoder,
    idle_ms: u64,
    client_wants_usage: bool,
    finished: bool,
    recorder: Recorder<H>,
}

impl<H: Clock> Relay<H> {
    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        while !self.finished {
            let read =
                future::select(self.upstream.next(), self.recorder.host.sleep(self.idle_ms)).await;
            let bytes = match read {
                Either::Left((Some(Ok(bytes)), _)) => bytes,
                Either::Left((Some(Err(e)), _)) => {
                    return Some(self.fail(ApiError::new(
                        502,
                        "server_error",
                        Some("upstream_error"),
                        format!("{e}; the stream was cut off"),
                    )))
                }
                Either::Left((None, _)) => {
                    return Some(self.fail(ApiError::new(
                        502,
                        "server_error",
                        Some("upstream_truncated"),
                        "the upstream closed the stream before it was complete",
                    )))
                }
                Either::Right(_) => {
                    return Some(self.fail(ApiError::new(
                        504,
                        "server_error",
                        Some("upstream_timeout"),
                        format!(
                            "the upstream sent nothing for {} ms; the stream was cut off",
                            self.idle_ms
                        ),
                    )))
                }
            };
            let out = self.translate(&bytes);
            if !out.is_empty() {
                if self.recorder.rec.ttft_ms.is_none() {
                    self.recorder.rec.ttft_ms =
                        Some(self.recorder.host.now_ms() - self.recorder.start);
                }
                return Some(out);
            }
        }
        None
    }

    /// The client-bound bytes for the events these upstream bytes complete.
    fn translate(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for event in self.decoder.feed(bytes) {
            for translated in self.translator.events(&event.data) {
                match translated {
                    StreamEvent::Done => {
                        out.extend_from_slice(DONE);
                        self.finished = true;
                        self.recorder.finish(None);
                    }
                    StreamEvent::Error(data) => {
                        out.extend_from_slice(&encode_data(&data));
                        self.finished = true;
                        let err =
                            ApiError::new(502, "server_error", Some("upstream_stream_error"), "");
                        self.recorder.finish(Some(&err));
                    }
                    StreamEvent::UsageOnly(usage, data) => {
                        self.recorder.rec.usage = Some(usage);
                        if self.client_wants_usage {
                            out.extend_from_slice(&encode_data(&data));
                        }
                    }
                    StreamEvent::Chunk(usage, data) => {
                        if usage.is_some() {
                            self.recorder.rec.usage = usage;
                        }
                        out.extend_from_slice(&encode_data(&data));
                    }
                    StreamEvent::Opaque(data) => out.extend_from_slice(&encode_data(&data)),
                }
                if self.finished {
                    return out;
                }
            }
        }
        out
    }

    fn fail(&mut self, err: ApiError) -> Vec<u8> {
        self.finished = true;
        self.recorder.finish(Some(&err));
        err.sse_event()
    }
}

/// Completes the log row exactly once: when the stream ends, fails, or is dropped because the client left.
struct Recorder<H: Clock> {
    host: H,
    rec: LogRecord,
    start: f64,
    tx: Option<oneshot::Sender<LogRecord>>,
}

impl<H: Clock> Recorder<H> {
    fn finish(&mut self, err: Option<&ApiError>) {
        if let Some(e) = err {
            self.rec.status = e.status;
            self.rec.error_code = e.code.clone();
            self.rec.truncated = true;
        }
        self.send();
    }

    fn send(&mut self) {
        if let Some(tx) = self.tx.take() {
            self.rec.latency_ms = self.host.now_ms() - self.start;
            let _ = tx.send(std::mem::take(&mut self.rec));
        }
    }
}

impl<H: Clock> Drop for Recorder<H> {
    fn drop(&mut self) {
        if self.tx.is_some() {
            // 499: the client closed the connection before the stream ended (nginx's convention).
            self.rec.status = 499;
            self.rec.error_code = Some("client_closed".into());
            self.rec.truncated = true;
            self.send();
        }
    }
}
