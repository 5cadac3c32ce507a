//! The scheduler's gate: a request bucket and a token bucket (with refunds), a concurrency
//! ceiling, adaptation to `x-ratelimit-*` headers, and AIMD when 429s come in bursts.
//!
//! `governor` cannot give back an over-estimate, so the buckets are ours: a request is
//! charged its prompt plus output budget up front and the difference is refunded (or the
//! shortfall charged) once the server's `usage` is known.
//!
//! A 429 is a reason to slow the whole job only when the server's bucket is really empty
//! (see [`classify_429`]): one whose `x-ratelimit-remaining-*` headers show capacity left is a
//! fault, retried like a 500, and one without any rate-limit headers counts only when such
//! answers pile up.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use llmkit_client::RateLimitInfo;
use tokio::sync::Notify;

/// How many 429s within [`BURST_WINDOW`] count as a burst that slows the whole scheduler.
const BURST_COUNT: usize = 3;
const BURST_WINDOW: Duration = Duration::from_secs(2);
/// 429s without rate-limit headers slow the scheduler only when at least this share of the
/// answers in [`BURST_WINDOW`] are such 429s: a few are faults (a proxy, an overloaded
/// replica), many mean a server that limits without saying so.
const HEADERLESS_SHARE: f64 = 0.25;
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
    tokens: f64,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        {
            let mut s = self.limiter.lock();
            s.inflight = s.inflight.saturating_sub(1);
            s.inflight_tokens = (s.inflight_tokens - self.tokens).max(0.0);
        }
        self.limiter.notify.notify_waiters();
    }
}

/// What a 429 says about the job's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitSignal {
    /// The server's headers show that the bucket this request needed is empty: the job is
    /// going too fast (or another client shares the key).
    Exhausted,
    /// The headers show room for this request: the 429 is a fault, to retry.
    CapacityLeft,
    /// No `x-ratelimit-remaining-*` headers: a fault, unless such 429s pile up.
    NoHeaders,
}

/// Reads a 429's `x-ratelimit-remaining-*` headers against what the request needed.
pub fn classify_429(info: Option<&RateLimitInfo>, tokens: u64) -> RateLimitSignal {
    let Some(info) = info else {
        return RateLimitSignal::NoHeaders;
    };
    if info.remaining_requests.is_none() && info.remaining_tokens.is_none() {
        return RateLimitSignal::NoHeaders;
    }
    let no_request_left = info.remaining_requests == Some(0);
    let too_few_tokens = info.remaining_tokens.is_some_and(|t| t < tokens);
    if no_request_left || too_few_tokens {
        RateLimitSignal::Exhausted
    } else {
        RateLimitSignal::CapacityLeft
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

    /// The server's view: never believe we have more than it says is left, nor less than
    /// what it says is left minus what is still in flight (`pending`, which the server may
    /// not have counted yet). The lower side gives back capacity the estimate lost: a slowed
    /// refill, a failed attempt the server did not charge.
    fn sync(
        &mut self,
        limit: Option<u64>,
        remaining: Option<u64>,
        learn: bool,
        pending: f64,
        now: Instant,
    ) {
        if learn && let Some(limit) = limit.filter(|l| *l > 0) {
            let limit = limit as f64;
            if (limit - self.capacity).abs() > f64::EPSILON {
                self.capacity = limit;
                self.per_sec = limit / 60.0;
                self.level = self.level.min(limit);
            }
        }
        if let Some(rem) = remaining {
            let rem = (rem as f64).min(self.capacity);
            self.refill(now, 1.0);
            self.level = self.level.min(rem).max(rem - pending);
        }
    }
}

/// The level of a bucket learnt from headers: what the server says is left (or the whole
/// limit), less what is in flight.
fn learnt_level(limit: u64, remaining: Option<u64>, pending: f64) -> f64 {
    remaining.unwrap_or(limit).min(limit) as f64 - pending
}

#[derive(Clone)]
struct State {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    learn_requests: bool,
    learn_tokens: bool,
    inflight: usize,
    /// The tokens charged for the requests in flight.
    inflight_tokens: f64,
    ceiling: usize,
    concurrency: f64,
    factor: f64,
    pause_until: Option<Instant>,
    /// The answers of the last [`BURST_WINDOW`], for the burst rules.
    recent: VecDeque<(Instant, Answer)>,
}

/// An answer, as the burst rules count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Success,
    Exhausted,
    NoHeaders,
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
                inflight_tokens: 0.0,
                ceiling,
                concurrency: ceiling as f64,
                factor: 1.0,
                pause_until: None,
                recent: VecDeque::new(),
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
                    None => {
                        return Permit {
                            limiter: self,
                            tokens: tokens as f64,
                        };
                    }
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
        self.lock().success(info, Instant::now());
    }

    /// A 429 for a request charged `tokens`. It was not served, so its charge is given back;
    /// then its headers are learnt like a success's. Only a 429 that shows the server's bucket
    /// empty counts towards a burst, which slows everyone down and pauses admissions for the
    /// server's `delay`; a header-less one counts when such answers are a large share.
    pub fn on_rate_limited(
        &self,
        info: Option<&RateLimitInfo>,
        tokens: u64,
        delay: Option<Duration>,
    ) -> RateLimitSignal {
        let signal = self
            .lock()
            .rate_limited(info, tokens, delay, Instant::now());
        self.notify.notify_waiters();
        signal
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
    /// Learns limits from `x-ratelimit-*` headers and brings the buckets to what they say.
    /// A bucket learnt now starts charged for the requests in flight: they were admitted
    /// before it existed, and the server will count them.
    fn learn(&mut self, info: &RateLimitInfo, now: Instant) {
        if self.requests.is_none()
            && self.learn_requests
            && let Some(l) = info.limit_requests.filter(|l| *l > 0)
        {
            let mut b = Bucket::per_minute(l as f64, now);
            b.level = learnt_level(l, info.remaining_requests, self.inflight as f64);
            self.requests = Some(b);
        }
        if self.tokens.is_none()
            && self.learn_tokens
            && let Some(l) = info.limit_tokens.filter(|l| *l > 0)
        {
            let mut b = Bucket::per_minute(l as f64, now);
            b.level = learnt_level(l, info.remaining_tokens, self.inflight_tokens);
            self.tokens = Some(b);
        }
        let (factor, inflight, inflight_tokens) =
            (self.factor, self.inflight as f64, self.inflight_tokens);
        let (learn_r, learn_t) = (self.learn_requests, self.learn_tokens);
        if let Some(b) = &mut self.requests {
            b.refill(now, factor);
            b.sync(
                info.limit_requests,
                info.remaining_requests,
                learn_r,
                inflight,
                now,
            );
        }
        if let Some(b) = &mut self.tokens {
            b.refill(now, factor);
            b.sync(
                info.limit_tokens,
                info.remaining_tokens,
                learn_t,
                inflight_tokens,
                now,
            );
        }
    }

    fn success(&mut self, info: &RateLimitInfo, now: Instant) {
        self.learn(info, now);
        self.remember(now, Answer::Success);
        self.factor = (self.factor + RATE_STEP).min(1.0);
        self.concurrency =
            (self.concurrency + 1.0 / self.concurrency.max(1.0)).min(self.ceiling as f64);
    }

    fn rate_limited(
        &mut self,
        info: Option<&RateLimitInfo>,
        tokens: u64,
        delay: Option<Duration>,
        now: Instant,
    ) -> RateLimitSignal {
        let signal = classify_429(info, tokens);
        if let Some(b) = &mut self.tokens {
            b.level = (b.level + tokens as f64).min(b.capacity);
        }
        if let Some(info) = info {
            self.learn(info, now);
        }
        let burst = match signal {
            RateLimitSignal::CapacityLeft => false,
            RateLimitSignal::Exhausted => {
                self.remember(now, Answer::Exhausted);
                self.count(Answer::Exhausted) >= BURST_COUNT
            }
            RateLimitSignal::NoHeaders => {
                self.remember(now, Answer::NoHeaders);
                let n = self.count(Answer::NoHeaders);
                n >= BURST_COUNT && n as f64 >= HEADERLESS_SHARE * self.recent.len() as f64
            }
        };
        if burst {
            self.recent.retain(|(_, a)| *a == Answer::Success);
            self.factor = (self.factor * DECREASE).max(MIN_FACTOR);
            self.concurrency = (self.concurrency * DECREASE).max(1.0);
            let until = now + delay.unwrap_or(Duration::from_millis(500));
            self.pause_until = Some(self.pause_until.map_or(until, |p| p.max(until)));
        }
        signal
    }

    /// Records an answer and forgets those older than [`BURST_WINDOW`].
    fn remember(&mut self, now: Instant, answer: Answer) {
        self.recent.push_back((now, answer));
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > BURST_WINDOW)
        {
            self.recent.pop_front();
        }
    }

    fn count(&self, answer: Answer) -> usize {
        self.recent.iter().filter(|(_, a)| *a == answer).count()
    }

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
        self.inflight_tokens += tokens;
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

    fn limiter(tpm: Option<u32>) -> Limiter {
        Limiter::new(Limits {
            rpm: Some(6000),
            tpm,
            concurrency: 8,
        })
    }

    /// `x-ratelimit-*` headers as the mock sends them, with a 35,000 TPM limit.
    fn headers(remaining_requests: u64, remaining_tokens: u64) -> RateLimitInfo {
        RateLimitInfo {
            limit_requests: Some(6000),
            limit_tokens: Some(35_000),
            remaining_requests: Some(remaining_requests),
            remaining_tokens: Some(remaining_tokens),
            ..RateLimitInfo::default()
        }
    }

    fn level(l: &Limiter) -> f64 {
        l.lock().tokens.as_ref().unwrap().level
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
        let empty = RateLimitInfo {
            remaining_requests: Some(0),
            ..RateLimitInfo::default()
        };
        for _ in 0..BURST_COUNT {
            l.on_rate_limited(Some(&empty), 10, Some(Duration::from_millis(10)));
        }
        let v = l.view();
        assert!(v.factor < 1.0 && v.concurrency < 8.0, "{v:?}");
    }

    #[test]
    fn issue22_a_429_is_classified_by_its_remaining_headers() {
        let cases = [
            (None, RateLimitSignal::NoHeaders),
            (Some(RateLimitInfo::default()), RateLimitSignal::NoHeaders),
            (
                Some(RateLimitInfo {
                    limit_tokens: Some(35_000),
                    ..RateLimitInfo::default()
                }),
                RateLimitSignal::NoHeaders,
            ),
            (Some(headers(5000, 4000)), RateLimitSignal::CapacityLeft),
            (Some(headers(5000, 108)), RateLimitSignal::CapacityLeft),
            (Some(headers(5000, 107)), RateLimitSignal::Exhausted),
            (Some(headers(0, 4000)), RateLimitSignal::Exhausted),
            (
                Some(RateLimitInfo {
                    remaining_requests: Some(3),
                    ..RateLimitInfo::default()
                }),
                RateLimitSignal::CapacityLeft,
            ),
        ];
        for (info, want) in cases {
            assert_eq!(classify_429(info.as_ref(), 108), want, "{info:?}");
        }
    }

    #[test]
    fn issue22_429s_with_capacity_left_never_slow_the_job() {
        let l = limiter(Some(35_000));
        for _ in 0..20 {
            let signal = l.on_rate_limited(
                Some(&headers(5000, 20_000)),
                108,
                Some(Duration::from_millis(50)),
            );
            assert_eq!(signal, RateLimitSignal::CapacityLeft);
        }
        let s = l.lock();
        assert_eq!(s.factor, 1.0);
        assert_eq!(s.concurrency, 8.0);
        assert!(s.pause_until.is_none());
    }

    #[test]
    fn issue22_429s_that_show_the_bucket_empty_slow_the_job_in_a_burst() {
        let l = limiter(Some(35_000));
        for i in 0..BURST_COUNT {
            assert_eq!(l.view().factor, 1.0, "slowed after {i} 429s");
            let signal = l.on_rate_limited(Some(&headers(5000, 20)), 108, None);
            assert_eq!(signal, RateLimitSignal::Exhausted);
        }
        let s = l.lock();
        assert!(s.factor < 1.0 && s.concurrency < 8.0);
        assert!(s.pause_until.is_some());
        // The bucket believes the server: 20 tokens left (plus the refill since).
        assert!(s.tokens.as_ref().unwrap().level < 200.0);
    }

    #[test]
    fn issue22_headerless_429s_slow_the_job_only_when_they_pile_up() {
        let t0 = Instant::now();
        let mut s = limiter(Some(35_000)).lock().clone();
        for _ in 0..40 {
            s.success(&RateLimitInfo::default(), t0);
        }
        for _ in 0..BURST_COUNT * 2 {
            s.rate_limited(None, 108, None, t0);
        }
        assert_eq!(
            s.factor, 1.0,
            "6 of 46 answers is a fault rate, not a limit"
        );
        for _ in 0..BURST_COUNT * 3 {
            s.rate_limited(None, 108, None, t0);
        }
        assert!(
            s.factor < 1.0,
            "a quarter of the answers are 429s: the server limits"
        );
        // Once they have left the window, a few are faults again.
        let later = t0 + BURST_WINDOW * 2;
        for _ in 0..20 {
            s.success(&RateLimitInfo::default(), later);
        }
        let factor = s.factor;
        for _ in 0..BURST_COUNT {
            s.rate_limited(None, 108, None, later);
        }
        assert_eq!(s.factor, factor, "3 of 23 answers");
    }

    #[tokio::test]
    async fn issue22_a_429_gives_back_its_charge() {
        let l = limiter(Some(35_000));
        drop(l.acquire(1000).await);
        assert!((level(&l) - 34_000.0).abs() < 5.0);
        l.on_rate_limited(None, 1000, None);
        assert!((level(&l) - 35_000.0).abs() < 1.0);
    }

    #[tokio::test]
    async fn issue22_the_server_headers_bound_the_bucket_from_both_sides() {
        let l = limiter(Some(35_000));
        // What is in flight may not be counted by the server yet, so it stays charged.
        let held = l.acquire(5000).await;
        l.lock().tokens.as_mut().unwrap().level = 0.0;
        l.on_success(&headers(5000, 20_000));
        assert!((level(&l) - 15_000.0).abs() < 5.0, "{}", level(&l));
        drop(held);
        assert_eq!(l.lock().inflight_tokens, 0.0);
        // Charged for attempts the server did not count: the headers give the tokens back.
        l.lock().tokens.as_mut().unwrap().level = 0.0;
        l.on_success(&headers(5000, 20_000));
        assert!((level(&l) - 20_000.0).abs() < 5.0, "{}", level(&l));
        // Never more than the server says is left.
        l.lock().tokens.as_mut().unwrap().level = 30_000.0;
        l.on_success(&headers(5000, 10_000));
        assert!((level(&l) - 10_000.0).abs() < 5.0, "{}", level(&l));
    }

    #[tokio::test]
    async fn issue22_a_learnt_bucket_is_charged_for_what_is_in_flight() {
        let l = Limiter::new(Limits {
            rpm: None,
            tpm: None,
            concurrency: 16,
        });
        // Sent before any limit was known.
        let mut held = Vec::new();
        for _ in 0..15 {
            held.push(l.acquire(100).await);
        }
        // The first answer: the server has counted only itself so far.
        l.on_success(&headers(5999, 34_900));
        assert!((level(&l) - 33_400.0).abs() < 5.0, "{}", level(&l));
        let requests = l.lock().requests.as_ref().unwrap().level;
        assert!((requests - 5984.0).abs() < 1.0, "{requests}");
        drop(held);
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
