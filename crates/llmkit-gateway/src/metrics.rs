//! Prometheus `/metrics`: requests, latency, tokens, spend, upstream errors and refusals,
//! labelled by key id and model (and upstream), and each upstream's attempts and latency.
//!
//! The text exposition format is a few lines per series, so it is written by hand here
//! rather than pulling in a metrics framework and its registry for a handful of counters.
//! Labels are key *ids* (public) and model names; a secret is never a label.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llmkit_client::{Accounting, ClientError, ModelCatalog, Outcome, PoolObserver, RequestInfo};
use llmkit_types::{
    ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, EmbeddingRequest,
};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every series, behind one lock (updates are a few additions per request).
#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Series>,
}

#[derive(Default)]
struct Series {
    /// (key, model, status) → count
    requests: BTreeMap<(String, String, u16), u64>,
    /// (key, model) → (bucket counts, sum, count)
    latency: BTreeMap<(String, String), (Vec<u64>, f64, u64)>,
    /// (key, model, kind) → tokens
    tokens: BTreeMap<(String, String, &'static str), u64>,
    /// (key, model) → USD
    spend: BTreeMap<(String, String), f64>,
    /// (key, model, upstream) → count
    upstream_errors: BTreeMap<(String, String, String), u64>,
    /// upstream → (bucket counts, sum, count): every attempt's time to its response head
    upstream_latency: BTreeMap<String, (Vec<u64>, f64, u64)>,
    /// (upstream, outcome) → attempts
    upstream_attempts: BTreeMap<(String, &'static str), u64>,
    /// (key, reason) → count
    refusals: BTreeMap<(String, &'static str), u64>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Series> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One answered request (any status) and how long the gateway took to answer.
    pub(crate) fn request(&self, key: &str, model: &str, status: u16, took: Duration) {
        let mut s = self.lock();
        *s.requests
            .entry((key.to_string(), model.to_string(), status))
            .or_default() += 1;
        let entry = s
            .latency
            .entry((key.to_string(), model.to_string()))
            .or_insert_with(|| (vec![0; BUCKETS.len()], 0.0, 0));
        observe(entry, took);
    }

    /// One attempt on a pool's upstream: how long it took to its response head or its
    /// failure, and how it ended (`ok`, `rate_limited` for a 429, `error`).
    pub(crate) fn upstream_attempt(&self, upstream: &str, took: Duration, outcome: &'static str) {
        let mut s = self.lock();
        *s.upstream_attempts
            .entry((upstream.to_string(), outcome))
            .or_default() += 1;
        let entry = s
            .upstream_latency
            .entry(upstream.to_string())
            .or_insert_with(|| (vec![0; BUCKETS.len()], 0.0, 0));
        observe(entry, took);
    }

    /// A request the gateway refused itself (`auth`, `scope`, `budget`, `unpriced`, `bad_request`).
    pub(crate) fn refusal(&self, key: &str, reason: &'static str) {
        *self
            .lock()
            .refusals
            .entry((key.to_string(), reason))
            .or_default() += 1;
    }

    /// The text exposition of every series.
    pub(crate) fn render(&self) -> String {
        let s = self.lock();
        let mut out = String::new();
        let esc = |v: &str| {
            v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let _ = writeln!(
            out,
            "# HELP llmkit_gateway_requests_total Requests answered, by key, model and status."
        );
        let _ = writeln!(out, "# TYPE llmkit_gateway_requests_total counter");
        for ((k, m, st), n) in &s.requests {
            let _ = writeln!(
                out,
                "llmkit_gateway_requests_total{{key=\"{}\",model=\"{}\",status=\"{st}\"}} {n}",
                esc(k),
                esc(m)
            );
        }
        let _ = writeln!(
            out,
            "# HELP llmkit_gateway_request_duration_seconds Time to the response head."
        );
        let _ = writeln!(
            out,
            "# TYPE llmkit_gateway_request_duration_seconds histogram"
        );
        for ((k, m), (buckets, sum, count)) in &s.latency {
            let (k, m) = (esc(k), esc(m));
            for (bound, n) in BUCKETS.iter().zip(buckets) {
                let _ = writeln!(
                    out,
                    "llmkit_gateway_request_duration_seconds_bucket{{key=\"{k}\",model=\"{m}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "llmkit_gateway_request_duration_seconds_bucket{{key=\"{k}\",model=\"{m}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "llmkit_gateway_request_duration_seconds_sum{{key=\"{k}\",model=\"{m}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "llmkit_gateway_request_duration_seconds_count{{key=\"{k}\",model=\"{m}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP llmkit_gateway_tokens_total Tokens in ledger rows, by kind."
        );
        let _ = writeln!(out, "# TYPE llmkit_gateway_tokens_total counter");
        for ((k, m, kind), n) in &s.tokens {
            let _ = writeln!(
                out,
                "llmkit_gateway_tokens_total{{key=\"{}\",model=\"{}\",kind=\"{kind}\"}} {n}",
                esc(k),
                esc(m)
            );
        }
        let _ = writeln!(
            out,
            "# HELP llmkit_gateway_spend_usd_total Known spend in USD."
        );
        let _ = writeln!(out, "# TYPE llmkit_gateway_spend_usd_total counter");
        for ((k, m), usd) in &s.spend {
            let _ = writeln!(
                out,
                "llmkit_gateway_spend_usd_total{{key=\"{}\",model=\"{}\"}} {usd}",
                esc(k),
                esc(m)
            );
        }
        let _ = writeln!(
            out,
            "# HELP llmkit_gateway_upstream_errors_total Requests the upstream failed."
        );
        let _ = writeln!(out, "# TYPE llmkit_gateway_upstream_errors_total counter");
        for ((k, m, u), n) in &s.upstream_errors {
            let _ = writeln!(
                out,
                "llmkit_gateway_upstream_errors_total{{key=\"{}\",model=\"{}\",upstream=\"{}\"}} {n}",
                esc(k),
                esc(m),
                esc(u)
            );
        }
        let _ = writeln!(
            out,
            "# HELP llmkit_gateway_upstream_attempts_total Attempts on each upstream (fallbacks included), by outcome."
        );
        let _ = writeln!(out, "# TYPE llmkit_gateway_upstream_attempts_total counter");
        for ((u, outcome), n) in &s.upstream_attempts {
            let _ = writeln!(
                out,
                "llmkit_gateway_upstream_attempts_total{{upstream=\"{}\",outcome=\"{outcome}\"}} {n}",
                esc(u)
            );
        }
        let _ = writeln!(
            out,
            "# HELP llmkit_gateway_upstream_duration_seconds Each attempt's time to the upstream's response head (or its failure)."
        );
        let _ = writeln!(
            out,
            "# TYPE llmkit_gateway_upstream_duration_seconds histogram"
        );
        for (u, (buckets, sum, count)) in &s.upstream_latency {
            let u = esc(u);
            for (bound, n) in BUCKETS.iter().zip(buckets) {
                let _ = writeln!(
                    out,
                    "llmkit_gateway_upstream_duration_seconds_bucket{{upstream=\"{u}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "llmkit_gateway_upstream_duration_seconds_bucket{{upstream=\"{u}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "llmkit_gateway_upstream_duration_seconds_sum{{upstream=\"{u}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "llmkit_gateway_upstream_duration_seconds_count{{upstream=\"{u}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP llmkit_gateway_refusals_total Requests the gateway refused itself."
        );
        let _ = writeln!(out, "# TYPE llmkit_gateway_refusals_total counter");
        for ((k, reason), n) in &s.refusals {
            let _ = writeln!(
                out,
                "llmkit_gateway_refusals_total{{key=\"{}\",reason=\"{reason}\"}} {n}",
                esc(k)
            );
        }
        out
    }
}

/// Adds one observation to a histogram's (bucket counts, sum, count).
fn observe(entry: &mut (Vec<u64>, f64, u64), took: Duration) {
    let secs = took.as_secs_f64();
    for (i, bound) in BUCKETS.iter().enumerate() {
        if secs <= *bound {
            entry.0[i] += 1;
        }
    }
    entry.1 += secs;
    entry.2 += 1;
}

/// The pools' observer: every attempt on an upstream into the metrics.
pub(crate) struct UpstreamMetrics(pub(crate) Arc<Metrics>);

impl PoolObserver for UpstreamMetrics {
    fn attempt(&self, upstream: &str, took: Duration, error: Option<&ClientError>) {
        let outcome = match error {
            None => "ok",
            Some(e) if e.status() == Some(429) => "rate_limited",
            Some(_) => "error",
        };
        self.0.upstream_attempt(upstream, took, outcome);
    }
}

/// The key's accounting step with its ledger rows counted into the metrics as well, so
/// tokens and spend in `/metrics` are the ledger's own numbers, streams included.
pub(crate) struct Metered {
    pub(crate) inner: Arc<dyn Accounting>,
    pub(crate) key: String,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) catalog: ModelCatalog,
}

impl Accounting for Metered {
    fn cache_get(&self, req: &ChatCompletionRequest) -> Option<ChatCompletionResponse> {
        self.inner.cache_get(req)
    }

    fn cache_put(&self, req: &ChatCompletionRequest, resp: &ChatCompletionResponse) {
        self.inner.cache_put(req, resp);
    }

    fn reserve(&self, info: &RequestInfo, req: &ChatCompletionRequest) -> Result<u64, ClientError> {
        self.inner.reserve(info, req)
    }

    fn reserve_embeddings(
        &self,
        info: &RequestInfo,
        req: &EmbeddingRequest,
    ) -> Result<u64, ClientError> {
        self.inner.reserve_embeddings(info, req)
    }

    fn reserve_completion(
        &self,
        info: &RequestInfo,
        req: &CompletionRequest,
    ) -> Result<u64, ClientError> {
        self.inner.reserve_completion(info, req)
    }

    fn record(&self, info: &RequestInfo, ticket: u64, outcome: &Outcome<'_>) {
        self.inner.record(info, ticket, outcome);
        let model = outcome.model.to_string();
        let mut s = self.metrics.lock();
        if outcome.status == 0 || outcome.status >= 500 {
            let upstream = outcome.upstream.clone().unwrap_or_else(|| "-".to_string());
            *s.upstream_errors
                .entry((self.key.clone(), model.clone(), upstream))
                .or_default() += 1;
        }
        let Some(u) = outcome.usage.filter(|_| !outcome.cache_hit) else {
            return;
        };
        for (kind, n) in [
            ("prompt", u.prompt_tokens),
            ("completion", u.completion_tokens),
        ] {
            *s.tokens
                .entry((self.key.clone(), model.clone(), kind))
                .or_default() += n;
        }
        if let Some(p) = self.catalog.price(&model) {
            let usd = p.cost_of(
                u.prompt_tokens,
                u.cached_tokens(),
                u.completion_tokens,
                false,
            );
            *s.spend.entry((self.key.clone(), model)).or_default() += usd;
        }
    }
}
