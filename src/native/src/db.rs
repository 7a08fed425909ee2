//! SQLite: the same migrations as D1, the API key table, and the log writer thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use gateway_core::TeamRecord;
use gateway_core::{KeyRecord, LogRecord, SqlValue};
use rusqlite::{params, Connection, OptionalExtension};

/// Every file in `migrations/`, in order. A test checks this list against the folder.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        include_str!("../../../migrations/0001_init.sql"),
    ),
    (
        "0002_policy.sql",
        include_str!("../../../migrations/0002_policy.sql"),
    ),
    (
        "0003_attempts.sql",
        include_str!("../../../migrations/0003_attempts.sql"),
    ),
    (
        "0004_cache_writes.sql",
        include_str!("../../../migrations/0004_cache_writes.sql"),
    ),
    (
        "0005_cost.sql",
        include_str!("../../../migrations/0005_cost.sql"),
    ),
    (
        "0006_limits.sql",
        include_str!("../../../migrations/0006_limits.sql"),
    ),
    (
        "0007_log_indexes.sql",
        include_str!("../../../migrations/0007_log_indexes.sql"),
    ),
    (
        "0008_cache.sql",
        include_str!("../../../migrations/0008_cache.sql"),
    ),
    (
        "0009_archive.sql",
        include_str!("../../../migrations/0009_archive.sql"),
    ),
    (
        "0010_media.sql",
        include_str!("../../../migrations/0010_media.sql"),
    ),
];

pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Applies the migrations not yet applied, recording them in `d1_migrations` as wrangler does on D1.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Vec<&'static str>> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, \
         applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)",
    )?;
    let mut applied = Vec::new();
    for (name, sql) in MIGRATIONS {
        let done: Option<i64> = conn
            .query_row(
                "SELECT id FROM d1_migrations WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_some() {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute("INSERT INTO d1_migrations (name) VALUES (?1)", [name])?;
        tx.commit()?;
        applied.push(*name);
    }
    Ok(applied)
}

/// Why the key table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("stored key record is invalid: {0}")]
    Record(#[from] serde_json::Error),
}

pub fn insert_key(conn: &Connection, key_hash: &str, record: &KeyRecord) -> Result<(), KeyError> {
    let json = serde_json::to_string(record)?;
    conn.execute(
        "INSERT INTO api_keys (key_hash, id, name, record, created_at_ms, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key_hash,
            record.id,
            record.name,
            json,
            record.created_at_ms,
            record.updated_at_ms
        ],
    )?;
    Ok(())
}

pub fn find_key(conn: &Connection, key_hash: &str) -> Result<Option<KeyRecord>, KeyError> {
    record(
        conn,
        "SELECT record FROM api_keys WHERE key_hash = ?1",
        key_hash,
    )
}

/// The record (JSON in the `record` column) of the row `sql` finds by `param`.
fn record<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    param: &str,
) -> Result<Option<T>, KeyError> {
    let json: Option<String> = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row([param], |r| r.get(0)).optional())?;
    match json {
        None => Ok(None),
        Some(j) => Ok(Some(serde_json::from_str(&j)?)),
    }
}

/// Marks a key revoked (by id); `false` when there is no such key.
pub fn key_by_id(conn: &Connection, id: &str) -> Result<Option<KeyRecord>, KeyError> {
    record(conn, "SELECT record FROM api_keys WHERE id = ?1", id)
}

pub fn revoke_key(conn: &Connection, id: &str, now_ms: i64) -> Result<bool, KeyError> {
    let Some(mut key) = key_by_id(conn, id)? else {
        return Ok(false);
    };
    key.revoked = true;
    key.updated_at_ms = now_ms;
    update_key(conn, &key)
}

/// Replaces the record of the key with `record.id`; `false` when there is none.
pub fn update_key(conn: &Connection, record: &KeyRecord) -> Result<bool, KeyError> {
    let changed = conn.execute(
        "UPDATE api_keys SET record = ?1, name = ?2, updated_at_ms = ?3 WHERE id = ?4",
        params![
            serde_json::to_string(record)?,
            record.name,
            record.updated_at_ms,
            record.id
        ],
    )?;
    Ok(changed > 0)
}

pub fn keys(conn: &Connection) -> Result<Vec<KeyRecord>, KeyError> {
    records(
        conn,
        "SELECT record FROM api_keys ORDER BY created_at_ms, id",
    )
}

pub fn teams(conn: &Connection) -> Result<Vec<TeamRecord>, KeyError> {
    records(conn, "SELECT record FROM teams ORDER BY name")
}

fn records<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
) -> Result<Vec<T>, KeyError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    rows.iter()
        .map(|j| serde_json::from_str(j).map_err(KeyError::from))
        .collect()
}

/// Creates or replaces a team.
pub fn put_team(conn: &Connection, team: &TeamRecord) -> Result<(), KeyError> {
    conn.execute(
        "INSERT INTO teams (name, record, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET record = excluded.record, updated_at_ms = excluded.updated_at_ms",
        params![team.name, serde_json::to_string(team)?, team.created_at_ms, team.updated_at_ms],
    )?;
    Ok(())
}

pub fn find_team(conn: &Connection, name: &str) -> Result<Option<TeamRecord>, KeyError> {
    record(conn, "SELECT record FROM teams WHERE name = ?1", name)
}

/// What a scope (`key:<id>`, `team:<name>`) spent today and this month in `zone`, in pico-units of the reporting
/// `currency` (rows logged in another reporting currency are not summed with them), from the log rows (the
/// indexes on key and on team, by time).
pub fn spend(
    conn: &Connection,
    (scope, currency): (&str, &str),
    zone: gateway_core::limits::Zone,
    now_ms: i64,
) -> rusqlite::Result<(u128, u128)> {
    let (column, id) = match scope.split_once(':') {
        Some(("team", name)) => ("team", name),
        Some((_, id)) => ("key_id", id),
        None => return Ok((0, 0)),
    };
    let sql = format!(
        "SELECT COALESCE(SUM(cost_reporting_pico), 0) FROM request_logs \
         WHERE {column} = ?1 AND id >= ?2 AND reporting_currency = ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut sum = |since: i64| -> rusqlite::Result<u128> {
        let since = gateway_core::id_floor(since);
        let total: i64 = stmt.query_row(params![id, since, currency], |r| r.get(0))?;
        Ok(u128::try_from(total).unwrap_or(0))
    };
    let day = sum(zone.day_bounds(now_ms).0)?;
    let month = sum(zone.month_bounds(now_ms).0)?;
    Ok((day, month))
}

/// Watches the key and team tables for changes made by another process (`gateway keys …`, a second gateway on
/// the same file) and says so to every thread, twice a second.
pub fn spawn_record_watch(path: PathBuf, records: gateway_core::Records) -> rusqlite::Result<()> {
    let conn = open(&path)?;
    let state = |conn: &Connection| -> rusqlite::Result<(i64, i64, i64, i64)> {
        conn.query_row(
            "SELECT (SELECT COUNT(*) FROM api_keys), (SELECT COALESCE(MAX(updated_at_ms), 0) FROM api_keys), \
             (SELECT COUNT(*) FROM teams), (SELECT COALESCE(MAX(updated_at_ms), 0) FROM teams)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
    };
    let mut last = state(&conn)?;
    std::thread::Builder::new()
        .name("record-watch".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            match state(&conn) {
                Ok(now) if now != last => {
                    last = now;
                    records.changed();
                }
                Ok(_) => {}
                Err(e) => eprintln!("gateway: watching key records failed: {e}"),
            }
        })
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok(())
}

fn to_sql(v: SqlValue) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(i),
        SqlValue::Real(f) => Value::Real(f),
        SqlValue::Text(s) => Value::Text(s),
    }
}

/// Starts the thread that writes log rows, batching whatever has queued up into one transaction.
/// How long the log writer lets rows gather before writing them (rows reach SQLite this much later).
const BATCH_WAIT: Duration = Duration::from_millis(20);
const MAX_BATCH: usize = 4096;

/// The log writer thread: it ends (after writing what it was sent) once every sender is dropped; join it to know
/// that the last row is on disk.
pub fn spawn_log_writer(
    path: PathBuf,
    stats: std::sync::Arc<gateway_core::LogStats>,
) -> rusqlite::Result<(mpsc::Sender<LogRecord>, std::thread::JoinHandle<()>)> {
    let mut conn = open(&path)?;
    let (tx, rx) = mpsc::channel::<LogRecord>();
    let handle = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                // Let rows gather for a moment: one transaction per batch, and senders rarely have to wake this
                // thread (a wake-up per request costs more than writing the row).
                std::thread::sleep(BATCH_WAIT);
                let batch: Vec<LogRecord> = std::iter::once(first)
                    .chain(rx.try_iter().take(MAX_BATCH - 1))
                    .collect();
                write_with_retries(&mut conn, &batch, &stats);
            }
        })
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok((tx, handle))
}

/// Reads the attempts of the recent log rows and aggregates them into a health snapshot (JSON), as the
/// Worker's Cron Trigger does from D1.
pub fn health_snapshot(conn: &Connection, now_ms: f64) -> rusqlite::Result<String> {
    use gateway_core::health::{Snapshot, MAX_ROWS, RECENT_ATTEMPTS_SQL, WINDOW_MS};
    let mut stmt = conn.prepare_cached(RECENT_ATTEMPTS_SQL)?;
    let since = now_ms as i64 - WINDOW_MS as i64;
    let rows: Vec<String> = stmt
        .query_map(params![since, MAX_ROWS], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    let snapshot = Snapshot::aggregate(rows.iter().map(String::as_str), now_ms, WINDOW_MS);
    Ok(serde_json::to_string(&snapshot).unwrap_or_default())
}

/// Recomputes the health snapshot from the log every `every`, in its own thread with its own connection.
pub fn spawn_health(
    path: PathBuf,
    every: Duration,
    out: std::sync::Arc<std::sync::RwLock<Option<String>>>,
) -> rusqlite::Result<()> {
    let conn = open(&path)?;
    std::thread::Builder::new()
        .name("health".into())
        .spawn(move || loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            match health_snapshot(&conn, now) {
                Ok(json) => {
                    if let Ok(mut slot) = out.write() {
                        *slot = Some(json);
                    }
                }
                Err(e) => eprintln!("gateway: health snapshot failed: {e}"),
            }
            std::thread::sleep(every);
        })
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok(())
}

/// Writes a batch; a failure (another process holding the write lock past the busy timeout, most often) is
/// retried [`WRITE_RETRIES`] times with a doubling pause, then the rows are counted as lost and said so.
fn write_with_retries(conn: &mut Connection, batch: &[LogRecord], stats: &gateway_core::LogStats) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut pause = Duration::from_millis(100);
    for attempt in 0..=WRITE_RETRIES {
        match write_batch(conn, batch) {
            Ok(()) => {
                stats.written.fetch_add(batch.len() as u64, Relaxed);
                return;
            }
            Err(e) if attempt < WRITE_RETRIES => {
                stats.retried.fetch_add(1, Relaxed);
                eprintln!(
                    "gateway: writing {} log rows failed ({e}); retrying in {} ms",
                    batch.len(),
                    pause.as_millis()
                );
                std::thread::sleep(pause);
                pause *= 2;
            }
            Err(e) => {
                stats.lost.fetch_add(batch.len() as u64, Relaxed);
                eprintln!(
                    "gateway: {} log rows lost after {WRITE_RETRIES} retries: {e}",
                    batch.len()
                );
            }
        }
    }
}

/// The rows of a read-only query, each as its columns' values (the usage report's rollups).
pub fn query(
    conn: &Connection,
    sql: &str,
    params: Vec<SqlValue>,
) -> rusqlite::Result<Vec<Vec<SqlValue>>> {
    use rusqlite::types::ValueRef;
    let mut stmt = conn.prepare_cached(sql)?;
    let columns = stmt.column_count();
    let rows = stmt.query_map(
        rusqlite::params_from_iter(params.into_iter().map(to_sql)),
        |row| {
            (0..columns)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        ValueRef::Null => SqlValue::Null,
                        ValueRef::Integer(n) => SqlValue::Integer(n),
                        ValueRef::Real(f) => SqlValue::Real(f),
                        ValueRef::Text(t) => {
                            SqlValue::Text(String::from_utf8_lossy(t).into_owned())
                        }
                        ValueRef::Blob(_) => SqlValue::Null,
                    })
                })
                .collect()
        },
    )?;
    rows.collect()
}

/// Retries of a batch the database refused (each waits up to the busy timeout, then 0.1, 0.2, … 1.6 s).
const WRITE_RETRIES: u32 = 5;

fn write_batch(conn: &mut Connection, batch: &[LogRecord]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        for (sql, params) in gateway_core::rollup::write_statements(batch) {
            tx.prepare_cached(&sql)?
                .execute(rusqlite::params_from_iter(params.into_iter().map(to_sql)))?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migration_list_matches_the_migrations_folder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn migrations_apply_once_and_log_rows_round_trip() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(
            migrate(&mut conn).unwrap(),
            vec![
                "0001_init.sql",
                "0002_policy.sql",
                "0003_attempts.sql",
                "0004_cache_writes.sql",
                "0005_cost.sql",
                "0006_limits.sql",
                "0007_log_indexes.sql",
                "0008_cache.sql",
                "0009_archive.sql",
                "0010_media.sql"
            ]
        );
        assert!(migrate(&mut conn).unwrap().is_empty());
        let rec = LogRecord {
            id: "req_1".into(),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            status: 200,
            reporting_currency: Some("USD".into()),
            cost: Some(gateway_core::CostRecord {
                pico: 2_424_000_000,
                currency: "CNY".into(),
                reporting_pico: Some(341_408_451),
                estimated: false,
                price_version: "0123456789ab".into(),
            }),
            ..Default::default()
        };
        write_batch(&mut conn, &[rec]).unwrap();
        let row: (i64, i64, String, i64, String, i64, String) = conn
            .query_row(
                "SELECT status, cost_pico, cost_currency, cost_reporting_pico, reporting_currency, \
                 cost_estimated, price_version FROM request_logs WHERE id = 'req_1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .unwrap();
        assert_eq!(
            row,
            (
                200,
                2_424_000_000,
                "CNY".into(),
                341_408_451,
                "USD".into(),
                0,
                "0123456789ab".into()
            )
        );
    }

    #[test]
    fn the_health_snapshot_aggregates_recent_attempts_from_the_log() {
        use gateway_core::Attempt;
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let attempt = |provider: &str, status: u16, error: Option<&str>| Attempt {
            provider: provider.into(),
            model: "m".into(),
            status,
            ms: 100.0,
            error: error.and_then(gateway_core::FailureClass::from_name),
        };
        let now = 1_800_000_000_000.0;
        let row = |id: &str, ts: f64, attempts: Vec<Attempt>| LogRecord {
            id: id.into(),
            ts_ms: ts as i64,
            attempt_log: attempts,
            ..Default::default()
        };
        let rows = vec![
            row(
                "a",
                now - 1000.0,
                vec![
                    attempt("deepseek", 429, Some("429")),
                    attempt("siliconflow", 200, None),
                ],
            ),
            row(
                "b",
                now - 2000.0,
                vec![
                    attempt("deepseek", 503, Some("5xx")),
                    attempt("siliconflow", 200, None),
                ],
            ),
            row(
                "c",
                now - 3000.0,
                vec![
                    attempt("deepseek", 504, Some("timeout")),
                    attempt("siliconflow", 200, None),
                ],
            ),
            // Outside the window: not counted.
            row(
                "d",
                now - 600_000.0,
                vec![attempt("openai", 500, Some("5xx"))],
            ),
        ];
        write_batch(&mut conn, &rows).unwrap();
        let snapshot: gateway_core::health::Snapshot =
            serde_json::from_str(&health_snapshot(&conn, now).unwrap()).unwrap();
        let ds = &snapshot.providers["deepseek"];
        assert_eq!((ds.attempts, ds.errors, ds.up), (3, 3, false));
        assert!(snapshot.providers["siliconflow"].up);
        assert!(!snapshot.providers.contains_key("openai"));
    }
}
