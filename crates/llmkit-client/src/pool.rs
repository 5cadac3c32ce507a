//! `Pool`: several upstreams serving one model, balanced (the power of two choices on in-flight requests, or peak-EWMA latency), skipping those whose own rate limits are spent, with fallback to the next one before any byte is returned.
//!
//! **Balance.** With [`Balance::P2c`] (the default) each request picks two upstreams at
//! random and goes to the one with fewer requests in flight (a stream counts until it
//! ends); that keeps load even without shared state and steers away from a slow upstream,
//! whose requests pile up. With [`Balance::Ewma`] each upstream keeps an exponentially
//! weighted moving average of its latency (the time to its response head) and a request
//! goes to the lowest `ewma * (in_flight + 1)`: the peak-EWMA of linkerd and tower. A
//! slower answer than the average replaces it at once (the peak), a faster one pulls it down
//! with a weight that grows with the time since the last one, and an idle upstream's
//! average decays towards zero, so a slow upstream is tried again once it has rested. A
//! failure that falls back counts as an answer of at least [`FAILURE_PENALTY`], so an
//! upstream that fails fast does not draw traffic.
//!
//! **Rate limits.** An upstream that reports no requests or no tokens left
//! (`x-ratelimit-remaining-*: 0`), or that answers 429, is skipped until its reset
//! (`x-ratelimit-reset-*`, `Retry-After`); when every upstream is skipped the call fails
//! at once with [`ClientError::UpstreamsLimited`], carrying the soonest reset.
//!
//! **Fallback.** When the chosen upstream fails after its own client's retries with a
//! failure the client retries (a connect error, a 5xx, a timeout or stall, a garbled
//! answer) or a 429, the request goes to the others in their configured order. A stream
//! falls back only while nothing of it has been returned: its first chunk is read before
//! the stream is handed on, so a stream that fails before its first token still moves; one
//! that fails later ends with the error, as from a single upstream. The last upstream left
//! is not read ahead: with nothing to fall back to, its stream goes on as it is (a pool of
//! one streams exactly as its backend does).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use llmkit_types::{
    ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse,
    EmbeddingRequest, EmbeddingResponse, ModelList,
};

use crate::backend::Backend;
use crate::error::ClientError;
use crate::http::Response;
use crate::ratelimit::RateLimitInfo;
use crate::stream::ChatStream;

/// The least a failure that falls back counts for in an upstream's latency average.
pub const FAILURE_PENALTY: Duration = Duration::from_secs(1);

/// How fast an upstream's latency average forgets (tower's and linkerd's default).
const EWMA_DECAY: Duration = Duration::from_secs(10);

/// How long an upstream is skipped after a 429 (or a spent limit) that names no reset.
const DEFAULT_BLOCK: Duration = Duration::from_secs(1);

/// The longest an upstream is skipped, whatever it says (a garbled reset header must not
/// take it out for a day).
const MAX_BLOCK: Duration = Duration::from_secs(3600);

/// How a pool picks the upstream to try first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Balance {
    /// The less busy of two upstreams picked at random (requests in flight).
    #[default]
    P2c,
    /// The lowest latency average times (requests in flight + 1).
    Ewma,
}

/// Told of every attempt a pool makes on one of its upstreams (for metrics).
pub trait PoolObserver: Send + Sync {
    /// `upstream` answered (its response head) or failed after `took`.
    fn attempt(&self, upstream: &str, took: Duration, error: Option<&ClientError>);
}

/// Upstreams for one model. Cheap to clone; clones share the upstreams' state (in-flight
/// counts, latency averages, rate-limit resets).
#[derive(Clone)]
pub struct Pool {
    upstreams: Arc<[Arc<Upstream>]>,
    balance: Balance,
    observer: Option<Arc<dyn PoolObserver>>,
    /// The upstream of this clone's last attempt (see [`Pool::traced`]).
    trace: Option<Arc<Mutex<Option<Arc<str>>>>>,
}

struct Upstream {
    name: Arc<str>,
    backend: Backend,
    in_flight: AtomicUsize,
    state: Mutex<State>,
}

/// What an upstream's answers taught the pool.
#[derive(Default)]
struct State {
    /// The latency average in seconds and when it was last updated; `None` until the
    /// first answer.
    ewma: Option<(f64, Instant)>,
    /// Skipped until then: its own rate limit is spent.
    blocked_until: Option<Instant>,
}

impl Upstream {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The latency average as of `now` (decayed over the time since the last answer).
    fn ewma(&self, now: Instant) -> Option<f64> {
        let (value, at) = self.state().ewma?;
        let idle = now.saturating_duration_since(at).as_secs_f64();
        Some(value * (-idle / EWMA_DECAY.as_secs_f64()).exp())
    }

    /// Folds one answer's latency into the average: a slower one is taken whole (the
    /// peak), a faster one weighted by the time since the last answer.
    fn observe_latency(&self, took: Duration, now: Instant) {
        let rtt = took.as_secs_f64();
        let mut st = self.state();
        st.ewma = Some(match st.ewma {
            Some((value, _)) if rtt >= value => (rtt, now),
            Some((value, at)) => {
                let idle = now.saturating_duration_since(at).as_secs_f64();
                let keep = (-idle / EWMA_DECAY.as_secs_f64()).exp();
                (value * keep + rtt * (1.0 - keep), now)
            }
            None => (rtt, now),
        });
    }

    /// Skips the upstream for `wait` from `now` (never shortening a longer skip).
    fn block(&self, wait: Duration, now: Instant) {
        let until = now + wait.min(MAX_BLOCK);
        let mut st = self.state();
        st.blocked_until = Some(st.blocked_until.map_or(until, |u| u.max(until)));
    }

    /// When the upstream may be tried again, if it is skipped at `now`.
    fn blocked(&self, now: Instant) -> Option<Instant> {
        self.state().blocked_until.filter(|&u| u > now)
    }
}

/// One request's hold on an upstream's in-flight count, given back when dropped.
struct InFlight(Arc<Upstream>);

impl InFlight {
    fn enter(u: &Arc<Upstream>) -> Self {
        u.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(u))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An upstream's answer with what the pool learns from it.
struct Served<T> {
    value: T,
    /// The time to the response head.
    head: Duration,
    rate_limit: RateLimitInfo,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("upstreams", &self.names())
            .field("balance", &self.balance)
            .finish()
    }
}

impl Pool {
    /// A pool over `(name, backend)` pairs, in fallback order; `None` when there are none.
    pub fn new(upstreams: Vec<(String, Backend)>) -> Option<Self> {
        if upstreams.is_empty() {
            return None;
        }
        let upstreams = upstreams
            .into_iter()
            .map(|(name, backend)| {
                Arc::new(Upstream {
                    name: name.into(),
                    backend,
                    in_flight: AtomicUsize::new(0),
                    state: Mutex::new(State::default()),
                })
            })
            .collect();
        Some(Self {
            upstreams,
            balance: Balance::default(),
            observer: None,
            trace: None,
        })
    }

    /// How the first upstream of each request is picked.
    #[must_use]
    pub fn balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }

    /// Tells `observer` of every attempt.
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn PoolObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// A clone that remembers which upstream its requests went to last, for
    /// [`served_by`](Self::served_by): one per request (its clones share the memory).
    #[must_use]
    pub fn traced(&self) -> Self {
        Self {
            trace: Some(Arc::new(Mutex::new(None))),
            ..self.clone()
        }
    }

    /// The upstream that answered (or failed) the last attempt of a [`traced`](Self::traced)
    /// pool; `None` before any attempt or when not traced.
    pub fn served_by(&self) -> Option<String> {
        let trace = self.trace.as_ref()?;
        let name = trace.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        Some(name.to_string())
    }

    /// `"local"` when the upstream that served the last attempt (or, before one, the
    /// first upstream) is the embedded model, else `"http"`.
    pub fn kind(&self) -> &'static str {
        let served = self.served_by();
        let up = served
            .and_then(|n| self.upstreams.iter().find(|u| *u.name == *n))
            .or_else(|| self.upstreams.first());
        up.map_or("http", |u| u.backend.kind())
    }

    /// The upstreams' names, in fallback order.
    pub fn names(&self) -> Vec<&str> {
        self.upstreams.iter().map(|u| &*u.name).collect()
    }

    /// Requests in flight on each upstream, by name, in fallback order.
    pub fn in_flight(&self) -> Vec<(&str, usize)> {
        self.upstreams
            .iter()
            .map(|u| (&*u.name, u.in_flight.load(Ordering::Relaxed)))
            .collect()
    }

    /// `pool(a, b)`, for messages.
    pub fn name(&self) -> String {
        format!("pool({})", self.names().join(", "))
    }

    /// The order to try the upstreams in: the one the balance picks, then the others in
    /// their configured order; those whose rate limit is spent are left out. When all
    /// are, the wait until the first of them resets.
    fn order(&self, now: Instant) -> Result<Vec<usize>, Duration> {
        let open: Vec<usize> = (0..self.upstreams.len())
            .filter(|&i| self.upstreams[i].blocked(now).is_none())
            .collect();
        if open.is_empty() {
            let soonest = self
                .upstreams
                .iter()
                .filter_map(|u| u.blocked(now))
                .min()
                .map_or(DEFAULT_BLOCK, |u| u.saturating_duration_since(now));
            return Err(soonest);
        }
        let first = match self.balance {
            Balance::P2c => self.two_choices(&open),
            Balance::Ewma => self.lowest_cost(&open, now),
        };
        Ok(std::iter::once(first)
            .chain(open.into_iter().filter(|&i| i != first))
            .collect())
    }

    fn load(&self, i: usize) -> usize {
        self.upstreams[i].in_flight.load(Ordering::Relaxed)
    }

    /// The less busy of two of `open` picked at random.
    fn two_choices(&self, open: &[usize]) -> usize {
        let n = open.len();
        if n == 1 {
            return open[0];
        }
        let a = rand::random_range(0..n);
        let b = (a + rand::random_range(1..n)) % n;
        let (a, b) = (open[a], open[b]);
        if self.load(b) < self.load(a) { b } else { a }
    }

    /// The lowest `ewma * (in_flight + 1)` of `open`, ties broken at random. An upstream
    /// not yet measured counts as good as the best measured one (or a millisecond), so it
    /// gets tried, and its in-flight count still spreads a burst.
    fn lowest_cost(&self, open: &[usize], now: Instant) -> usize {
        let ewmas: Vec<Option<f64>> = open.iter().map(|&i| self.upstreams[i].ewma(now)).collect();
        let best = ewmas.iter().flatten().copied().reduce(f64::min);
        let unmeasured = best.unwrap_or(1e-3);
        let costs: Vec<f64> = open
            .iter()
            .zip(&ewmas)
            .map(|(&i, e)| e.unwrap_or(unmeasured) * (self.load(i) + 1) as f64)
            .collect();
        let min = costs.iter().copied().fold(f64::INFINITY, f64::min);
        let ties: Vec<usize> = open
            .iter()
            .zip(&costs)
            .filter(|(_, c)| **c <= min)
            .map(|(&i, _)| i)
            .collect();
        match ties.len() {
            0 => open[0],
            1 => ties[0],
            n => ties[rand::random_range(0..n)],
        }
    }

    /// Runs `call` on the upstreams in [`order`](Self::order) until one succeeds or fails
    /// with an error that another upstream would not cure, learning from each answer.
    /// `call`'s flag says whether another upstream is left to fall back to.
    async fn each<'a, T, F>(&'a self, call: F) -> Result<(T, InFlight), ClientError>
    where
        F: Fn(&'a Backend, bool) -> BoxFuture<'a, Result<Served<T>, ClientError>>,
        T: 'a,
    {
        let order =
            self.order(Instant::now())
                .map_err(|retry_after| ClientError::UpstreamsLimited {
                    retry_after,
                    upstreams: self.upstreams.len(),
                })?;
        let last = order.len().saturating_sub(1);
        let mut failure = None;
        for (tried, &i) in order.iter().enumerate() {
            let up = &self.upstreams[i];
            if let Some(trace) = &self.trace {
                *trace.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&up.name));
            }
            let hold = InFlight::enter(up);
            let started = Instant::now();
            let result = call(&up.backend, tried < last).await;
            let now = Instant::now();
            match result {
                Ok(served) => {
                    up.observe_latency(served.head, now);
                    learn_limits(up, &served.rate_limit, now);
                    self.tell(up, served.head, None);
                    return Ok((served.value, hold));
                }
                Err(e) => {
                    let took = now.saturating_duration_since(started);
                    let moves = falls_back(&e);
                    up.observe_latency(
                        if moves {
                            took.max(FAILURE_PENALTY)
                        } else {
                            took
                        },
                        now,
                    );
                    if e.status() == Some(429) {
                        up.block(wait_after_429(&e), now);
                    }
                    self.tell(up, took, Some(&e));
                    if tried < last && moves {
                        failure = Some(e);
                    } else {
                        return Err(e);
                    }
                }
            }
        }
        Err(failure.unwrap_or_else(|| ClientError::InvalidConfig("an empty pool".into())))
    }

    fn tell(&self, up: &Upstream, took: Duration, error: Option<&ClientError>) {
        if let Some(o) = &self.observer {
            o.attempt(&up.name, took, error);
        }
    }

    // The calls return boxed futures: a pool's upstream is a `Backend`, which may be a
    // pool, and the boxes break that cycle for the compiler (`Send` is then declared,
    // not inferred through it).

    pub fn chat<'a>(
        &'a self,
        req: &'a ChatCompletionRequest,
    ) -> BoxFuture<'a, Result<Response<ChatCompletionResponse>, ClientError>> {
        Box::pin(async move {
            self.each(|b, _| Box::pin(async move { whole(b.chat(req).await?) }))
                .await
                .map(|(r, _)| r)
        })
    }

    /// A stream from the first upstream that sends its first chunk (the last one left is
    /// not waited for: with nothing to fall back to, its stream goes on as it is); the
    /// upstream's in-flight count holds until the stream is dropped.
    pub fn chat_stream<'a>(
        &'a self,
        req: &'a ChatCompletionRequest,
    ) -> BoxFuture<'a, Result<ChatStream, ClientError>> {
        Box::pin(async move {
            let (stream, hold) = self
                .each(|b, more| Box::pin(open_stream(b, req, more)))
                .await?;
            Ok(stream.holding(hold))
        })
    }

    pub fn completions<'a>(
        &'a self,
        req: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Response<CompletionResponse>, ClientError>> {
        Box::pin(async move {
            self.each(|b, _| Box::pin(async move { whole(b.completions(req).await?) }))
                .await
                .map(|(r, _)| r)
        })
    }

    pub fn embeddings<'a>(
        &'a self,
        req: &'a EmbeddingRequest,
    ) -> BoxFuture<'a, Result<Response<EmbeddingResponse>, ClientError>> {
        Box::pin(async move {
            self.each(|b, _| Box::pin(async move { whole(b.embeddings(req).await?) }))
                .await
                .map(|(r, _)| r)
        })
    }

    pub fn models(&self) -> BoxFuture<'_, Result<Response<ModelList>, ClientError>> {
        Box::pin(async move {
            self.each(|b, _| Box::pin(async move { whole(b.models().await?) }))
                .await
                .map(|(r, _)| r)
        })
    }
}

/// A whole answer: its latency stands for the time to its head (the body of these
/// answers follows the head at once).
fn whole<T>(r: Response<T>) -> Result<Served<Response<T>>, ClientError> {
    Ok(Served {
        head: r.meta.latency,
        rate_limit: r.meta.rate_limit.clone(),
        value: r,
    })
}

/// Opens a stream and, when another upstream is left (`first_chunk`), reads its first
/// chunk, so that a failure before it is an error of the call (and can fall back) rather
/// than of the stream. The head's time is taken when the stream opens.
async fn open_stream(
    b: &Backend,
    req: &ChatCompletionRequest,
    first_chunk: bool,
) -> Result<Served<ChatStream>, ClientError> {
    let started = Instant::now();
    let mut stream = b.chat_stream(req).await?;
    let head = started.elapsed();
    let rate_limit = stream.meta().rate_limit.clone();
    if !first_chunk {
        return Ok(Served {
            value: stream,
            head,
            rate_limit,
        });
    }
    let value = match stream.next().await {
        Some(Err(e)) => return Err(e),
        Some(Ok(chunk)) => stream.prepend(chunk),
        None => stream,
    };
    Ok(Served {
        value,
        head,
        rate_limit,
    })
}

/// Skips an upstream whose answer says its requests or tokens are spent, until the reset
/// of what is spent.
fn learn_limits(up: &Upstream, rl: &RateLimitInfo, now: Instant) {
    let spent = |remaining: Option<u64>, reset: Option<Duration>| {
        (remaining == Some(0)).then(|| reset.unwrap_or(DEFAULT_BLOCK))
    };
    let wait = [
        spent(rl.remaining_requests, rl.reset_requests),
        spent(rl.remaining_tokens, rl.reset_tokens),
    ]
    .into_iter()
    .flatten()
    .max();
    if let Some(wait) = wait {
        up.block(wait, now);
    }
}

/// How long to skip an upstream that answered 429: its `Retry-After`, else the reset of
/// what its headers say is spent, else [`DEFAULT_BLOCK`].
fn wait_after_429(e: &ClientError) -> Duration {
    if let Some(d) = e.retry_after() {
        return d;
    }
    let rl = e.rate_limit();
    let reset = |remaining: Option<u64>, reset: Option<Duration>| {
        reset.filter(|_| remaining.is_none_or(|r| r == 0))
    };
    rl.and_then(|rl| {
        [
            reset(rl.remaining_requests, rl.reset_requests),
            reset(rl.remaining_tokens, rl.reset_tokens),
        ]
        .into_iter()
        .flatten()
        .max()
    })
    .unwrap_or(DEFAULT_BLOCK)
}

/// Failures another upstream may not have: those the client retries (it could not be
/// reached, it failed with a 5xx or a garbled answer, it timed out or stalled, its stream
/// broke before a byte), any 429 (a quota is per upstream), and a failed TLS handshake.
pub(crate) fn falls_back(e: &ClientError) -> bool {
    match e {
        ClientError::RetriesExhausted { last, .. } => falls_back(last),
        ClientError::Api { status: 429, .. } | ClientError::Tls { .. } => true,
        other => other.is_retryable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientConfig;
    use crate::http::HttpClient;

    fn pool(n: usize) -> Pool {
        let ups = (0..n)
            .map(|i| {
                let c = HttpClient::new(ClientConfig::new(format!("http://127.0.0.1:1/v{i}")))
                    .expect("client");
                (format!("u{i}"), Backend::Http(c))
            })
            .collect();
        Pool::new(ups).expect("pool")
    }

    fn order(p: &Pool) -> Vec<usize> {
        p.order(Instant::now()).expect("open")
    }

    #[test]
    fn an_empty_pool_is_refused() {
        assert!(Pool::new(Vec::new()).is_none());
    }

    #[test]
    fn the_order_tries_every_upstream_once() {
        for balance in [Balance::P2c, Balance::Ewma] {
            let p = pool(4).balance(balance);
            for _ in 0..100 {
                let mut order = order(&p);
                order.sort_unstable();
                assert_eq!(order, [0, 1, 2, 3]);
            }
        }
    }

    #[test]
    fn the_less_busy_of_two_goes_first() {
        let p = pool(2);
        let busy: Vec<_> = (0..3).map(|_| InFlight::enter(&p.upstreams[0])).collect();
        for _ in 0..50 {
            assert_eq!(order(&p), [1, 0]);
        }
        drop(busy);
        assert_eq!(p.in_flight(), [("u0", 0), ("u1", 0)]);
    }

    #[test]
    fn idle_upstreams_share_the_first_place() {
        for balance in [Balance::P2c, Balance::Ewma] {
            let p = pool(2).balance(balance);
            let firsts = (0..1000).filter(|_| order(&p)[0] == 0).count();
            assert!(
                (350..=650).contains(&firsts),
                "{balance:?}: u0 first {firsts} times of 1000"
            );
        }
    }

    #[test]
    fn ewma_prefers_the_faster_until_it_is_busy() {
        let p = pool(2).balance(Balance::Ewma);
        let now = Instant::now();
        p.upstreams[0].observe_latency(Duration::from_millis(10), now);
        p.upstreams[1].observe_latency(Duration::from_millis(100), now);
        for _ in 0..50 {
            assert_eq!(order(&p)[0], 0);
        }
        // Ten in flight on the fast one cost more than one idle slow one: 10ms * 11 > 100ms.
        let busy: Vec<_> = (0..10).map(|_| InFlight::enter(&p.upstreams[0])).collect();
        assert_eq!(order(&p)[0], 1);
        drop(busy);
        // An unmeasured upstream counts as good as the best measured one.
        let q = pool(3).balance(Balance::Ewma);
        q.upstreams[0].observe_latency(Duration::from_millis(100), now);
        q.upstreams[1].observe_latency(Duration::from_millis(5), now);
        let firsts: Vec<usize> = (0..200).map(|_| order(&q)[0]).collect();
        assert!(firsts.iter().all(|&f| f != 0), "{firsts:?}");
        assert!(firsts.contains(&1) && firsts.contains(&2), "{firsts:?}");
    }

    #[test]
    fn the_average_takes_peaks_at_once_and_decays_when_idle() {
        let p = pool(1);
        let u = &p.upstreams[0];
        let t0 = Instant::now();
        u.observe_latency(Duration::from_millis(10), t0);
        u.observe_latency(Duration::from_millis(200), t0);
        let e = u.ewma(t0).expect("measured");
        assert!((e - 0.2).abs() < 1e-9, "{e}");
        // A fast answer right after barely moves it; one after a long rest nearly replaces it.
        u.observe_latency(Duration::from_millis(10), t0 + Duration::from_millis(1));
        let e = u.ewma(t0 + Duration::from_millis(1)).expect("measured");
        assert!(e > 0.19, "{e}");
        let later = t0 + Duration::from_secs(60);
        u.observe_latency(Duration::from_millis(10), later);
        let e = u.ewma(later).expect("measured");
        assert!(e < 0.011, "{e}");
        // Idle, it decays towards zero: e^-3 after three decay periods.
        let e = u.ewma(later + EWMA_DECAY * 3).expect("measured");
        assert!(e < 0.0006, "{e}");
    }

    #[test]
    fn a_spent_upstream_is_skipped_until_its_reset() {
        let p = pool(2);
        let now = Instant::now();
        let spent = RateLimitInfo {
            remaining_requests: Some(0),
            reset_requests: Some(Duration::from_secs(30)),
            remaining_tokens: Some(5000),
            reset_tokens: Some(Duration::from_secs(2)),
            ..RateLimitInfo::default()
        };
        learn_limits(&p.upstreams[0], &spent, now);
        for _ in 0..50 {
            assert_eq!(p.order(now).expect("open"), [1]);
        }
        // Remaining requests or tokens above zero block nothing.
        let fine = RateLimitInfo {
            remaining_requests: Some(3),
            remaining_tokens: Some(1),
            reset_requests: Some(Duration::from_secs(30)),
            ..RateLimitInfo::default()
        };
        learn_limits(&p.upstreams[1], &fine, now);
        assert_eq!(p.order(now).expect("open"), [1]);
        // Tokens spent on the other: both are skipped, and the soonest reset is the wait.
        let tokens = RateLimitInfo {
            remaining_tokens: Some(0),
            reset_tokens: Some(Duration::from_secs(7)),
            ..RateLimitInfo::default()
        };
        learn_limits(&p.upstreams[1], &tokens, now);
        assert_eq!(p.order(now), Err(Duration::from_secs(7)));
        // After the resets they are back, in order.
        let later = now + Duration::from_secs(31);
        let mut back = p.order(later).expect("open");
        back.sort_unstable();
        assert_eq!(back, [0, 1]);
    }

    #[test]
    fn a_429_skips_for_its_retry_after() {
        let api = |retry_after, rate_limit| ClientError::Api {
            status: 429,
            error: None,
            request_id: None,
            raw: String::new(),
            retry_after,
            rate_limit,
        };
        assert_eq!(
            wait_after_429(&api(Some(Duration::from_millis(1500)), None)),
            Duration::from_millis(1500)
        );
        let rl = RateLimitInfo {
            remaining_requests: Some(4),
            reset_requests: Some(Duration::from_secs(9)),
            remaining_tokens: Some(0),
            reset_tokens: Some(Duration::from_secs(3)),
            ..RateLimitInfo::default()
        };
        assert_eq!(
            wait_after_429(&api(None, Some(Box::new(rl)))),
            Duration::from_secs(3)
        );
        assert_eq!(wait_after_429(&api(None, None)), DEFAULT_BLOCK);
        let wrapped = ClientError::RetriesExhausted {
            attempts: 2,
            last: Box::new(api(Some(Duration::from_secs(4)), None)),
        };
        assert_eq!(wait_after_429(&wrapped), Duration::from_secs(4));
        // A garbled reset cannot take an upstream out for longer than the cap.
        let p = pool(1);
        let now = Instant::now();
        p.upstreams[0].block(Duration::from_secs(86_400 * 365), now);
        assert_eq!(p.order(now), Err(MAX_BLOCK));
    }

    #[test]
    fn only_failures_of_the_upstream_fall_back() {
        let api = |status| ClientError::Api {
            status,
            error: None,
            request_id: None,
            raw: String::new(),
            retry_after: None,
            rate_limit: None,
        };
        assert!(falls_back(&api(500)));
        assert!(falls_back(&api(503)));
        assert!(falls_back(&api(429)));
        assert!(!falls_back(&api(400)));
        assert!(!falls_back(&api(401)));
        assert!(!falls_back(&api(404)));
        assert!(falls_back(&ClientError::RetriesExhausted {
            attempts: 3,
            last: Box::new(api(502)),
        }));
        assert!(falls_back(&ClientError::StreamStalled {
            after: std::time::Duration::from_secs(1),
        }));
        assert!(falls_back(&ClientError::Timeout("request".into())));
        assert!(!falls_back(&ClientError::InvalidInput("bad".into())));
        assert!(!falls_back(&ClientError::UpstreamsLimited {
            retry_after: Duration::from_secs(1),
            upstreams: 2,
        }));
    }
}
