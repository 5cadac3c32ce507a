//! Per-key rate limits: requests and tokens per minute as token buckets (the token estimate
//! taken before the call, the difference to the real usage given back or taken when it is
//! known) and a cap on requests in flight, behind the [`Limiter`] trait so that a limiter
//! shared by several gateways (Redis) can replace the in-process [`LocalLimiter`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use llmkit_store::VirtualKey;

/// A key's limits, as stored with it; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLimits {
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute: prompt plus output budget before the call, the real usage after.
    pub tpm: Option<u32>,
    /// Requests in flight at once (a stream counts until it ends).
    pub max_concurrent: Option<u32>,
}

impl KeyLimits {
    pub fn of(key: &VirtualKey) -> Self {
        Self {
            rpm: key.rpm,
            tpm: key.tpm,
            max_concurrent: key.max_concurrent,
        }
    }

    /// True when the key has no limit at all (its requests skip the limiter).
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.max_concurrent.is_none()
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Requests,
    Tokens,
    Concurrency,
}

impl LimitKind {
    /// The reason label in `/metrics` (`llmkit_gateway_refusals_total`).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Requests => "rpm",
            Self::Tokens => "tpm",
            Self::Concurrency => "concurrency",
        }
    }
}

/// One bucket as OpenAI's `x-ratelimit-{limit,remaining,reset}-*` headers describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset: Duration,
}

/// The key's buckets after a decision (for the headers of the answer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub requests: Option<Window>,
    pub tokens: Option<Window>,
}

/// What the limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Taken: one request, the estimated tokens and a concurrency slot. The caller must
    /// [`settle`](Limiter::settle) the tokens and [`release`](Limiter::release) the slot.
    Admitted(Snapshot),
    /// Nothing was taken. `fits` is false when the request could never pass (its token
    /// estimate is larger than the whole per-minute limit), so retrying is pointless.
    Refused {
        kind: LimitKind,
        retry_after: Duration,
        fits: bool,
        snapshot: Snapshot,
    },
}

/// Admission against per-key limits. The in-process [`LocalLimiter`] is the default; a
/// limiter shared by several gateways implements the same three calls over its own store.
pub trait Limiter: Send + Sync {
    /// Takes one request, `tokens` estimated tokens and a concurrency slot of `key`'s, or
    /// refuses and takes nothing.
    fn admit<'a>(&'a self, key: &'a str, limits: KeyLimits, tokens: u64)
    -> BoxFuture<'a, Decision>;
    /// The request's real token count is known: gives back the part of the estimate it did
    /// not use (or takes what it used beyond it).
    fn settle(&self, key: &str, limits: KeyLimits, estimated: u64, used: u64);
    /// The request is over (a stream has ended): frees its concurrency slot.
    fn release(&self, key: &str, limits: KeyLimits);
}

/// How long a caller refused for concurrency is told to wait: a slot frees when some
/// request ends, which cannot be known in advance.
const CONCURRENCY_RETRY: Duration = Duration::from_secs(1);

/// A bucket of `capacity` that refills completely in one minute, continuously (as OpenAI's
/// limits behave). Its level may go below zero when a request used more than its estimate.
#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    level: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_minute: u32, now: Instant) -> Self {
        Self {
            capacity: f64::from(per_minute),
            level: f64::from(per_minute),
            last: now,
        }
    }

    fn per_sec(&self) -> f64 {
        self.capacity / 60.0
    }

    fn refill(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + secs * self.per_sec()).min(self.capacity);
        self.last = now;
    }

    /// Time until `amount` is there (zero when it is).
    fn wait_for(&self, amount: f64) -> Duration {
        if self.level >= amount || self.per_sec() <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((amount.min(self.capacity) - self.level) / self.per_sec())
    }

    fn window(&self) -> Window {
        Window {
            limit: self.capacity as u64,
            remaining: self.level.max(0.0).floor() as u64,
            reset: self.wait_for(self.capacity),
        }
    }

    fn add(&mut self, amount: f64) {
        self.level = (self.level + amount).min(self.capacity);
    }
}

/// One key's state in the [`LocalLimiter`].
#[derive(Debug)]
struct KeyState {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    in_flight: u32,
}

impl KeyState {
    fn new(limits: KeyLimits, now: Instant) -> Self {
        Self {
            requests: limits.rpm.map(|r| Bucket::new(r, now)),
            tokens: limits.tpm.map(|t| Bucket::new(t, now)),
            in_flight: 0,
        }
    }

    /// Keeps the buckets in step with the key's limits (a bucket is made anew when its
    /// limit changed, dropped when the limit is gone).
    fn conform(&mut self, limits: KeyLimits, now: Instant) {
        let fit = |b: &mut Option<Bucket>, limit: Option<u32>| {
            let same = match (b.as_ref(), limit) {
                (Some(old), Some(l)) => old.capacity == f64::from(l),
                (None, None) => true,
                _ => false,
            };
            if !same {
                *b = limit.map(|l| Bucket::new(l, now));
            }
        };
        fit(&mut self.requests, limits.rpm);
        fit(&mut self.tokens, limits.tpm);
    }

    fn refill(&mut self, now: Instant) {
        for b in [&mut self.requests, &mut self.tokens].into_iter().flatten() {
            b.refill(now);
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.requests.as_ref().map(Bucket::window),
            tokens: self.tokens.as_ref().map(Bucket::window),
        }
    }
}

/// The in-process limiter: one lock over every key's buckets (a few arithmetic operations
/// per request), right for one gateway node.
#[derive(Debug, Default)]
pub struct LocalLimiter {
    keys: Mutex<HashMap<String, KeyState>>,
}

impl LocalLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_key<T>(&self, key: &str, limits: KeyLimits, f: impl FnOnce(&mut KeyState) -> T) -> T {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let state = keys
            .entry(key.to_string())
            .or_insert_with(|| KeyState::new(limits, now));
        state.conform(limits, now);
        state.refill(now);
        f(state)
    }

    /// The decision, taken under the lock.
    fn decide(&self, key: &str, limits: KeyLimits, tokens: u64) -> Decision {
        self.with_key(key, limits, |s| {
            let refuse = |s: &KeyState, kind: LimitKind, retry_after: Duration, fits: bool| {
                Decision::Refused {
                    kind,
                    retry_after,
                    fits,
                    snapshot: s.snapshot(),
                }
            };
            if let Some(max) = limits.max_concurrent
                && s.in_flight >= max
            {
                return refuse(&*s, LimitKind::Concurrency, CONCURRENCY_RETRY, true);
            }
            if let Some(b) = &s.requests
                && b.level < 1.0
            {
                return refuse(&*s, LimitKind::Requests, b.wait_for(1.0), true);
            }
            let cost = tokens as f64;
            if let Some(b) = &s.tokens
                && b.level < cost
            {
                let fits = cost <= b.capacity;
                return refuse(&*s, LimitKind::Tokens, b.wait_for(cost), fits);
            }
            if let Some(b) = &mut s.requests {
                b.level -= 1.0;
            }
            if let Some(b) = &mut s.tokens {
                b.level -= cost;
            }
            if limits.max_concurrent.is_some() {
                s.in_flight += 1;
            }
            Decision::Admitted(s.snapshot())
        })
    }
}

impl Limiter for LocalLimiter {
    fn admit<'a>(
        &'a self,
        key: &'a str,
        limits: KeyLimits,
        tokens: u64,
    ) -> BoxFuture<'a, Decision> {
        let decision = self.decide(key, limits, tokens);
        Box::pin(std::future::ready(decision))
    }

    fn settle(&self, key: &str, limits: KeyLimits, estimated: u64, used: u64) {
        if limits.tpm.is_none() || estimated == used {
            return;
        }
        self.with_key(key, limits, |s| {
            if let Some(b) = &mut s.tokens {
                b.add(estimated as f64 - used as f64);
            }
        });
    }

    fn release(&self, key: &str, limits: KeyLimits) {
        if limits.max_concurrent.is_none() {
            return;
        }
        self.with_key(key, limits, |s| s.in_flight = s.in_flight.saturating_sub(1));
    }
}

/// One admitted request's hold on its key's limits: its token estimate is settled once
/// (with the real usage, or refunded whole when none was recorded) and its concurrency slot
/// freed when the last reference goes, which for a stream is when the stream ends.
pub(crate) struct Permit {
    limiter: Arc<dyn Limiter>,
    key: String,
    limits: KeyLimits,
    estimated: u64,
    settled: std::sync::atomic::AtomicBool,
}

impl Permit {
    pub(crate) fn new(
        limiter: Arc<dyn Limiter>,
        key: String,
        limits: KeyLimits,
        estimated: u64,
    ) -> Self {
        Self {
            limiter,
            key,
            limits,
            estimated,
            settled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The request used `used` tokens (0 for a cache hit or a failure upstream).
    pub(crate) fn settle(&self, used: u64) {
        if !self.settled.swap(true, std::sync::atomic::Ordering::AcqRel) {
            self.limiter
                .settle(&self.key, self.limits, self.estimated, used);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        // Refused before it was sent (a budget, an unpriced model): nothing was used.
        self.settle(0);
        self.limiter.release(&self.key, self.limits);
    }
}

/// A duration the way OpenAI's `x-ratelimit-reset-*` headers write it (Go's
/// `Duration.String` at millisecond precision): `20ms`, `1s`, `1.25s`, `6m0s`, `1h2m3s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, frac) = (rest / 1000, rest % 1000);
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        let f = format!("{frac:03}");
        format!("{s}.{}s", f.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<u32>, tpm: Option<u32>, conc: Option<u32>) -> KeyLimits {
        KeyLimits {
            rpm,
            tpm,
            max_concurrent: conc,
        }
    }

    #[test]
    fn requests_run_out_and_say_when_to_come_back() {
        let l = LocalLimiter::new();
        let lim = limits(Some(2), None, None);
        for left in [1, 0] {
            match l.decide("k", lim, 0) {
                Decision::Admitted(s) => {
                    assert_eq!(s.requests.unwrap().remaining, left);
                    assert_eq!(s.requests.unwrap().limit, 2);
                }
                other => panic!("{other:?}"),
            }
        }
        match l.decide("k", lim, 0) {
            Decision::Refused {
                kind, retry_after, ..
            } => {
                assert_eq!(kind, LimitKind::Requests);
                // One request comes back every 30 s at 2 RPM.
                assert!(retry_after > Duration::from_secs(29), "{retry_after:?}");
                assert!(retry_after <= Duration::from_secs(30));
            }
            other => panic!("{other:?}"),
        }
        // Another key has its own buckets.
        assert!(matches!(l.decide("other", lim, 0), Decision::Admitted(_)));
    }

    #[test]
    fn tokens_are_refunded_on_settle() {
        let l = LocalLimiter::new();
        let lim = limits(None, Some(1000), None);
        assert!(matches!(l.decide("k", lim, 800), Decision::Admitted(_)));
        assert!(matches!(
            l.decide("k", lim, 800),
            Decision::Refused {
                kind: LimitKind::Tokens,
                fits: true,
                ..
            }
        ));
        // The first request used 100 of its 800: 700 come back.
        l.settle("k", lim, 800, 100);
        assert!(matches!(l.decide("k", lim, 800), Decision::Admitted(_)));
        // Larger than the whole minute's limit: it can never pass.
        assert!(matches!(
            l.decide("k", lim, 5000),
            Decision::Refused { fits: false, .. }
        ));
        // Using more than the estimate takes the difference.
        let l = LocalLimiter::new();
        assert!(matches!(l.decide("k", lim, 100), Decision::Admitted(_)));
        l.settle("k", lim, 100, 1000);
        assert!(matches!(l.decide("k", lim, 100), Decision::Refused { .. }));
    }

    #[test]
    fn concurrency_slots_free_on_release() {
        let l = LocalLimiter::new();
        let lim = limits(None, None, Some(1));
        assert!(matches!(l.decide("k", lim, 0), Decision::Admitted(_)));
        assert!(matches!(
            l.decide("k", lim, 0),
            Decision::Refused {
                kind: LimitKind::Concurrency,
                ..
            }
        ));
        l.release("k", lim);
        assert!(matches!(l.decide("k", lim, 0), Decision::Admitted(_)));
    }

    #[test]
    fn a_refusal_takes_nothing() {
        let l = LocalLimiter::new();
        let lim = limits(Some(10), Some(100), None);
        assert!(matches!(l.decide("k", lim, 200), Decision::Refused { .. }));
        match l.decide("k", lim, 50) {
            Decision::Admitted(s) => {
                assert_eq!(s.requests.unwrap().remaining, 9);
                assert_eq!(s.tokens.unwrap().remaining, 50);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_permit_settles_once_and_releases_on_drop() {
        use futures::FutureExt;
        let l: Arc<dyn Limiter> = Arc::new(LocalLimiter::new());
        let lim = limits(None, Some(100), Some(1));
        let admit = |tokens| l.admit("k", lim, tokens).now_or_never().unwrap();
        let decision = admit(90);
        assert!(matches!(decision, Decision::Admitted(_)));
        let permit = Permit::new(Arc::clone(&l), "k".into(), lim, 90);
        permit.settle(10);
        permit.settle(0); // a second settle is ignored
        drop(permit);
        // 80 came back and the slot is free.
        match admit(85) {
            Decision::Admitted(s) => assert!(s.tokens.unwrap().remaining < 16),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn durations_look_like_openai() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(ms(0)), "0s");
        assert_eq!(go_duration(ms(20)), "20ms");
        assert_eq!(go_duration(ms(360_000)), "6m0s");
        assert_eq!(go_duration(ms(1_250)), "1.25s");
        assert_eq!(go_duration(ms(3_723_000)), "1h2m3s");
    }
}
