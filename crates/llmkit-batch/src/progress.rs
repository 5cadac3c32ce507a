//! Live counters of a running job, shared with whoever displays progress (the CLI's bar).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counters updated by the runner; read them at any time.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    total: AtomicU64,
    written: AtomicU64,
    written_at_start: AtomicU64,
    failed: AtomicU64,
    tokens: AtomicU64,
    spent_micro_usd: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    requests: AtomicU64,
}

/// One reading of the counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub elapsed_secs: f64,
    /// Rows in the input (0 while unknown).
    pub total: u64,
    /// Rows written to the output (including earlier runs of the job).
    pub written: u64,
    /// Rows written in this run.
    pub written_now: u64,
    pub failed: u64,
    /// Prompt + completion tokens in this run.
    pub tokens: u64,
    /// Spend of the job so far, in USD.
    pub spent_usd: f64,
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// HTTP requests sent (attempts).
    pub requests: u64,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            total: AtomicU64::new(0),
            written: AtomicU64::new(0),
            written_at_start: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            spent_micro_usd: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let written = self.written.load(Ordering::Relaxed);
        Snapshot {
            elapsed_secs: self.started.elapsed().as_secs_f64(),
            total: self.total.load(Ordering::Relaxed),
            written,
            written_now: written.saturating_sub(self.written_at_start.load(Ordering::Relaxed)),
            failed: self.failed.load(Ordering::Relaxed),
            tokens: self.tokens.load(Ordering::Relaxed),
            spent_usd: self.spent_micro_usd.load(Ordering::Relaxed) as f64 / 1e6,
            retries: self.retries.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn set_total(&self, n: u64) {
        self.total.store(n, Ordering::Relaxed);
    }
    pub(crate) fn start_at(&self, written: u64, spent: f64) {
        self.written.store(written, Ordering::Relaxed);
        self.written_at_start.store(written, Ordering::Relaxed);
        self.spent_micro_usd
            .store((spent * 1e6).round() as u64, Ordering::Relaxed);
    }
    pub(crate) fn set_written(&self, n: u64) {
        self.written.store(n, Ordering::Relaxed);
    }
    pub(crate) fn add_failed(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_tokens(&self, n: u64) {
        self.tokens.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn set_spent(&self, usd: f64) {
        self.spent_micro_usd
            .store((usd * 1e6).round() as u64, Ordering::Relaxed);
    }
    pub(crate) fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}
