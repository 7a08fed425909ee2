//! `gateway`: the AI gateway as one native binary (hyper + tokio + SQLite), for private deployments,
//! local development without Node, and benchmarks. The same core runs on Cloudflare Workers.

mod archive;
mod cache;
mod console;
mod db;
mod host;
mod metrics;
mod policy_source;
mod secrets;
mod server;
mod shutdown;
mod write_timeout;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gateway_core::{auth, GatewayConfig, KeyRecord};

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "OpenAI-compatible AI gateway (native host)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API. Providers and limits come from environment variables (see the README).
    Serve {
        #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// SQLite database for keys and logs; created and migrated if needed.
        #[arg(long, env = "GATEWAY_DB", default_value = "gateway.sqlite")]
        db: PathBuf,
        /// Worker threads, each with its own event loop (default: available cores).
        #[arg(long, env = "GATEWAY_THREADS")]
        threads: Option<usize>,
        /// The routing policy: a compiled policy file (`gateway-policy compile policies -o policy.json`) or
        /// a directory `gateway-policy publish --dir` writes to. Re-read every POLICY_REFRESH_MS, so a new
        /// policy applies without a restart. Without one, every request goes to the model it names.
        #[arg(long, env = "GATEWAY_POLICY")]
        policy: Option<PathBuf>,
        /// On SIGTERM or SIGINT: stop accepting, let requests and streams finish for this long, then end the
        /// streams still running with an error event; every log row is written before the process exits.
        #[arg(long, env = "GATEWAY_DRAIN_MS", default_value_t = 10_000)]
        drain_ms: u64,
        /// A client that has not sent all its request headers within this long is disconnected (an idle
        /// keep-alive connection too, counted from the end of its last response).
        #[arg(long, env = "GATEWAY_HEADER_TIMEOUT_MS", default_value_t = 30_000)]
        header_timeout_ms: u64,
        /// A request body that has not fully arrived within this long is answered 408.
        #[arg(long, env = "GATEWAY_BODY_TIMEOUT_MS", default_value_t = 30_000)]
        body_timeout_ms: u64,
        /// Open client connections at most (all threads together); more wait in the listen backlog until one
        /// closes, so the process never runs out of file descriptors.
        #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", default_value_t = 10_000)]
        max_connections: usize,
        /// A client that reads nothing of its response for this long is disconnected (its stream's upstream
        /// call is cancelled).
        #[arg(long, env = "GATEWAY_WRITE_TIMEOUT_MS", default_value_t = 30_000)]
        write_timeout_ms: u64,
        /// `NAME=value` lines read after the environment for settings and secrets, re-read when the file
        /// changes: a provider added to the catalog finds its key here without a restart.
        #[arg(long, env = "GATEWAY_SECRETS_FILE")]
        secrets_file: Option<PathBuf>,
        /// Where archived payloads are written (rules with `archive`, or every request with ARCHIVE): one
        /// folder per expiry day. Default: `archive/` beside the database.
        #[arg(long, env = "GATEWAY_ARCHIVE_DIR")]
        archive_dir: Option<PathBuf>,
        /// How often the folders of expired days are deleted from the archive.
        #[arg(long, env = "GATEWAY_ARCHIVE_SWEEP_MS", default_value_t = 3_600_000)]
        archive_sweep_ms: u64,
        /// Serve Prometheus metrics at `/metrics` on this address too, without a token (on the API's address
        /// `/metrics` wants GATEWAY_METRICS_TOKEN, or the admin token, as a bearer).
        #[arg(long, env = "GATEWAY_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
    },
    /// Apply the SQL migrations in migrations/ to the database.
    Migrate {
        #[arg(long, env = "GATEWAY_DB", default_value = "gateway.sqlite")]
        db: PathBuf,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage teams.
    Teams {
        #[command(subcommand)]
        command: TeamsCommand,
    },
    /// Print the usage report from the log's rollups, as `GET /admin/usage` serves it.
    Usage {
        #[arg(long, env = "GATEWAY_DB", default_value = "gateway.sqlite")]
        db: PathBuf,
        /// Start (a date such as 2026-12-01, a UTC time 2026-12-01T08:00:00Z, or milliseconds); default: 7 days
        /// before `--to`.
        #[arg(long)]
        from: Option<String>,
        /// End (exclusive); default: now.
        #[arg(long)]
        to: Option<String>,
        /// key, team, provider, model, rule, hour, day (comma-separated).
        #[arg(long, default_value = "")]
        group_by: String,
        /// json or csv.
        #[arg(long, default_value = "json")]
        format: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key. The key is printed once; only its SHA-256 hash is stored.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        tier: Option<String>,
        /// Store it in this SQLite database (the native host's key store).
        #[arg(long, env = "GATEWAY_DB", default_value = "gateway.sqlite")]
        db: PathBuf,
        /// Store nothing; print `{"key","id","kv_key","kv_value"}` for writing to the Worker's KV.
        #[arg(long)]
        kv_json: bool,
        /// Limits as JSON: `{"requests_per_minute": 60, "tokens_per_minute": 100000, "concurrent_streams": 4,
        /// "budget": {"currency": "CNY", "day": "50", "month": "1000"}}`; unset fields are unlimited.
        #[arg(long)]
        limits: Option<String>,
        /// `provider/model` patterns the key may use (`deepseek/*`), comma-separated; default: every model.
        #[arg(long, value_delimiter = ',')]
        allow: Vec<String>,
    },
    /// Print every key's record (never the key itself), one JSON object a line.
    List {
        #[arg(long, env = "GATEWAY_DB", default_value = "gateway.sqlite")]
        db: PathBuf,
    },
    /// Revoke a key by its id: refused (401) from the next request on, by every thread of a running gateway
    /// within a second.
    Revoke {
        #[arg(long)]
        id: String,
        #[arg(long, env = "GATEWAY_DB", default_value = "gateway.sqlite")]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum TeamsCommand {
    /// Print every team's record, one JSON object a line.
    List {
        #[arg(long, env = "GATEWAY_DB", default_value = "gateway.sqlite")]
        db: PathBuf,
    },
    /// Create or replace a team's limits and allow-list (shared by its keys).
    Set {
        #[arg(long)]
        name: String,
        /// Limits as JSON, as for `gateway keys create --limits`.
        #[arg(long)]
        limits: Option<String>,
        #[arg(long, value_delimiter = ',')]
        allow: Vec<String>,
        #[arg(long, env = "GATEWAY_DB", default_value = "gateway.sqlite")]
        db: PathBuf,
    },
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Records as JSON, one a line.
fn print_lines<T: serde::Serialize>(records: Vec<T>) -> Result<(), String> {
    for r in records {
        println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
    }
    Ok(())
}

fn parse_limits(json: Option<&str>) -> Result<gateway_core::limits::Limits, String> {
    let Some(json) = json else {
        return Ok(Default::default());
    };
    let limits: gateway_core::limits::Limits =
        serde_json::from_str(json).map_err(|e| format!("--limits: {e}"))?;
    match limits.problem() {
        Some(p) => Err(format!("--limits: {p}")),
        None => Ok(limits),
    }
}

fn checked_allow(allow: Vec<String>) -> Result<Vec<String>, String> {
    match gateway_core::auth::allow_problem(&allow) {
        Some(p) => Err(format!("--allow: {p}")),
        None => Ok(allow),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve {
            listen,
            db,
            threads,
            policy,
            drain_ms,
            header_timeout_ms,
            body_timeout_ms,
            max_connections,
            write_timeout_ms,
            secrets_file,
            archive_dir,
            archive_sweep_ms,
            metrics_listen,
        } => {
            let secrets = secrets::Secrets::new(secrets_file);
            let config =
                GatewayConfig::from_lookup(|k| secrets.get(k)).map_err(|e| e.to_string())?;
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            // Checked (format, hash, regexes) before serving: a broken policy never starts.
            let policy_json = match &policy {
                Some(path) => policy_source::PolicySource::new(path.clone())
                    .load()
                    .map_err(|e| e.to_string())?,
                None => None,
            };
            let archive_dir = archive_dir.unwrap_or_else(|| {
                db.parent()
                    .unwrap_or_else(|| std::path::Path::new("."))
                    .join("archive")
            });
            server::serve(server::ServeOptions {
                listen,
                db,
                threads,
                config,
                policy,
                policy_json,
                secrets,
                drain: std::time::Duration::from_millis(drain_ms),
                archive: (
                    archive_dir,
                    std::time::Duration::from_millis(archive_sweep_ms.max(1)),
                ),
                limits: server::ClientLimits {
                    header_timeout: std::time::Duration::from_millis(header_timeout_ms),
                    body_timeout: std::time::Duration::from_millis(body_timeout_ms),
                    write_timeout: std::time::Duration::from_millis(write_timeout_ms),
                    max_connections,
                },
                metrics_listen,
            })
        }
        Command::Migrate { db } => {
            let mut conn = db::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
            let applied = db::migrate(&mut conn).map_err(|e| e.to_string())?;
            eprintln!(
                "applied {} migration(s) to {}: {}",
                applied.len(),
                db.display(),
                applied.join(", ")
            );
            Ok(())
        }
        Command::Usage {
            db,
            from,
            to,
            group_by,
            format,
        } => {
            let mut query = format!("group_by={group_by}&format={format}");
            for (name, value) in [("from", from), ("to", to)] {
                if let Some(v) = value {
                    query += &format!("&{name}={v}");
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let query = gateway_core::usage::UsageQuery::parse(&query, now)
                .map_err(|e| e.message.clone())?;
            let conn = db::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
            let (sql, params) = query.sql();
            let rows = db::query(&conn, &sql, params).map_err(|e| e.to_string())?;
            let (_, body) = gateway_core::usage::render(&query, &rows);
            println!("{}", String::from_utf8_lossy(&body).trim_end());
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::List { db },
        } => {
            let conn = db::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
            print_lines(db::keys(&conn).map_err(|e| e.to_string())?)
        }
        Command::Teams {
            command: TeamsCommand::List { db },
        } => {
            let conn = db::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
            print_lines(db::teams(&conn).map_err(|e| e.to_string())?)
        }
        Command::Keys {
            command: KeysCommand::Revoke { id, db },
        } => {
            let conn = db::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
            if !db::revoke_key(&conn, &id, now_ms()).map_err(|e| e.to_string())? {
                return Err(format!("no key with id `{id}` in {}", db.display()));
            }
            eprintln!("revoked key {id}");
            Ok(())
        }
        Command::Teams {
            command:
                TeamsCommand::Set {
                    name,
                    limits,
                    allow,
                    db,
                },
        } => {
            let record = gateway_core::TeamRecord {
                name,
                allow: checked_allow(allow)?,
                limits: parse_limits(limits.as_deref())?,
                created_at_ms: now_ms(),
                updated_at_ms: now_ms(),
            };
            let mut conn = db::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
            db::migrate(&mut conn).map_err(|e| e.to_string())?;
            db::put_team(&conn, &record).map_err(|e| e.to_string())?;
            eprintln!("team {} saved in {}", record.name, db.display());
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Create {
                    name,
                    team,
                    tier,
                    db,
                    kv_json,
                    limits,
                    allow,
                },
        } => {
            let mut random = [0u8; 32];
            let mut id_bytes = [0u8; 6];
            getrandom::fill(&mut random).map_err(|e| e.to_string())?;
            getrandom::fill(&mut id_bytes).map_err(|e| e.to_string())?;
            let key = auth::key_from_random(&random);
            let hash = auth::hash_key(&key);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let record = KeyRecord {
                id: format!("key_{}", auth::hex(&id_bytes)),
                name,
                team,
                tier,
                tags: vec![],
                revoked: false,
                expires_at_ms: None,
                created_at_ms: now,
                allow: checked_allow(allow)?,
                limits: parse_limits(limits.as_deref())?,
                updated_at_ms: now,
            };
            if kv_json {
                let value = serde_json::to_string(&record).map_err(|e| e.to_string())?;
                let out = serde_json::json!({"key": key, "id": record.id, "kv_key": format!("key/{hash}"), "kv_value": value});
                println!("{out}");
                return Ok(());
            }
            let mut conn = db::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
            db::migrate(&mut conn).map_err(|e| e.to_string())?;
            db::insert_key(&conn, &hash, &record).map_err(|e| e.to_string())?;
            eprintln!(
                "created key {} ({}) in {}; it is shown only once:",
                record.id,
                record.name,
                db.display()
            );
            println!("{key}");
            Ok(())
        }
    }
}
