//! `x-llmkit-overhead-ms`: the gateway's own share of a response's time.

use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use axum::response::Response;

/// `x-llmkit-overhead-ms`: the time the gateway itself took (for a stream, up to the
/// response head), the upstream's own latency taken out.
pub(crate) fn with_overhead(mut resp: Response, started: Instant, upstream: Duration) -> Response {
    let overhead = started.elapsed().saturating_sub(upstream);
    let ms = format!("{:.3}", overhead.as_secs_f64() * 1000.0);
    if let Ok(v) = HeaderValue::from_str(&ms) {
        resp.headers_mut().insert("x-llmkit-overhead-ms", v);
    }
    resp
}
