//! `Pool`: several upstreams serving one model, balanced by the power of two choices on their in-flight requests, with fallback to the next one before any byte is returned.
//!
//! Each request picks two upstreams at random and goes to the one with fewer requests in
//! flight (a stream counts until it ends); that keeps load even without shared state and
//! steers away from a slow upstream, whose requests pile up. When the chosen upstream fails
//! after its own client's retries with a failure the client retries (a connect error, a
//! 5xx, a timeout or stall, a garbled answer) or a 429, the request goes to the others in
//! their configured order. A stream falls back only while
//! nothing of it has been returned: its first chunk is read before the stream is handed on,
//! so a stream that fails before its first token still moves; one that fails later ends with
//! the error, as from a single upstream.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use llmkit_types::{
    ChatCompletionRequest, ChatCompletionResponse, CompletionRequest, CompletionResponse,
    EmbeddingRequest, EmbeddingResponse, ModelList,
};

use crate::error::ClientError;
use crate::http::{HttpClient, Response};
use crate::stream::ChatStream;

/// Upstreams for one model. Cheap to clone; clones share the in-flight counts.
#[derive(Clone)]
pub struct Pool {
    upstreams: Arc<[Arc<Upstream>]>,
}

struct Upstream {
    name: String,
    client: HttpClient,
    in_flight: AtomicUsize,
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

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("upstreams", &self.names())
            .finish()
    }
}

impl Pool {
    /// A pool over `(name, client)` pairs, in fallback order; `None` when there are none.
    pub fn new(upstreams: Vec<(String, HttpClient)>) -> Option<Self> {
        if upstreams.is_empty() {
            return None;
        }
        let upstreams = upstreams
            .into_iter()
            .map(|(name, client)| {
                Arc::new(Upstream {
                    name,
                    client,
                    in_flight: AtomicUsize::new(0),
                })
            })
            .collect();
        Some(Self { upstreams })
    }

    /// The upstreams' names, in fallback order.
    pub fn names(&self) -> Vec<&str> {
        self.upstreams.iter().map(|u| u.name.as_str()).collect()
    }

    /// Requests in flight on each upstream, by name, in fallback order.
    pub fn in_flight(&self) -> Vec<(&str, usize)> {
        self.upstreams
            .iter()
            .map(|u| (u.name.as_str(), u.in_flight.load(Ordering::Relaxed)))
            .collect()
    }

    /// `pool(a, b)`, for messages.
    pub fn name(&self) -> String {
        format!("pool({})", self.names().join(", "))
    }

    /// The order to try the upstreams in: the less busy of two picked at random, then the
    /// others in their configured order.
    fn order(&self) -> Vec<usize> {
        let n = self.upstreams.len();
        let first = if n == 1 {
            0
        } else {
            let a = rand::random_range(0..n);
            let b = (a + rand::random_range(1..n)) % n;
            let load = |i: usize| self.upstreams[i].in_flight.load(Ordering::Relaxed);
            if load(b) < load(a) { b } else { a }
        };
        std::iter::once(first)
            .chain((0..n).filter(|&i| i != first))
            .collect()
    }

    /// Runs `call` on the upstreams in [`order`](Self::order) until one succeeds or fails
    /// with an error that another upstream would not cure.
    async fn each<'a, T, F, Fut>(&'a self, call: F) -> Result<(T, InFlight), ClientError>
    where
        F: Fn(&'a HttpClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>> + 'a,
        T: 'a,
    {
        let order = self.order();
        let last = order.len().saturating_sub(1);
        let mut failure = None;
        for (tried, &i) in order.iter().enumerate() {
            let up = &self.upstreams[i];
            let hold = InFlight::enter(up);
            match call(&up.client).await {
                Ok(v) => return Ok((v, hold)),
                Err(e) if tried < last && falls_back(&e) => failure = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(failure.unwrap_or_else(|| ClientError::InvalidConfig("an empty pool".into())))
    }

    pub async fn chat(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<Response<ChatCompletionResponse>, ClientError> {
        self.each(|c| c.chat(req)).await.map(|(r, _)| r)
    }

    /// A stream from the first upstream that sends its first chunk; the upstream's
    /// in-flight count holds until the stream is dropped.
    pub async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<ChatStream, ClientError> {
        let (stream, hold) = self.each(|c| first_chunk(c, req)).await?;
        Ok(stream.holding(hold))
    }

    pub async fn completions(
        &self,
        req: &CompletionRequest,
    ) -> Result<Response<CompletionResponse>, ClientError> {
        self.each(|c| c.completions(req)).await.map(|(r, _)| r)
    }

    pub async fn embeddings(
        &self,
        req: &EmbeddingRequest,
    ) -> Result<Response<EmbeddingResponse>, ClientError> {
        self.each(|c| c.embeddings(req)).await.map(|(r, _)| r)
    }

    pub async fn models(&self) -> Result<Response<ModelList>, ClientError> {
        self.each(HttpClient::models).await.map(|(r, _)| r)
    }
}

/// Opens a stream and reads its first chunk, so that a failure before it is an error of
/// the call (and can fall back) rather than of the stream.
async fn first_chunk(
    c: &HttpClient,
    req: &ChatCompletionRequest,
) -> Result<ChatStream, ClientError> {
    let mut stream = c.chat_stream(req).await?;
    match stream.next().await {
        Some(Err(e)) => Err(e),
        Some(Ok(chunk)) => Ok(stream.prepend(chunk)),
        None => Ok(stream),
    }
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

    fn pool(n: usize) -> Pool {
        let ups = (0..n)
            .map(|i| {
                let c = HttpClient::new(ClientConfig::new(format!("http://127.0.0.1:1/v{i}")))
                    .expect("client");
                (format!("u{i}"), c)
            })
            .collect();
        Pool::new(ups).expect("pool")
    }

    #[test]
    fn an_empty_pool_is_refused() {
        assert!(Pool::new(Vec::new()).is_none());
    }

    #[test]
    fn the_order_tries_every_upstream_once() {
        let p = pool(4);
        for _ in 0..100 {
            let mut order = p.order();
            order.sort_unstable();
            assert_eq!(order, [0, 1, 2, 3]);
        }
    }

    #[test]
    fn the_less_busy_of_two_goes_first() {
        let p = pool(2);
        let busy: Vec<_> = (0..3).map(|_| InFlight::enter(&p.upstreams[0])).collect();
        for _ in 0..50 {
            assert_eq!(p.order(), [1, 0]);
        }
        drop(busy);
        assert_eq!(p.in_flight(), [("u0", 0), ("u1", 0)]);
    }

    #[test]
    fn idle_upstreams_share_the_first_place() {
        let p = pool(2);
        let firsts = (0..1000).filter(|_| p.order()[0] == 0).count();
        assert!(
            (350..=650).contains(&firsts),
            "u0 first {firsts} times of 1000"
        );
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
    }
}
