//! `loadgen`: a small closed-loop HTTP/1.1 load generator for the gateway's benchmarks (scripts/bench.sh).
//!
//! Each connection sends the same request again as soon as the previous response has fully arrived
//! (keep-alive), for a fixed time after a warm-up. It measures every response's latency (request written →
//! last byte) and time to first byte of the body (for SSE: of the first content token, so a stream's role
//! chunk does not count), and prints the
//! percentiles as JSON. The client is deliberately minimal (no TLS, no pooling logic) so that its own cost is
//! small next to what it measures.

use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Parser, Debug, Clone)]
#[command(about = "Closed-loop HTTP/1.1 load generator (latency, time to first byte, requests/s)")]
struct Args {
    /// `http://host:port/path`
    #[arg(long)]
    url: String,
    /// A request header, `name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// The JSON body to POST; without one, a GET.
    #[arg(long, default_value = "")]
    body: String,
    /// Concurrent connections, each one request at a time.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Seconds of measurement.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before measuring (responses not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

struct Sample {
    total_us: u64,
    ttfb_us: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let rest = args
        .url
        .strip_prefix("http://")
        .ok_or("only http:// URLs")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut request = if args.body.is_empty() {
        format!("GET {path} HTTP/1.1\r\nhost: {authority}\r\n")
    } else {
        format!(
            "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            args.body.len()
        )
    };
    for h in &args.headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(&args.body);
    let request = request.into_bytes();
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let until = measure_from + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (authority, request) = (authority.to_owned(), request.clone());
        tasks.push(tokio::spawn(async move {
            connection(&authority, &request, measure_from, until).await
        }));
    }
    let (mut samples, mut errors) = (Vec::new(), 0u64);
    for t in tasks {
        let (s, e) = t.await.map_err(|e| e.to_string())??;
        samples.extend(s);
        errors += e;
    }
    let seconds = args.duration;
    let mut total: Vec<u64> = samples.iter().map(|s| s.total_us).collect();
    let mut ttfb: Vec<u64> = samples.iter().map(|s| s.ttfb_us).collect();
    total.sort_unstable();
    ttfb.sort_unstable();
    let pct = |v: &[u64], p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i] as f64 / 1000.0
    };
    let out = serde_json::json!({
        "requests": samples.len(),
        "errors": errors,
        "rps": (samples.len() as f64 / seconds).round(),
        "latency_ms": {"p50": pct(&total, 0.5), "p90": pct(&total, 0.9), "p99": pct(&total, 0.99)},
        "ttfb_ms": {"p50": pct(&ttfb, 0.5), "p90": pct(&ttfb, 0.9), "p99": pct(&ttfb, 0.99)},
    });
    println!("{out}");
    Ok(())
}

/// One keep-alive connection's loop: samples taken after `measure_from`, and failed responses.
async fn connection(
    authority: &str,
    request: &[u8],
    measure_from: Instant,
    until: Instant,
) -> Result<(Vec<Sample>, u64), String> {
    let mut samples = Vec::new();
    let mut errors = 0;
    let mut conn: Option<BufReader<TcpStream>> = None;
    while Instant::now() < until {
        let stream = match conn.take() {
            Some(c) => c,
            None => {
                let s = TcpStream::connect(authority)
                    .await
                    .map_err(|e| format!("{authority}: {e}"))?;
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                BufReader::new(s)
            }
        };
        let mut stream = stream;
        let sent = Instant::now();
        let result = exchange(&mut stream, request, sent).await;
        match result {
            Ok((status, ttfb, keep)) => {
                let total = sent.elapsed();
                if sent >= measure_from && Instant::now() <= until {
                    if status == 200 {
                        samples.push(Sample {
                            total_us: total.as_micros() as u64,
                            ttfb_us: ttfb.as_micros() as u64,
                        });
                    } else {
                        errors += 1;
                    }
                }
                if keep {
                    conn = Some(stream);
                }
            }
            Err(_) => errors += 1,
        }
    }
    Ok((samples, errors))
}

/// Whether SSE bytes carry the first token: a non-empty `"content":"…"` (the role chunk's is empty).
fn has_token(bytes: &[u8]) -> bool {
    const KEY: &[u8] = b"\"content\":\"";
    bytes
        .windows(KEY.len() + 1)
        .any(|w| w.starts_with(KEY) && w[KEY.len()] != b'"')
}

/// Writes the request and reads the whole response: status, time to the first body byte (SSE: first
/// content token), and whether the connection can be reused.
async fn exchange(
    s: &mut BufReader<TcpStream>,
    request: &[u8],
    sent: Instant,
) -> Result<(u16, Duration, bool), String> {
    s.get_mut()
        .write_all(request)
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    s.read_line(&mut line).await.map_err(|e| e.to_string())?;
    let first_byte = sent.elapsed();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let (mut length, mut chunked, mut keep) = (None, false, true);
    loop {
        line.clear();
        if s.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
            return Err("connection closed in headers".into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        match k.as_str() {
            "content-length" => length = v.parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            "connection" => keep = !v.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut ttfb = None;
    if chunked {
        loop {
            line.clear();
            s.read_line(&mut line).await.map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            let mut chunk = vec![0; size + 2];
            s.read_exact(&mut chunk).await.map_err(|e| e.to_string())?;
            if ttfb.is_none() && size > 0 && has_token(&chunk) {
                ttfb = Some(sent.elapsed());
            }
            if size == 0 {
                break;
            }
        }
    } else {
        let mut body = vec![0; length.unwrap_or(0)];
        s.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        ttfb = Some(first_byte);
    }
    Ok((status, ttfb.unwrap_or_else(|| sent.elapsed()), keep))
}
