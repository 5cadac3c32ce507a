//! The usage ledger in PostgreSQL: batched, idempotent inserts that settle reservations and
//! roll spend up in the same transaction, the `usage` queries over the rollup, and the
//! background writer that batches rows and spools them to disk while PostgreSQL is down.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llmkit_store::{LedgerRow, UsageRow};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::error::ClusterError;
use crate::pg::PgStore;
use crate::pg_budget::Periods;
use crate::spool::Spool;

/// The most rows one insert carries.
const BATCH_ROWS: usize = 500;

/// One request for the ledger: the row, who it belongs to and what it settles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Unique per request (the gateway's request id): a second insert is ignored.
    pub request_id: String,
    /// The budget scope (a virtual key's id), whose spend rows the cost is added to.
    pub scope: Option<String>,
    /// The calendar periods the request falls in (the caller's time zone).
    pub periods: Periods,
    /// The reservation this request settles.
    pub reservation: Option<i64>,
    pub row: LedgerRow,
}

/// Which rows `usage` sums and how it groups them.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    /// First day included (`YYYY-MM-DD`, as in [`Periods::day`]).
    pub since_day: Option<String>,
    /// First day excluded.
    pub until_day: Option<String>,
    pub scope: Option<String>,
    pub group: UsageTotal,
}

/// How `usage` groups: one total, per day, per model, per scope (key) or per upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UsageTotal {
    #[default]
    Total,
    Day,
    Model,
    Scope,
    /// `-` for rows that name none.
    Upstream,
}

impl PgStore {
    /// Inserts `entries` in one transaction: rows already present (by request id) are
    /// skipped, each new row's reservation is released and its cost added to its scope's
    /// spend, and the daily rollup is updated. Returns how many rows were new.
    pub async fn settle_batch(&self, entries: &[LedgerEntry]) -> Result<usize, ClusterError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        let col = |f: fn(&LedgerEntry) -> String| entries.iter().map(f).collect::<Vec<_>>();
        let ids = col(|e| e.request_id.clone());
        let scopes: Vec<Option<String>> = entries.iter().map(|e| e.scope.clone()).collect();
        let ts: Vec<f64> = entries.iter().map(|e| e.row.ts).collect();
        let backends = col(|e| e.row.backend.clone());
        let models = col(|e| e.row.model.clone());
        let commands = col(|e| e.row.command.clone());
        let int = |f: fn(&LedgerRow) -> u64| {
            entries
                .iter()
                .map(|e| i64::try_from(f(&e.row)).unwrap_or(i64::MAX))
                .collect::<Vec<i64>>()
        };
        let prompt = int(|r| r.prompt_tokens);
        let completion = int(|r| r.completion_tokens);
        let cached = int(|r| r.cached_tokens);
        let latency = int(|r| r.latency_ms);
        let cost: Vec<f64> = entries.iter().map(|e| e.row.cost_usd).collect();
        let unknown: Vec<bool> = entries.iter().map(|e| e.row.cost_unknown).collect();
        let status: Vec<i32> = entries.iter().map(|e| i32::from(e.row.status)).collect();
        let hit: Vec<bool> = entries.iter().map(|e| e.row.cache_hit).collect();
        let counted: Vec<bool> = entries.iter().map(|e| e.row.tokens_counted).collect();
        let upstreams: Vec<Option<String>> =
            entries.iter().map(|e| e.row.upstream.clone()).collect();
        let inserted = tx
            .query(
                "INSERT INTO llmkit_ledger (request_id, scope, ts, backend, model, command,
                     prompt_tokens, completion_tokens, cached_tokens, cost_usd, cost_unknown,
                     latency_ms, status, cache_hit, tokens_counted, upstream)
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::FLOAT8[], $4::TEXT[],
                     $5::TEXT[], $6::TEXT[], $7::INT8[], $8::INT8[], $9::INT8[], $10::FLOAT8[],
                     $11::BOOL[], $12::INT8[], $13::INT4[], $14::BOOL[], $15::BOOL[],
                     $16::TEXT[])
                 ON CONFLICT (request_id) DO NOTHING
                 RETURNING request_id",
                &[
                    &ids,
                    &scopes,
                    &ts,
                    &backends,
                    &models,
                    &commands,
                    &prompt,
                    &completion,
                    &cached,
                    &cost,
                    &unknown,
                    &latency,
                    &status,
                    &hit,
                    &counted,
                    &upstreams,
                ],
            )
            .await?;
        let new: std::collections::HashSet<String> =
            inserted.iter().map(|r| r.get::<_, String>(0)).collect();
        let fresh: Vec<&LedgerEntry> = entries
            .iter()
            .filter(|e| new.contains(&e.request_id))
            .collect();

        // Release the settled reservations.
        let reservations: Vec<i64> = fresh.iter().filter_map(|e| e.reservation).collect();
        // (scope, period) -> (spent delta, reserved delta), applied in key order: the lock
        // order that reservations use too, so the two cannot deadlock.
        let mut spend: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
        if !reservations.is_empty() {
            for r in tx
                .query(
                    "DELETE FROM llmkit_reservations WHERE id = ANY($1)
                     RETURNING scope, periods, amount_usd",
                    &[&reservations],
                )
                .await?
            {
                let scope: String = r.get(0);
                let amount: f64 = r.get(2);
                for p in r.get::<_, Vec<String>>(1) {
                    spend.entry((scope.clone(), p)).or_default().1 += amount;
                }
            }
        }
        // (day, scope, model, upstream) -> rollup deltas.
        type Day = (String, String, String, String);
        let mut rollup: BTreeMap<Day, [i64; 7]> = BTreeMap::new();
        let mut rollup_cost: BTreeMap<Day, f64> = BTreeMap::new();
        for e in &fresh {
            let scope = e.scope.clone().unwrap_or_default();
            if e.scope.is_some() {
                for p in e.periods.keys() {
                    spend.entry((scope.clone(), p)).or_default().0 += e.row.cost_usd;
                }
            }
            let key = (
                e.periods.day.clone(),
                scope,
                e.row.model.clone(),
                e.row.upstream.clone().unwrap_or_default(),
            );
            let r = &e.row;
            let d = rollup.entry(key.clone()).or_default();
            d[0] += 1;
            d[1] += i64::try_from(r.prompt_tokens).unwrap_or(i64::MAX);
            d[2] += i64::try_from(r.completion_tokens).unwrap_or(i64::MAX);
            d[3] += i64::try_from(r.cached_tokens).unwrap_or(i64::MAX);
            d[4] += i64::from(r.cost_unknown);
            d[5] += i64::from(!(200..300).contains(&r.status));
            d[6] += i64::from(r.cache_hit);
            *rollup_cost.entry(key).or_default() += r.cost_usd;
        }
        for ((scope, period), (spent, released)) in &spend {
            tx.execute(
                "INSERT INTO llmkit_spend (scope, period, spent_usd) VALUES ($1, $2, $3)
                 ON CONFLICT (scope, period) DO UPDATE SET
                     spent_usd = llmkit_spend.spent_usd + EXCLUDED.spent_usd,
                     reserved_usd = GREATEST(llmkit_spend.reserved_usd - $4, 0)",
                &[scope, period, spent, released],
            )
            .await?;
        }
        for (key, d) in &rollup {
            let cost = rollup_cost.get(key).copied().unwrap_or(0.0);
            tx.execute(
                "INSERT INTO llmkit_usage_daily (day, scope, model, upstream, requests,
                     prompt_tokens, completion_tokens, cached_tokens, unpriced, errors,
                     cache_hits, cost_usd)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (day, scope, model, upstream) DO UPDATE SET
                     requests = llmkit_usage_daily.requests + EXCLUDED.requests,
                     prompt_tokens = llmkit_usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,
                     completion_tokens = llmkit_usage_daily.completion_tokens + EXCLUDED.completion_tokens,
                     cached_tokens = llmkit_usage_daily.cached_tokens + EXCLUDED.cached_tokens,
                     unpriced = llmkit_usage_daily.unpriced + EXCLUDED.unpriced,
                     errors = llmkit_usage_daily.errors + EXCLUDED.errors,
                     cache_hits = llmkit_usage_daily.cache_hits + EXCLUDED.cache_hits,
                     cost_usd = llmkit_usage_daily.cost_usd + EXCLUDED.cost_usd",
                &[
                    &key.0, &key.1, &key.2, &key.3, &d[0], &d[1], &d[2], &d[3], &d[4], &d[5],
                    &d[6], &cost,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(fresh.len())
    }

    /// Sums of the ledger from the daily rollup (so the ledger's size does not matter).
    pub async fn usage(&self, q: &UsageQuery) -> Result<Vec<UsageRow>, ClusterError> {
        let key = match q.group {
            UsageTotal::Total => "'total'",
            UsageTotal::Day => "day",
            UsageTotal::Model => "model",
            UsageTotal::Scope => "scope",
            UsageTotal::Upstream => "CASE WHEN upstream = '' THEN '-' ELSE upstream END",
        };
        let sql = format!(
            "SELECT {key} AS k, SUM(requests)::INT8, SUM(prompt_tokens)::INT8,
                 SUM(completion_tokens)::INT8, SUM(cached_tokens)::INT8, SUM(cost_usd),
                 SUM(unpriced)::INT8, SUM(cache_hits)::INT8, SUM(errors)::INT8
             FROM llmkit_usage_daily
             WHERE ($1::TEXT IS NULL OR day >= $1) AND ($2::TEXT IS NULL OR day < $2)
               AND ($3::TEXT IS NULL OR scope = $3)
             GROUP BY k ORDER BY k"
        );
        let conn = self.conn().await?;
        let rows = conn
            .query(&sql, &[&q.since_day, &q.until_day, &q.scope])
            .await?;
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(rows
            .iter()
            .map(|r| UsageRow {
                key: r.get(0),
                requests: u(r.get(1)),
                prompt_tokens: u(r.get(2)),
                completion_tokens: u(r.get(3)),
                cached_tokens: u(r.get(4)),
                cost_usd: r.get(5),
                unpriced: u(r.get(6)),
                cache_hits: u(r.get(7)),
                errors: u(r.get(8)),
            })
            .collect())
    }

    /// The newest failed requests (an error status, or 0 for none at all), newest first;
    /// `profile` holds the row's scope (a virtual key's id).
    pub async fn recent_failures(&self, limit: usize) -> Result<Vec<LedgerRow>, ClusterError> {
        let conn = self.conn().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = conn
            .query(
                "SELECT ts, scope, backend, model, command, prompt_tokens, completion_tokens,
                     cost_usd, latency_ms, status, upstream
                 FROM llmkit_ledger WHERE status >= 400 OR status = 0
                 ORDER BY ts DESC, id DESC LIMIT $1",
                &[&limit],
            )
            .await?;
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(rows
            .iter()
            .map(|r| LedgerRow {
                ts: r.get(0),
                profile: r.get(1),
                backend: r.get(2),
                model: r.get(3),
                command: r.get(4),
                prompt_tokens: u(r.get(5)),
                completion_tokens: u(r.get(6)),
                cost_usd: r.get(7),
                latency_ms: u(r.get(8)),
                status: u16::try_from(r.get::<_, i32>(9)).unwrap_or(0),
                upstream: r.get(10),
                ..LedgerRow::default()
            })
            .collect())
    }

    /// How many rows the ledger holds (tests and `/readyz` detail).
    pub async fn ledger_count(&self) -> Result<u64, ClusterError> {
        let conn = self.conn().await?;
        let n: i64 = conn
            .query_one("SELECT COUNT(*) FROM llmkit_ledger", &[])
            .await?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// What the writer has done, for `/readyz` and the tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriterHealth {
    /// Rows now waiting in the spool file.
    pub spooled: u64,
    /// Rows written to PostgreSQL (replays included).
    pub written: u64,
    /// The last PostgreSQL failure, cleared by the next success.
    pub last_error: Option<String>,
}

enum Msg {
    Row(Box<LedgerEntry>),
    Flush(oneshot::Sender<()>),
}

/// The background ledger writer: the request path only sends on a channel. Rows are
/// inserted in batches; when PostgreSQL is unavailable they go to the spool, which is
/// replayed (every `retry`) once it answers again. No row is dropped.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: mpsc::UnboundedSender<Msg>,
    health: Arc<Mutex<WriterHealth>>,
}

impl LedgerWriter {
    /// Starts the writer on the current Tokio runtime.
    pub fn spawn(store: PgStore, spool: Spool, retry: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let health = Arc::new(Mutex::new(WriterHealth::default()));
        if let Ok((pending, _)) = spool.read() {
            lock(&health).spooled = pending.len() as u64;
        }
        tokio::spawn(run(store, spool, retry, rx, Arc::clone(&health)));
        Self { tx, health }
    }

    /// Queues one row. Never blocks; callers [`flush`](Self::flush) before they exit.
    pub fn record(&self, entry: LedgerEntry) {
        let _ = self.tx.send(Msg::Row(Box::new(entry)));
    }

    /// Waits until every row queued before this call is in PostgreSQL or the spool.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    pub fn health(&self) -> WriterHealth {
        lock(&self.health).clone()
    }
}

fn lock(h: &Mutex<WriterHealth>) -> std::sync::MutexGuard<'_, WriterHealth> {
    h.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn run(
    store: PgStore,
    spool: Spool,
    retry: Duration,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    health: Arc<Mutex<WriterHealth>>,
) {
    let mut held: Vec<LedgerEntry> = Vec::new();
    let mut tick = tokio::time::interval(retry);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            m = rx.recv() => match m { Some(m) => Some(m), None => break },
            _ = tick.tick() => None,
        };
        let mut batch = std::mem::take(&mut held);
        let mut flushes = Vec::new();
        let mut next = first;
        while let Some(m) = next {
            match m {
                Msg::Row(e) => batch.push(*e),
                Msg::Flush(done) => flushes.push(done),
            }
            if batch.len() >= BATCH_ROWS {
                held.extend(write(&store, &spool, std::mem::take(&mut batch), &health).await);
            }
            next = rx.try_recv().ok();
        }
        held.extend(write(&store, &spool, batch, &health).await);
        if lock(&health).spooled > 0 {
            replay(&store, &spool, &health).await;
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
}

/// Writes `batch` to PostgreSQL, else to the spool. What neither took (a full disk while
/// PostgreSQL is down) is handed back to be held in memory and tried again.
async fn write(
    store: &PgStore,
    spool: &Spool,
    batch: Vec<LedgerEntry>,
    health: &Mutex<WriterHealth>,
) -> Vec<LedgerEntry> {
    if batch.is_empty() {
        return batch;
    }
    match store.settle_batch(&batch).await {
        Ok(_) => {
            let mut h = lock(health);
            h.written += batch.len() as u64;
            h.last_error = None;
            Vec::new()
        }
        Err(e) => {
            let spooled = spool.append(&batch);
            let mut h = lock(health);
            match spooled {
                Ok(()) => {
                    h.last_error = Some(e.to_string());
                    h.spooled += batch.len() as u64;
                    Vec::new()
                }
                Err(se) => {
                    h.last_error = Some(format!("{e}; and {se}"));
                    batch
                }
            }
        }
    }
}

async fn replay(store: &PgStore, spool: &Spool, health: &Mutex<WriterHealth>) {
    let Ok((pending, _torn)) = spool.read() else {
        return;
    };
    for chunk in pending.chunks(BATCH_ROWS) {
        if let Err(e) = store.settle_batch(chunk).await {
            lock(health).last_error = Some(e.to_string());
            return;
        }
    }
    if spool.clear().is_ok() {
        let mut h = lock(health);
        h.written += pending.len() as u64;
        h.spooled = 0;
        h.last_error = None;
    }
}
