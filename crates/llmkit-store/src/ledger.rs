//! The usage ledger: one row per request, written by a background thread (so the request
//! path only sends on a channel), and the aggregate queries behind `llmkit usage`.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::db::{Store, open_connection, write_with_retry};
use crate::error::StoreError;

/// One request as the ledger records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerRow {
    /// Unix time in seconds.
    pub ts: f64,
    pub profile: Option<String>,
    pub backend: String,
    pub model: String,
    pub session: Option<String>,
    pub batch_job: Option<String>,
    pub command: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cost_usd: f64,
    /// The model had no known price: `cost_usd` is 0 but the cost is unknown, not free.
    pub cost_unknown: bool,
    /// The tokens were counted by llmkit's tokenizer (a stream that ended before its usage
    /// chunk), not reported by the backend.
    pub tokens_counted: bool,
    pub latency_ms: u64,
    pub status: u16,
    pub cache_hit: bool,
    /// The upstream that served the request, by its name in the gateway's routes
    /// (`default` for the default upstream); `None` outside the gateway and for cache hits.
    #[serde(default)]
    pub upstream: Option<String>,
    /// The budget reservation this request settles (deleted in the same transaction).
    #[serde(skip)]
    pub reservation: Option<i64>,
}

/// Which rows `llmkit usage` looks at (unix seconds, inclusive start, exclusive end).
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub since: Option<f64>,
    pub until: Option<f64>,
}

/// How `llmkit usage` groups rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    /// One total row.
    Total,
    /// Per local calendar day.
    Day,
    Model,
    Session,
    Command,
    /// Per profile (the gateway's rows: per virtual key id).
    Profile,
    /// Per upstream (the gateway's rows; `-` for rows without one).
    Upstream,
}

/// One aggregate line of `llmkit usage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageRow {
    pub key: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    /// The known costs only; see `unpriced`.
    pub cost_usd: f64,
    /// Requests whose model had no known price: their cost is not in `cost_usd`.
    pub unpriced: u64,
    pub cache_hits: u64,
    pub errors: u64,
}

/// The SQL expression a usage group is keyed by.
fn group_key(group: UsageGroup) -> &'static str {
    match group {
        UsageGroup::Total => "'total'",
        UsageGroup::Day => "strftime('%Y-%m-%d', ts, 'unixepoch', 'localtime')",
        UsageGroup::Model => "model",
        UsageGroup::Session => "COALESCE(session_id, '-')",
        UsageGroup::Command => "command",
        UsageGroup::Profile => "COALESCE(profile, '-')",
        UsageGroup::Upstream => "COALESCE(upstream, '-')",
    }
}

/// The current time as unix seconds.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Store {
    /// Queues a ledger row; it is written by the background thread.
    pub fn record(&self, row: LedgerRow) {
        self.ledger.send(row);
    }

    /// The cached prompt tokens of each group, per model (the rows that had any), so the
    /// caller can price what the prompt cache saved.
    pub fn cached_by_model(
        &self,
        filter: &UsageFilter,
        group: UsageGroup,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.flush()?;
        let sql = format!(
            "SELECT {} AS k, model, SUM(cached_tokens) FROM ledger
             WHERE ts >= ?1 AND ts < ?2 AND cached_tokens > 0 GROUP BY k, model ORDER BY k, model",
            group_key(group)
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(
            params![
                filter.since.unwrap_or(f64::MIN),
                filter.until.unwrap_or(f64::MAX)
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)),
        )?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.map_err(e))
    }

    /// Aggregates the ledger.
    pub fn usage(
        &self,
        filter: &UsageFilter,
        group: UsageGroup,
    ) -> Result<Vec<UsageRow>, StoreError> {
        self.usage_of(filter, group, None)
    }

    /// Aggregates the ledger rows of one command only (`serve`: the gateway's), or of
    /// every command when `command` is `None`.
    pub fn usage_of(
        &self,
        filter: &UsageFilter,
        group: UsageGroup,
        command: Option<&str>,
    ) -> Result<Vec<UsageRow>, StoreError> {
        self.flush()?;
        let key = group_key(group);
        let sql = format!(
            "SELECT {key} AS k, COUNT(*), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0),
                    COALESCE(SUM(cached_tokens),0), COALESCE(SUM(cost_usd),0.0), COALESCE(SUM(cache_hit),0),
                    COALESCE(SUM(CASE WHEN status >= 400 OR status = 0 THEN 1 ELSE 0 END),0),
                    COALESCE(SUM(cost_unknown),0)
             FROM ledger WHERE ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR command = ?3)
             GROUP BY k ORDER BY k"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(
            params![
                filter.since.unwrap_or(f64::MIN),
                filter.until.unwrap_or(f64::MAX),
                command
            ],
            |r| {
                Ok(UsageRow {
                    key: r.get(0)?,
                    requests: r.get::<_, i64>(1)? as u64,
                    prompt_tokens: r.get::<_, i64>(2)? as u64,
                    completion_tokens: r.get::<_, i64>(3)? as u64,
                    cached_tokens: r.get::<_, i64>(4)? as u64,
                    cost_usd: r.get(5)?,
                    cache_hits: r.get::<_, i64>(6)? as u64,
                    errors: r.get::<_, i64>(7)? as u64,
                    unpriced: r.get::<_, i64>(8)? as u64,
                })
            },
        )?;
        let out = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.map_err(e))?;
        // An empty ledger still has a total (of zero).
        if out.is_empty() && group == UsageGroup::Total {
            return Ok(vec![UsageRow {
                key: "total".into(),
                ..UsageRow::default()
            }]);
        }
        Ok(out)
    }

    /// The ledger rows themselves, oldest first.
    pub fn ledger_rows(&self, filter: &UsageFilter) -> Result<Vec<LedgerRow>, StoreError> {
        self.flush()?;
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger WHERE ts >= ?1 AND ts < ?2 ORDER BY id"
        ))?;
        let rows = stmt.query_map(
            params![
                filter.since.unwrap_or(f64::MIN),
                filter.until.unwrap_or(f64::MAX)
            ],
            ledger_row,
        )?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.map_err(e))
    }

    /// The newest failed requests (an error status, or 0 for none at all), newest first:
    /// of one command only (`serve`: the gateway's), or of every command.
    pub fn recent_failures(
        &self,
        command: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LedgerRow>, StoreError> {
        self.flush()?;
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger
             WHERE (status >= 400 OR status = 0) AND (?1 IS NULL OR command = ?1)
             ORDER BY id DESC LIMIT ?2"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![command, limit], ledger_row)?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.map_err(e))
    }

    /// Total cost recorded for one session.
    pub fn session_cost(&self, session_id: &str) -> Result<f64, StoreError> {
        self.flush()?;
        let conn = self.conn();
        Ok(conn.query_row(
            "SELECT COALESCE(SUM(cost_usd), 0.0) FROM ledger WHERE session_id = ?1",
            [session_id],
            |r| r.get(0),
        )?)
    }

    /// Formats unix seconds as a local `YYYY-MM-DD HH:MM` (SQLite knows the time zone).
    pub fn local_datetime(&self, ts: f64) -> String {
        let conn = self.conn();
        conn.query_row(
            "SELECT strftime('%Y-%m-%d %H:%M', ?1, 'unixepoch', 'localtime')",
            [ts],
            |r| r.get::<_, String>(0),
        )
        .unwrap_or_default()
    }

    /// Converts a local date or date-time (`2025-01-31`, `2025-01-31 14:00`) to unix
    /// seconds, using SQLite's own calendar and the local time zone; `None` if malformed.
    pub fn local_time_to_secs(&self, text: &str) -> Result<Option<f64>, StoreError> {
        let conn = self.conn();
        let v: Option<i64> = conn.query_row(
            "SELECT CAST(strftime('%s', ?1, 'utc') AS INTEGER)",
            [text.trim()],
            |r| r.get(0),
        )?;
        Ok(v.map(|s| s as f64))
    }
}

/// The columns [`ledger_row`] reads, in its order.
const LEDGER_COLUMNS: &str = "ts, profile, backend, model, session_id, batch_job, command,
    prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, status, cache_hit,
    cost_unknown, tokens_counted, upstream";

/// One ledger row from a query over [`LEDGER_COLUMNS`].
fn ledger_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerRow> {
    Ok(LedgerRow {
        ts: r.get(0)?,
        profile: r.get(1)?,
        backend: r.get(2)?,
        model: r.get(3)?,
        session: r.get(4)?,
        batch_job: r.get(5)?,
        command: r.get(6)?,
        prompt_tokens: r.get::<_, i64>(7)? as u64,
        completion_tokens: r.get::<_, i64>(8)? as u64,
        cached_tokens: r.get::<_, i64>(9)? as u64,
        cost_usd: r.get(10)?,
        latency_ms: r.get::<_, i64>(11)? as u64,
        status: u16::try_from(r.get::<_, i64>(12)?).unwrap_or(0),
        cache_hit: r.get::<_, i64>(13)? != 0,
        cost_unknown: r.get::<_, i64>(14)? != 0,
        tokens_counted: r.get::<_, i64>(15)? != 0,
        upstream: r.get(16)?,
        reservation: None,
    })
}

enum Msg {
    Row(Box<LedgerRow>),
    Flush(mpsc::SyncSender<()>),
}

/// The background writer: a thread with its own connection, fed by a channel.
pub(crate) struct LedgerWriter {
    tx: Option<mpsc::Sender<Msg>>,
    handle: Option<JoinHandle<()>>,
    /// The last write failure, reported by the next `flush`.
    error: Arc<Mutex<Option<StoreError>>>,
}

impl LedgerWriter {
    pub(crate) fn start(path: PathBuf) -> Self {
        let (tx, rx) = mpsc::channel::<Msg>();
        let error = Arc::new(Mutex::new(None));
        let err = Arc::clone(&error);
        let handle = std::thread::Builder::new()
            .name("llmkit-ledger".into())
            .spawn(move || run_writer(&path, &rx, &err))
            .ok();
        Self {
            tx: Some(tx),
            handle,
            error,
        }
    }

    fn send(&self, row: LedgerRow) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Row(Box::new(row)));
        }
    }

    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        if let Some(tx) = &self.tx {
            let (ack_tx, ack_rx) = mpsc::sync_channel(1);
            if tx.send(Msg::Flush(ack_tx)).is_ok() {
                let _ = ack_rx.recv();
            }
        }
        let failure = self.error.lock().unwrap_or_else(|p| p.into_inner()).take();
        match failure {
            // A full disk is said as such, with its own hint.
            Some(e @ StoreError::Unwritable { .. }) => Err(e),
            Some(e) => Err(StoreError::Ledger(e.to_string())),
            None => Ok(()),
        }
    }
}

impl Drop for LedgerWriter {
    fn drop(&mut self) {
        // Closing the channel makes the thread write what is queued and stop.
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run_writer(path: &std::path::Path, rx: &mpsc::Receiver<Msg>, error: &Mutex<Option<StoreError>>) {
    let mut conn = match open_connection(path) {
        Ok(c) => Some(c),
        Err(e) => {
            *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            None
        }
    };
    while let Ok(first) = rx.recv() {
        let mut rows = Vec::new();
        let mut acks = Vec::new();
        let mut push = |m: Msg| match m {
            Msg::Row(r) => rows.push(*r),
            Msg::Flush(a) => acks.push(a),
        };
        push(first);
        // Write everything already queued in one transaction.
        while let Ok(m) = rx.try_recv() {
            push(m);
        }
        if let (Some(c), false) = (conn.as_mut(), rows.is_empty())
            && let Err(e) = write_rows(c, &rows)
        {
            let e = match e {
                StoreError::Sqlite(s) => crate::db::map_sqlite(s, path),
                other => other,
            };
            let e = match e {
                e @ StoreError::Unwritable { .. } => e,
                other => StoreError::Ledger(format!(
                    "writing {} ledger rows failed: {other}",
                    rows.len()
                )),
            };
            *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
        for a in acks {
            let _ = a.send(());
        }
    }
}

fn write_rows(conn: &mut Connection, rows: &[LedgerRow]) -> Result<(), StoreError> {
    write_with_retry(conn, |tx| {
        let mut insert = tx.prepare_cached(
            "INSERT INTO ledger (ts, profile, backend, model, session_id, batch_job, command,
                prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, status, cache_hit,
                cost_unknown, tokens_counted, upstream)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?;
        let mut settle = tx.prepare_cached("DELETE FROM budget_reservations WHERE id = ?1")?;
        for r in rows {
            insert.execute(params![
                r.ts,
                r.profile,
                r.backend,
                r.model,
                r.session,
                r.batch_job,
                r.command,
                r.prompt_tokens as i64,
                r.completion_tokens as i64,
                r.cached_tokens as i64,
                r.cost_usd,
                r.latency_ms as i64,
                i64::from(r.status),
                i64::from(r.cache_hit),
                i64::from(r.cost_unknown),
                i64::from(r.tokens_counted),
                r.upstream,
            ])?;
            if let Some(id) = r.reservation {
                settle.execute([id])?;
            }
        }
        Ok(())
    })
}
