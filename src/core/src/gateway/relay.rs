//! Relays an upstream chat stream to the client event by event, as each event completes.
//!
//! Before anything is sent, [`Source::preroll`] reads the upstream until its first content token, holding back
//! content-free chunks (the role chunk, keep-alives, usage), so a stream that fails, stalls or ends before
//! saying anything can still fall back to another provider: the client has seen nothing that must be taken
//! back. After that, the relay reads usage for the log, drops the usage chunk the client did not ask for, and
//! never lets a stream that did not finish look finished: a cut, a stall or a read error ends the client's
//! stream with a terminal `data: {"error": …}` event and no `[DONE]`.

use std::sync::Arc;

use futures::channel::oneshot;
use futures::future::{self, Either, FutureExt, LocalBoxFuture};
use futures::stream::{self, LocalBoxStream, StreamExt};
use serde_json::Value;

use super::record::Trace;
use crate::error::{ApiError, ErrorCode};
use crate::log::{LogRecord, Usage};
use crate::ports::{ByteStream, Clock};
use crate::providers::Providers;
use crate::providers::{StreamEvent, StreamTranslator};
use crate::redact::redact;
use crate::sse::{encode_data, Decoder, MAX_EVENT_BYTES};

const DONE: &[u8] = b"data: [DONE]\n\n";

/// How an upstream stream ended.
enum End {
    Done,
    Failed(ApiError),
}

/// An upstream stream being translated: what has been read but not yet sent, and whether it has ended.
pub(super) struct Source {
    upstream: ByteStream,
    translator: StreamTranslator,
    decoder: Decoder,
    client_wants_usage: bool,
    /// Translated bytes read but not yet sent to the client.
    pending: Vec<u8>,
    /// The events of the payload being translated (reused across events).
    events: Vec<StreamEvent>,
    content_seen: bool,
    /// Bytes of text relayed (content, reasoning, tool-call arguments): the estimate of a cut stream's completion.
    text_bytes: usize,
    end: Option<End>,
    usage: Option<Usage>,
    /// The request's provider table and the provider's name: to mask its secrets and location in error
    /// events it sends.
    provider: (Arc<Providers>, String),
    /// The answer put back together, when the response cache or the payload archive is to keep it.
    assembler: Option<Box<crate::cache::Assembler>>,
}

impl Source {
    pub(super) fn new(
        upstream: ByteStream,
        translator: StreamTranslator,
        client_wants_usage: bool,
        provider: (Arc<Providers>, String),
    ) -> Self {
        Self {
            provider,
            upstream,
            translator,
            decoder: Decoder::new(),
            client_wants_usage,
            pending: Vec::new(),
            events: Vec::new(),
            content_seen: false,
            text_bytes: 0,
            end: None,
            usage: None,
            assembler: None,
        }
    }

    /// Puts the answer back together from here on (and from what is held back already), for the cache and the
    /// archive.
    pub(super) fn assemble(&mut self) {
        let mut asm = crate::cache::Assembler::default();
        let held = String::from_utf8_lossy(&self.pending);
        for event in held.split("\n\n") {
            if let Some(data) = event
                .trim()
                .strip_prefix("data: ")
                .filter(|d| *d != "[DONE]")
            {
                asm.chunk(data);
            }
        }
        self.assembler = Some(Box::new(asm));
    }

    /// The assembled answer as far as the stream came, with the usage the provider reported, and whether every
    /// choice finished.
    fn assembled(&mut self) -> Option<(Value, bool)> {
        let asm = self.assembler.take()?;
        let finished = asm.finished();
        let mut answer = asm.answer()?;
        if let (true, Some(u)) = (answer["usage"].is_null(), self.usage) {
            answer["usage"] = serde_json::json!({"prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens});
        }
        Some((answer, finished))
    }

    /// Reads until the first content token (or the end of the stream), holding everything back, by
    /// `deadline` (Unix ms). A failure here is the attempt's failure: the client has been sent nothing.
    pub(super) async fn preroll<H: Clock>(
        &mut self,
        host: &H,
        deadline: f64,
        first_token_ms: u64,
    ) -> Result<(), ApiError> {
        while !self.content_seen && self.end.is_none() {
            let left = deadline - host.now_ms();
            if left <= 0.0 {
                return Err(ApiError::upstream_timeout(format!(
                    "the upstream stream sent no content within {first_token_ms} ms"
                )));
            }
            let bytes = self.read(host, left.ceil() as u64).await.map_err(|e| {
                if e.code == ErrorCode::UpstreamTimeout {
                    ApiError::upstream_timeout(format!(
                        "the upstream stream sent no content within {first_token_ms} ms"
                    ))
                } else {
                    e
                }
            })?;
            self.pending.extend_from_slice(&bytes);
        }
        match &self.end {
            Some(End::Failed(e)) if !self.content_seen => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// One read from the upstream, translated: the client-bound bytes it completes (possibly none), or why the
    /// stream broke (cut, read error, or `wait_ms` of silence).
    async fn read<H: Clock>(&mut self, host: &H, wait_ms: u64) -> Result<Vec<u8>, ApiError> {
        let read = future::select(self.upstream.next(), host.sleep(wait_ms)).await;
        match read {
            Either::Left((Some(Ok(bytes)), _)) => Ok(self.translate(&bytes)),
            Either::Left((Some(Err(e)), _)) => Err(ApiError::upstream_failed(format!(
                "{e}; the stream was cut off"
            ))),
            Either::Left((None, _)) => Err(ApiError::new(
                ErrorCode::UpstreamTruncated,
                "the upstream closed the stream before it was complete",
            )),
            Either::Right(_) => Err(ApiError::upstream_timeout(format!(
                "the upstream sent nothing for {wait_ms} ms; the stream was cut off"
            ))),
        }
    }

    /// The client-bound bytes for the events these upstream bytes complete; stops at the stream's end.
    fn translate(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut events = std::mem::take(&mut self.events);
        for event in self.decoder.feed(bytes) {
            events.clear();
            self.translator.translate(&event.data, &mut events);
            for translated in events.drain(..) {
                self.forward(translated, &mut out);
                if self.end.is_some() {
                    break;
                }
            }
            if self.end.is_some() {
                break;
            }
        }
        self.events = events;
        if self.decoder.too_large() && self.end.is_none() {
            let err = ApiError::new(
                ErrorCode::UpstreamInvalidResponse,
                format!(
                    "the upstream sent a stream event larger than {} MiB",
                    MAX_EVENT_BYTES >> 20
                ),
            );
            out.extend_from_slice(&err.sse_event());
            self.end = Some(End::Failed(err));
        }
        out
    }

    /// Appends one translated event's bytes to `out`, noting content, usage and the end.
    fn forward(&mut self, event: StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::End => {
                out.extend_from_slice(DONE);
                self.end = Some(End::Done);
            }
            StreamEvent::Error(data) => {
                let (providers, name) = &self.provider;
                let data = match providers.get(name) {
                    Some(p) => redact(p, &data),
                    None => data,
                };
                let said = serde_json::from_str::<Value>(&data)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "the upstream reported an error".into());
                out.extend_from_slice(&encode_data(&data));
                self.end = Some(End::Failed(ApiError::new(
                    ErrorCode::UpstreamStreamError,
                    said,
                )));
            }
            StreamEvent::UsageOnly(usage, data) => {
                self.usage = Some(usage);
                if self.client_wants_usage {
                    out.extend_from_slice(&encode_data(&data));
                }
            }
            StreamEvent::Chunk {
                usage,
                data,
                content,
            } => {
                if usage.is_some() {
                    self.usage = usage;
                }
                if content {
                    self.text_bytes += super::cost::text_bytes(&data);
                }
                if let Some(asm) = &mut self.assembler {
                    asm.chunk(&data);
                }
                self.content_seen |= content;
                out.extend_from_slice(&encode_data(&data));
            }
            StreamEvent::Malformed(_) => {
                let err = ApiError::new(
                    ErrorCode::UpstreamInvalidResponse,
                    "the upstream sent a stream event that is not JSON",
                );
                out.extend_from_slice(&err.sse_event());
                self.end = Some(End::Failed(err));
            }
        }
    }
}

/// The client's stream, and the log row, which resolves when the stream ends, fails or is dropped.
pub(super) fn relay<H: Clock + Clone + 'static>(
    host: H,
    source: Source,
    trace: Trace,
    idle_ms: u64,
) -> (
    LocalBoxStream<'static, Vec<u8>>,
    LocalBoxFuture<'static, LogRecord>,
) {
    let (tx, rx) = oneshot::channel();
    let relay = Relay {
        shutdown: host.shutdown(),
        source,
        idle_ms,
        finished: false,
        recorder: Recorder {
            host,
            pending: Some((trace, tx)),
        },
    };
    let body = stream::unfold(relay, |mut r| async move {
        r.next_chunk().await.map(|c| (c, r))
    })
    .boxed_local();
    // The recorder sends the row when the stream ends or when it is dropped, so the channel is never cancelled.
    let record = rx.map(Result::unwrap_or_default).boxed_local();
    (body, record)
}

struct Relay<H: Clock> {
    /// The host's drain deadline: when it passes, the stream ends with an error event.
    shutdown: LocalBoxFuture<'static, ()>,
    source: Source,
    idle_ms: u64,
    finished: bool,
    recorder: Recorder<H>,
}

impl<H: Clock> Relay<H> {
    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        while !self.finished {
            let out = if self.source.pending.is_empty() {
                let read = {
                    let read = std::pin::pin!(self.source.read(&self.recorder.host, self.idle_ms));
                    match future::select(read, &mut self.shutdown).await {
                        Either::Left((read, _)) => read,
                        Either::Right(_) => Err(ApiError::new(
                            ErrorCode::ShuttingDown,
                            "the gateway is restarting; the stream was cut off",
                        )),
                    }
                };
                match read {
                    Ok(out) => out,
                    Err(e) => {
                        self.finish(Some(&e));
                        return Some(e.sse_event());
                    }
                }
            } else {
                std::mem::take(&mut self.source.pending)
            };
            if let Some(trace) = self.recorder.trace() {
                if let Some(usage) = self.source.usage {
                    trace.stream_usage(usage);
                }
                trace.relayed(self.source.text_bytes);
            }
            match self.source.end.take() {
                Some(End::Done) => self.finish(None),
                Some(End::Failed(e)) => self.finish(Some(&e)),
                None => {}
            }
            if !out.is_empty() {
                return Some(out);
            }
        }
        None
    }

    fn finish(&mut self, err: Option<&ApiError>) {
        self.finished = true;
        self.keep_answer();
        self.recorder.finish(err);
    }

    /// Hands the assembled answer (whole or as far as it came) to the row.
    fn keep_answer(&mut self) {
        if let (Some((answer, finished)), Some(trace)) =
            (self.source.assembled(), self.recorder.trace())
        {
            trace.answer(answer, finished);
        }
    }
}

impl<H: Clock> Drop for Relay<H> {
    /// The client left mid-stream: the row (sent by the recorder's drop, after this) keeps what it was sent.
    fn drop(&mut self) {
        self.keep_answer();
    }
}

/// Completes the log row exactly once: when the stream ends, fails, or is dropped because the client left.
struct Recorder<H: Clock> {
    host: H,
    /// The row so far and where it goes; taken when it is sent.
    pending: Option<(Trace, oneshot::Sender<LogRecord>)>,
}

impl<H: Clock> Recorder<H> {
    fn trace(&mut self) -> Option<&mut Trace> {
        self.pending.as_mut().map(|(trace, _)| trace)
    }

    fn finish(&mut self, err: Option<&ApiError>) {
        if let (Some(e), Some(trace)) = (err, self.trace()) {
            trace.stream_failed(e);
        }
        self.send();
    }

    fn send(&mut self) {
        if let Some((trace, tx)) = self.pending.take() {
            let _ = tx.send(trace.finish(self.host.now_ms()));
        }
    }
}

impl<H: Clock> Drop for Recorder<H> {
    fn drop(&mut self) {
        if let Some(trace) = self.trace() {
            trace.client_closed();
            self.send();
        }
    }
}
