//! The HTTP server: one current-thread tokio runtime per worker thread, all accepting on one socket.
//! The core's futures are `!Send` (as on wasm), so each connection runs on the thread that accepted it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc;

use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::LocalBoxStream;
use futures::StreamExt;
use gateway_core::{Body, Gateway, GatewayConfig, GatewayRequest, Handled, LogRecord, RequestBody};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::host::NativeHost;
use crate::shutdown::Tasks;
use crate::write_timeout::WriteTimeout;
use std::time::Duration;

/// A response body that may be `!Send`, like the core's streams (hyper's boxed bodies all require `Send`).
enum OutBody {
    Full(Option<Bytes>),
    Stream(LocalBoxStream<'static, Vec<u8>>),
}

impl hyper::body::Body for OutBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            OutBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            OutBody::Stream(s) => s
                .poll_next_unpin(cx)
                .map(|c| c.map(|c| Ok(Frame::data(Bytes::from(c))))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, OutBody::Full(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            OutBody::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            OutBody::Full(None) => hyper::body::SizeHint::with_exact(0),
            OutBody::Stream(_) => hyper::body::SizeHint::default(),
        }
    }
}

pub struct ServeOptions {
    pub listen: SocketAddr,
    pub db: PathBuf,
    pub threads: usize,
    pub config: GatewayConfig,
    /// A compiled policy file or a published policy directory; each worker thread loads its own copy and
    /// re-reads it every `POLICY_REFRESH_MS`.
    pub policy: Option<PathBuf>,
    /// What the startup check loaded from `policy`: every worker thread starts with it, so none of them ever
    /// runs without the policy that was good at start (a later broken file is then ignored by all).
    pub policy_json: Option<String>,
    /// Where settings and secrets are read: the environment, then the secrets file.
    pub secrets: crate::secrets::Secrets,
    /// How long requests and streams may go on after SIGTERM / SIGINT.
    pub drain: Duration,
    /// The payload archive's directory, and how often its expired days are deleted.
    pub archive: (PathBuf, Duration),
    pub limits: ClientLimits,
    /// A second address serving only `/metrics`, without a token (for a private network's scraper).
    pub metrics_listen: Option<SocketAddr>,
}

/// What one client may hold of the server.
#[derive(Clone, Copy)]
pub struct ClientLimits {
    /// To send its request headers (then the connection is closed; idle keep-alive counts too).
    pub header_timeout: Duration,
    /// To send its body (then a 408 and a log row).
    pub body_timeout: Duration,
    /// For a write to it to make progress (then the connection is closed).
    pub write_timeout: Duration,
    /// Open client connections at most, across worker threads.
    pub max_connections: usize,
}

/// After the drain time, how long the threads get to end their cut streams and hand over their log rows (a JSON
/// request still waiting for its provider is then cut with its connection).
const AFTER_CUT: Duration = Duration::from_secs(5);

/// An over-limit body is read and dropped before its 413 up to this size; a larger one gets the 413 at once and
/// the connection is closed.
const MAX_DRAINED_BODY: usize = 64 << 20;

pub fn serve(opts: ServeOptions) -> Result<(), String> {
    let mut conn = crate::db::open(&opts.db).map_err(|e| format!("{}: {e}", opts.db.display()))?;
    crate::db::migrate(&mut conn).map_err(|e| format!("migrations: {e}"))?;
    drop(conn);
    let log_stats = std::sync::Arc::new(gateway_core::LogStats::default());
    let (log_tx, log_writer) = crate::db::spawn_log_writer(opts.db.clone(), log_stats.clone())
        .map_err(|e| e.to_string())?;
    let (trigger, shutdown) = crate::shutdown::channel();
    let health = std::sync::Arc::new(std::sync::RwLock::new(None));
    let every = std::time::Duration::from_millis(opts.config.policy_refresh_ms);
    crate::db::spawn_health(opts.db.clone(), every, health.clone()).map_err(|e| e.to_string())?;
    // Key and team records changed by another process (`gateway keys …`) reach every thread within 0.5 s.
    let records = gateway_core::Records::default();
    crate::db::spawn_record_watch(opts.db.clone(), records.clone()).map_err(|e| e.to_string())?;
    // One set of limit counters for all threads: a key's limits hold whichever thread serves it.
    let ledger = gateway_core::limits::Ledger::default();
    // One response cache for all threads, its size capped by CACHE_MAX_BYTES.
    let cache_bytes = match std::env::var("CACHE_MAX_BYTES") {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("CACHE_MAX_BYTES: `{v}` is not a number of bytes"))?,
        Err(_) => 64 << 20,
    };
    let cache = crate::cache::ResponseCache::new(cache_bytes);
    let (archive_dir, sweep_every) = opts.archive.clone();
    crate::archive::spawn_sweeper(archive_dir.clone(), sweep_every).map_err(|e| e.to_string())?;
    let archive = crate::archive::Archive::new(archive_dir);
    let listener =
        std::net::TcpListener::bind(opts.listen).map_err(|e| format!("{}: {e}", opts.listen))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let start_policy = match &opts.policy_json {
        Some(json) => Some(gateway_policy::Policy::from_json(json).map_err(|e| e.to_string())?),
        None => None,
    };
    let table = start_policy.as_ref().map_or_else(
        || (*opts.config.providers).clone(),
        |p| gateway_core::Providers::from_catalog(&p.artifact().catalog, |k| opts.secrets.get(k)),
    );
    if table.configured.is_empty() {
        eprintln!("gateway: warning: no provider configured (set OPENAI_API_KEY or OPENAI_BASE_URL, or declare one in the catalog)");
    }
    for u in &table.unconfigured {
        if let gateway_core::Unusable::Misconfigured(e) = &u.why {
            eprintln!("gateway: warning: provider `{}` is not usable: {e}", u.name);
        }
    }
    let names: Vec<&str> = table.configured.iter().map(|p| p.name.as_str()).collect();
    let policy = start_policy
        .as_ref()
        .map_or("builtin (route to what was requested)", |p| &p.hash()[..12]);
    println!(
        "gateway listening on http://{addr} (providers: {}; db: {}; policy: {policy})",
        names.join(", "),
        opts.db.display()
    );
    // One cooldown table for all worker threads: a provider model that keeps failing is put last everywhere.
    let cooldowns = gateway_core::Cooldowns::default();
    let connections = std::sync::Arc::new(tokio::sync::Semaphore::new(
        opts.limits.max_connections.max(1),
    ));
    let metrics = crate::metrics::Metrics::new(
        log_stats.clone(),
        (opts.limits.max_connections.max(1), connections.clone()),
    );
    let metrics_token = opts
        .secrets
        .get("GATEWAY_METRICS_TOKEN")
        .or_else(|| opts.config.admin_token.clone())
        .filter(|t| !t.is_empty());
    if let Some(addr) = opts.metrics_listen {
        crate::metrics::spawn_listener(addr, metrics.clone())?;
    }
    let mut handles = Vec::new();
    for i in 0..opts.threads.max(1) {
        let listener = listener.try_clone().map_err(|e| e.to_string())?;
        let (config, db, log_tx, health) = (
            opts.config.clone(),
            opts.db.clone(),
            log_tx.clone(),
            health.clone(),
        );
        let policy = (opts.policy.clone(), opts.policy_json.clone());
        let limits = opts.limits;
        let shared = ThreadShared {
            health,
            cooldowns: cooldowns.clone(),
            log_stats: log_stats.clone(),
            shutdown: shutdown.clone(),
            connections: connections.clone(),
            secrets: opts.secrets.clone(),
            records: records.clone(),
            ledger: ledger.clone(),
            cache: cache.clone(),
            archive: archive.clone(),
            metrics: (metrics.clone(), metrics_token.clone()),
        };
        let handle = std::thread::Builder::new()
            .name(format!("gateway-{i}"))
            .spawn(move || worker_thread(listener, (config, limits), db, log_tx, policy, shared))
            .map_err(|e| e.to_string())?;
        handles.push(handle);
    }
    drop(listener);
    let result = until_stopped(handles, &trigger, opts.drain);
    // The worker threads' senders are gone: the writer writes what it holds, then ends.
    drop(log_tx);
    if log_writer.join().is_err() {
        return Err("the log writer panicked".into());
    }
    result
}

/// Waits for SIGTERM or SIGINT (or a worker thread failing), then drains: stop accepting, wait for the worker
/// threads up to `drain`, cut what still runs, wait [`AFTER_CUT`] more.
fn until_stopped(
    handles: Vec<std::thread::JoinHandle<Result<(), String>>>,
    trigger: &crate::shutdown::Trigger,
    drain: Duration,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("SIGTERM handler: {e}"))?;
        let threads = futures::future::join_all(
            handles
                .into_iter()
                .map(|h| tokio::task::spawn_blocking(move || h.join())),
        );
        let mut threads = std::pin::pin!(threads);
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            // A worker thread ended by itself: it failed to start.
            done = &mut threads => return joined(done),
        }
        eprintln!(
            "gateway: stopping: no new connections, draining for up to {} ms",
            drain.as_millis()
        );
        trigger.stop_accepting();
        if let Ok(done) = tokio::time::timeout(drain, &mut threads).await {
            eprintln!("gateway: drained, every log row written");
            return joined(done);
        }
        eprintln!("gateway: drain time over: ending the streams still running");
        trigger.cut();
        match tokio::time::timeout(AFTER_CUT, &mut threads).await {
            Ok(done) => joined(done),
            Err(_) => {
                eprintln!("gateway: requests still waiting for providers were cut");
                Ok(())
            }
        }
    })
}

type Joined = Result<std::thread::Result<Result<(), String>>, tokio::task::JoinError>;

fn joined(results: Vec<Joined>) -> Result<(), String> {
    for r in results {
        match r {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            _ => return Err("a worker thread panicked".into()),
        }
    }
    Ok(())
}

/// What every worker thread shares with the others.
struct ThreadShared {
    health: std::sync::Arc<std::sync::RwLock<Option<String>>>,
    cooldowns: gateway_core::Cooldowns,
    log_stats: std::sync::Arc<gateway_core::LogStats>,
    shutdown: crate::shutdown::Shutdown,
    /// One permit per open client connection.
    connections: std::sync::Arc<tokio::sync::Semaphore>,
    secrets: crate::secrets::Secrets,
    records: gateway_core::Records,
    ledger: gateway_core::limits::Ledger,
    cache: crate::cache::ResponseCache,
    archive: crate::archive::Archive,
    /// The metrics, and the token `/metrics` wants on the API's address (none: not served there).
    metrics: (crate::metrics::Metrics, Option<String>),
}

fn worker_thread(
    listener: std::net::TcpListener,
    (config, limits): (GatewayConfig, ClientLimits),
    db: PathBuf,
    log_tx: mpsc::Sender<LogRecord>,
    (policy, start_policy): (Option<PathBuf>, Option<String>),
    ThreadShared {
        health,
        cooldowns,
        log_stats,
        shutdown,
        connections: permits,
        secrets,
        records,
        ledger,
        cache,
        archive,
        metrics,
    }: ThreadShared,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let host = NativeHost::new(
            &db,
            policy,
            (health, secrets, ledger, cache, archive),
            (shutdown.clone(), config.clock_offset_ms),
        )?;
        let start_policy = match start_policy {
            Some(json) => Some(Rc::new(
                gateway_policy::Policy::from_json(&json).map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        let gateway = Rc::new(
            Gateway::new(host, Rc::new(config))
                .with_shared(gateway_core::Shared::across_threads(
                    cooldowns, log_stats, records,
                ))
                .with_policy(start_policy),
        );
        let (connections, logs) = (Tasks::default(), Tasks::default());
        let mut refused = AcceptErrors::default();
        loop {
            // At the connection limit, wait for one to close before accepting another.
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = shutdown.stopping() => break,
            };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.stopping() => break,
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors (or another transient error): back off instead of spinning.
                    refused.failed(&e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (gateway, log_tx, logs) = (gateway.clone(), log_tx.clone(), logs.clone());
            let (refusals, refusals_log) = (gateway.clone(), (log_tx.clone(), metrics.0.clone()));
            let metrics = metrics.clone();
            let stopping = shutdown.stopping();
            connections.spawn(async move {
                let _permit = permit;
                let service = service_fn(move |req| {
                    let sinks = (log_tx.clone(), logs.clone(), metrics.clone());
                    handle(gateway.clone(), sinks, limits.body_timeout, req)
                });
                // Without a timer hyper has no header read timeout: a slowloris client would hold its
                // connection forever.
                let conn = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .serve_connection(
                        TokioIo::new(WriteTimeout::new(stream, limits.write_timeout)),
                        service,
                    );
                let mut conn = std::pin::pin!(conn);
                let ended = tokio::select! {
                    ended = conn.as_mut() => ended,
                    _ = stopping => {
                        // Finish the request in flight (its stream too), then close instead of keeping alive.
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                // A request hyper could not parse never reached `handle`; hyper answered it (431, 414, 400).
                if let Some(code) = ended.err().as_ref().and_then(unparsed) {
                    let row = refusals.unreadable(code);
                    refusals_log.1.record(&row);
                    let _ = refusals_log.0.send(row);
                }
            });
        }
        drop(listener);
        connections.idle().await;
        logs.idle().await;
        Ok(())
    })
}

/// What hyper answered a request it could not parse (its own automatic response), as the row's error.
fn unparsed(e: &hyper::Error) -> Option<gateway_core::ErrorCode> {
    use gateway_core::ErrorCode;
    if !e.is_parse() {
        return None; // a timeout, a reset, a client that left: no request was made
    }
    Some(if !e.is_parse_too_large() {
        ErrorCode::MalformedRequest
    } else if e.to_string().contains("URI") {
        // hyper tells a URI over its limit (414) from a head over its buffer (431) only in its message.
        ErrorCode::UriTooLong
    } else {
        ErrorCode::HeadersTooLarge
    })
}

/// Accept errors, logged at most once a second with how many there were.
#[derive(Default)]
struct AcceptErrors {
    last: Option<std::time::Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    fn failed(&mut self, e: &std::io::Error) {
        self.unlogged += 1;
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            eprintln!(
                "gateway: accept failed ({} time(s) since the last report): {e}",
                self.unlogged
            );
            self.last = Some(std::time::Instant::now());
            self.unlogged = 0;
        }
    }
}

async fn handle(
    gateway: Rc<Gateway<NativeHost>>,
    (log_tx, logs, (metrics, metrics_token)): (
        mpsc::Sender<LogRecord>,
        Tasks,
        (crate::metrics::Metrics, Option<String>),
    ),
    body_timeout: Duration,
    req: Request<Incoming>,
) -> Result<Response<OutBody>, Infallible> {
    if req.uri().path() == "/metrics" {
        if let Some(token) = &metrics_token {
            let headers: Vec<(String, String)> = req
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let (status, kind, body) =
                crate::metrics::answer(&metrics, req.method().as_str(), &headers, Some(token));
            return Ok(Response::builder()
                .status(status)
                .header("content-type", kind)
                .body(OutBody::Full(Some(Bytes::from(body))))
                .unwrap_or_else(|_| Response::new(OutBody::Full(None))));
        }
    }
    if let Some(file) = crate::console::serve(req.method().as_str(), req.uri().path()) {
        let mut builder = Response::builder().status(file.status);
        for (k, v) in file.headers {
            builder = builder.header(k, v);
        }
        let body = (req.method() != hyper::Method::HEAD).then(|| Bytes::from_static(file.body));
        return Ok(builder
            .body(OutBody::Full(body))
            .unwrap_or_else(|_| Response::new(OutBody::Full(None))));
    }
    let limit = gateway.config().body_limit(req.uri().path());
    let (parts, body) = req.into_parts();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let declared_len = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let body = if declared_len.is_some_and(|n| n > limit) {
        // Clients such as urllib and `requests` write their whole body before they read: read and drop it (up
        // to a cap, within the body timeout) so that they can read the 413 instead of a reset connection.
        if declared_len.is_some_and(|n| n <= MAX_DRAINED_BODY) {
            let mut body = body;
            let drain = async { while let Some(Ok(_)) = body.frame().await {} };
            let _ = tokio::time::timeout(body_timeout, drain).await;
        }
        RequestBody::TooLarge
    } else {
        match tokio::time::timeout(body_timeout, Limited::new(body, limit).collect()).await {
            Err(_) => RequestBody::TimedOut,
            Ok(Ok(collected)) => RequestBody::Bytes(collected.to_bytes().to_vec()),
            Ok(Err(e))
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                RequestBody::TooLarge
            }
            // The client's body failed mid-way; it is probably gone, and what arrived is not a request.
            Ok(Err(_)) => RequestBody::Bytes(Vec::new()),
        }
    };
    let request = GatewayRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body,
    };
    // The row reaches the log whatever happens, the client leaving first (hyper then drops this future) too.
    let (work, row) = gateway.begin(request);
    logs.spawn(async move {
        if let Some(row) = row.await {
            metrics.record(&row);
            let _ = log_tx.send(row);
        }
    });
    let Handled {
        response,
        background,
        ..
    } = work.await;
    if let Some(work) = background {
        tokio::task::spawn_local(work);
    }
    let body = match response.body {
        Body::Full(bytes) => OutBody::Full(Some(Bytes::from(bytes))),
        Body::Stream(stream) => OutBody::Stream(stream),
    };
    let mut builder = Response::builder().status(response.status);
    for (k, v) in &response.headers {
        builder = builder.header(k, v);
    }
    Ok(builder.body(body).unwrap_or_else(|_| {
        let err = gateway_core::ApiError::internal("the gateway built an invalid response header");
        let mut r = Response::new(OutBody::Full(Some(Bytes::from(err.body()))));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    }))
}
