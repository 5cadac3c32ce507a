//! The scheduler's gate: a request bucket and a token bucket (with refunds), a concurrency
//! ceiling, adaptation to `x-ratelimit-*` headers, and AIMD when 429s come in bursts.
//!
//! `governor` cannot give back an over-estimate, so the buckets are ours: a request is
//! charged its prompt plus output budget up front and the difference is refunded (or the
//! shortfall charged) once the server's `usage` is known.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use llmkit_client::RateLimitInfo;
use tokio::sync::Notify;

/// How many 429s within [`BURST_WINDOW`] count as a burst that slows the whole scheduler.
const BURST_COUNT: usize = 3;
const BURST_WINDOW: Duration = Duration::from_secs(2);
/// Multiplicative decrease of the rate and the concurrency on a burst.
const DECREASE: f64 = 0.7;
/// Additive increase of the rate factor per success.
const RATE_STEP: f64 = 0.01;
/// The slowest the scheduler goes, as a fraction of the configured rate.
const MIN_FACTOR: f64 = 0.1;

/// The limits the scheduler starts from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests per minute; `None` learns it from `x-ratelimit-limit-requests`.
    pub rpm: Option<u32>,
    /// Tokens per minute; `None` learns it from `x-ratelimit-limit-tokens`.
    pub tpm: Option<u32>,
    /// The most requests in flight at once.
    pub concurrency: usize,
}

/// The admission gate shared by every worker.
pub struct Limiter {
    state: Mutex<State>,
    notify: Notify,
}

/// A slot in flight; dropping it frees the slot.
pub struct Permit<'a> {
    limiter: &'a Limiter,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        {
            let mut s = self.limiter.lock();
            s.inflight = s.inflight.saturating_sub(1);
        }
        self.limiter.notify.notify_waiters();
    }
}

/// A snapshot for the progress display and tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimiterView {
    pub rpm: Option<f64>,
    pub tpm: Option<f64>,
    pub factor: f64,
    pub concurrency: f64,
}

#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    per_sec: f64,
    level: f64,
    last: Instant,
}

impl Bucket {
    fn per_minute(limit: f64, now: Instant) -> Self {
        Self {
            capacity: limit,
            per_sec: limit / 60.0,
            level: limit,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant, factor: f64) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + dt * self.per_sec * factor).min(self.capacity);
        self.last = now;
    }

    /// Time until `cost` (capped at the capacity) is available.
    fn wait_for(&self, cost: f64, factor: f64) -> Duration {
        let cost = cost.min(self.capacity);
        if self.level >= cost {
            return Duration::ZERO;
        }
        let rate = self.per_sec * factor;
        if rate <= 0.0 {
            return Duration::from_secs(1);
        }
        Duration::from_secs_f64(((cost - self.level) / rate).min(3600.0))
    }

    fn take(&mut self, cost: f64) {
        self.level -= cost.min(self.capacity);
    }

    /// The server's view: never believe we have more than it says is left.
    fn sync(&mut self, limit: Option<u64>, remaining: Option<u64>, learn: bool, now: Instant) {
        if learn && let Some(limit) = limit.filter(|l| *l > 0) {
            let limit = limit as f64;
            if (limit - self.capacity).abs() > f64::EPSILON {
                self.capacity = limit;
                self.per_sec = limit / 60.0;
                self.level = self.level.min(limit);
            }
        }
        if let Some(rem) = remaining {
            self.refill(now, 1.0);
            self.level = self.level.min(rem as f64);
        }
    }
}

struct State {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    learn_requests: bool,
    learn_tokens: bool,
    inflight: usize,
    ceiling: usize,
    concurrency: f64,
    factor: f64,
    pause_until: Option<Instant>,
    recent_429: VecDeque<Instant>,
}

impl Limiter {
    pub fn new(limits: Limits) -> Self {
        let now = Instant::now();
        let ceiling = limits.concurrency.max(1);
        Self {
            state: Mutex::new(State {
                requests: limits.rpm.map(|r| Bucket::per_minute(f64::from(r), now)),
                tokens: limits.tpm.map(|t| Bucket::per_minute(f64::from(t), now)),
                learn_requests: limits.rpm.is_none(),
                learn_tokens: limits.tpm.is_none(),
                inflight: 0,
                ceiling,
                concurrency: ceiling as f64,
                factor: 1.0,
                pause_until: None,
                recent_429: VecDeque::new(),
            }),
            notify: Notify::new(),
        }
    }

    /// Waits until a request estimated at `tokens` may be sent, and charges it.
    pub async fn acquire(&self, tokens: u64) -> Permit<'_> {
        loop {
            let notified = self.notify.notified();
            let wait = {
                let mut s = self.lock();
                match s.try_take(tokens as f64, Instant::now()) {
                    None => return Permit { limiter: self },
                    Some(w) => w,
                }
            };
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
            }
        }
    }

    /// Gives back `tokens` charged too many (or charges more when negative).
    pub fn refund(&self, tokens: f64) {
        {
            let mut s = self.lock();
            if let Some(b) = &mut s.tokens {
                b.level = (b.level + tokens).min(b.capacity);
            }
        }
        if tokens > 0.0 {
            self.notify.notify_waiters();
        }
    }

    /// Learns from a successful response's headers and grows the rate and concurrency back.
    pub fn on_success(&self, info: &RateLimitInfo) {
        let mut s = self.lock();
        let now = Instant::now();
        let learn_r = s.learn_requests;
        let learn_t = s.learn_tokens;
        if s.requests.is_none()
            && learn_r
            && let Some(l) = info.limit_requests.filter(|l| *l > 0)
        {
            s.requests = Some(Bucket::per_minute(l as f64, now));
        }
        if s.tokens.is_none()
            && learn_t
            && let Some(l) = info.limit_tokens.filter(|l| *l > 0)
        {
            s.tokens = Some(Bucket::per_minute(l as f64, now));
        }
        let factor = s.factor;
        if let Some(b) = &mut s.requests {
            b.refill(now, factor);
            b.sync(info.limit_requests, info.remaining_requests, learn_r, now);
        }
        if let Some(b) = &mut s.tokens {
            b.refill(now, factor);
            b.sync(info.limit_tokens, info.remaining_tokens, learn_t, now);
        }
        s.factor = (s.factor + RATE_STEP).min(1.0);
        s.concurrency = (s.concurrency + 1.0 / s.concurrency.max(1.0)).min(s.ceiling as f64);
    }

    /// A 429: the server's bucket is empty. A burst of them slows everyone down and pauses
    /// admissions for the server's delay.
    pub fn on_rate_limited(&self, delay: Option<Duration>) {
        let mut s = self.lock();
        let now = Instant::now();
        s.recent_429.push_back(now);
        while s
            .recent_429
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > BURST_WINDOW)
        {
            s.recent_429.pop_front();
        }
        if s.recent_429.len() >= BURST_COUNT {
            s.recent_429.clear();
            s.factor = (s.factor * DECREASE).max(MIN_FACTOR);
            s.concurrency = (s.concurrency * DECREASE).max(1.0);
            let until = now + delay.unwrap_or(Duration::from_millis(500));
            s.pause_until = Some(s.pause_until.map_or(until, |p| p.max(until)));
        }
    }

    /// The current effective limits.
    pub fn view(&self) -> LimiterView {
        let s = self.lock();
        LimiterView {
            rpm: s.requests.as_ref().map(|b| b.capacity),
            tpm: s.tokens.as_ref().map(|b| b.capacity),
            factor: s.factor,
            concurrency: s.concurrency,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent under a panic (plain numbers), so a poisoned lock is used.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Charges and admits a request, or returns how long to wait before trying again.
    fn try_take(&mut self, tokens: f64, now: Instant) -> Option<Duration> {
        if let Some(p) = self.pause_until {
            if p > now {
                return Some(p - now);
            }
            self.pause_until = None;
        }
        if self.inflight as f64 >= self.concurrency.floor().max(1.0) {
            return Some(Duration::from_millis(100));
        }
        let factor = self.factor;
        let mut wait = Duration::ZERO;
        if let Some(b) = &mut self.requests {
            b.refill(now, factor);
            wait = wait.max(b.wait_for(1.0, factor));
        }
        if let Some(b) = &mut self.tokens {
            b.refill(now, factor);
            wait = wait.max(b.wait_for(tokens, factor));
        }
        if !wait.is_zero() {
            return Some(wait);
        }
        if let Some(b) = &mut self.requests {
            b.take(1.0);
        }
        if let Some(b) = &mut self.tokens {
            b.take(tokens);
        }
        self.inflight += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_bucket_paces_after_the_burst() {
        let l = Limiter::new(Limits {
            rpm: Some(600),
            tpm: None,
            concurrency: 1000,
        });
        // Drain the initial minute's burst, then each further request waits ~100 ms.
        {
            let mut s = l.lock();
            s.requests.as_mut().unwrap().level = 0.0;
        }
        let t = Instant::now();
        for _ in 0..3 {
            drop(l.acquire(1).await);
        }
        let dt = t.elapsed();
        assert!(
            dt >= Duration::from_millis(250) && dt < Duration::from_millis(600),
            "{dt:?}"
        );
    }

    #[tokio::test]
    async fn refunds_return_tokens() {
        let l = Limiter::new(Limits {
            rpm: None,
            tpm: Some(1000),
            concurrency: 10,
        });
        drop(l.acquire(900).await);
        l.refund(800.0);
        let level = l.lock().tokens.as_ref().unwrap().level;
        assert!((level - 900.0).abs() < 5.0, "{level}");
        l.refund(-500.0);
        let level = l.lock().tokens.as_ref().unwrap().level;
        assert!((level - 400.0).abs() < 5.0, "{level}");
    }

    #[test]
    fn headers_teach_limits_and_bursts_slow_down() {
        let l = Limiter::new(Limits {
            rpm: None,
            tpm: None,
            concurrency: 8,
        });
        l.on_success(&RateLimitInfo {
            limit_requests: Some(120),
            remaining_requests: Some(5),
            ..RateLimitInfo::default()
        });
        assert_eq!(l.view().rpm, Some(120.0));
        assert!(l.lock().requests.as_ref().unwrap().level <= 5.01);
        for _ in 0..BURST_COUNT {
            l.on_rate_limited(Some(Duration::from_millis(10)));
        }
        let v = l.view();
        assert!(v.factor < 1.0 && v.concurrency < 8.0, "{v:?}");
    }

    #[tokio::test]
    async fn concurrency_is_a_ceiling() {
        let l = Limiter::new(Limits {
            rpm: None,
            tpm: None,
            concurrency: 2,
        });
        let a = l.acquire(1).await;
        let _b = l.acquire(1).await;
        let blocked = tokio::time::timeout(Duration::from_millis(50), l.acquire(1)).await;
        assert!(blocked.is_err());
        drop(a);
        let c = tokio::time::timeout(Duration::from_millis(500), l.acquire(1)).await;
        assert!(c.is_ok());
    }
}
