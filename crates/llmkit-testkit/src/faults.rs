//! Fault injection: the seeded per-request draw and how each fault kind rewrites a reply.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::Fault;
use crate::errors::ApiError;
use crate::response::{Frame, Reply, ReplyBody, sse_data};

/// `Retry-After-Ms` of an injected 429: short, so that retrying tests stay fast.
const FAULT_RETRY_MS: u64 = 50;
/// A body that is clearly not JSON, as an HTML error page from a proxy would be.
const NOT_JSON: &str = "<html><head><title>502 Bad Gateway</title></head>\
    <body><center><h1>502 Bad Gateway</h1></center></body></html>\n";

/// Draws faults reproducibly from a seed.
#[derive(Debug)]
pub(crate) struct FaultDice {
    rng: StdRng,
    rate: f64,
    kinds: Vec<Fault>,
}

impl FaultDice {
    pub(crate) fn new(seed: u64, rate: f64, kinds: Vec<Fault>) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            rate: rate.clamp(0.0, 1.0),
            kinds,
        }
    }

    /// One draw per request: `None` (answer normally) or the fault to inject.
    pub(crate) fn roll(&mut self) -> Option<Fault> {
        if self.rate <= 0.0 || self.kinds.is_empty() {
            return None;
        }
        if self.rng.random::<f64>() >= self.rate {
            return None;
        }
        let i = self.rng.random_range(0..self.kinds.len());
        Some(self.kinds[i])
    }
}

/// What a fault does before any handler runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Early {
    /// Answer with this error instead of handling the request.
    Error(ApiError),
    /// Reset the connection without answering.
    Reset,
}

/// Faults that replace the handler entirely; the others rewrite the handler's reply.
pub(crate) fn early(fault: Fault) -> Option<Early> {
    match fault {
        Fault::S500 => Some(Early::Error(ApiError::server_error())),
        Fault::S503 => Some(Early::Error(ApiError::overloaded())),
        Fault::S429 => Some(Early::Error(
            ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "requests",
                "Rate limit reached (injected by llmkit-mock). Please try again in 50ms.",
            )
            .with_code("rate_limit_exceeded")
            .with_header("retry-after", "1")
            .with_header("retry-after-ms", FAULT_RETRY_MS.to_string()),
        )),
        Fault::Reset => Some(Early::Reset),
        Fault::Stall | Fault::Truncate | Fault::BadJson => None,
    }
}

/// Rewrites a reply for `stall`, `truncate` and `badjson`. Streams keep what precedes their
/// fault point (the role chunk), so the fault strikes before any content token.
pub(crate) fn apply(mut reply: Reply, fault: Fault) -> Reply {
    let body = std::mem::replace(&mut reply.body, ReplyBody::Frames(Vec::new()));
    reply.body = match (fault, body) {
        (Fault::Stall, ReplyBody::Frames(frames)) => {
            let mut kept = before_fault_point(frames);
            kept.push(Frame::Stall);
            ReplyBody::Frames(kept)
        }
        (Fault::Stall, _) => ReplyBody::Frames(vec![Frame::Stall]),
        (Fault::Truncate, ReplyBody::Frames(frames)) => {
            let mut kept = before_fault_point(frames);
            kept.push(Frame::Abort("mock fault: truncate"));
            ReplyBody::Frames(kept)
        }
        (Fault::Truncate, body) => {
            let full = match body {
                ReplyBody::Json(v) => Bytes::from(v.to_string()),
                ReplyBody::Bytes(b) => b,
                ReplyBody::Frames(_) => Bytes::new(),
            };
            // The declared length is the full one, so the client sees a body cut short.
            reply
                .headers
                .push(("content-length", full.len().to_string()));
            let half = full.slice(..full.len() / 2);
            ReplyBody::Frames(vec![
                Frame::Data(half),
                Frame::Abort("mock fault: truncate"),
            ])
        }
        (Fault::BadJson, ReplyBody::Frames(frames)) => {
            let mut kept = before_fault_point(frames);
            kept.push(sse_data(
                "{\"id\": \"chatcmpl-broken\", \"choices\": [{\"delta\": ",
            ));
            ReplyBody::Frames(kept)
        }
        (Fault::BadJson, _) => {
            reply.status = axum::http::StatusCode::OK;
            reply.content_type = "application/json";
            ReplyBody::Bytes(Bytes::from_static(NOT_JSON.as_bytes()))
        }
        (_, body) => body,
    };
    reply
}

fn before_fault_point(frames: Vec<Frame>) -> Vec<Frame> {
    frames
        .into_iter()
        .take_while(|f| *f != Frame::FaultPoint)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dice_are_reproducible_and_respect_the_rate() {
        let draw = |seed| {
            let mut d = FaultDice::new(seed, 0.5, Fault::ALL.to_vec());
            (0..200).map(|_| d.roll()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let hits = draw(7).iter().filter(|f| f.is_some()).count();
        assert!((60..140).contains(&hits), "{hits}");
        let mut never = FaultDice::new(1, 0.0, Fault::ALL.to_vec());
        assert!((0..100).all(|_| never.roll().is_none()));
        let mut always = FaultDice::new(1, 1.0, vec![Fault::Reset]);
        assert!((0..100).all(|_| always.roll() == Some(Fault::Reset)));
    }

    #[test]
    fn stream_faults_keep_the_role_chunk_only() {
        let frames = vec![sse_data("role"), Frame::FaultPoint, sse_data("content")];
        let r = apply(Reply::sse(frames.clone()), Fault::Stall);
        assert_eq!(
            r.body,
            ReplyBody::Frames(vec![sse_data("role"), Frame::Stall])
        );
        let r = apply(Reply::sse(frames), Fault::Truncate);
        assert!(matches!(&r.body, ReplyBody::Frames(f) if f.len() == 2));
    }

    #[test]
    fn json_truncate_declares_the_full_length() {
        let r = apply(Reply::json(json!({"a": "bcdefgh"})), Fault::Truncate);
        assert!(r.headers.contains(&("content-length", "15".to_string())));
        let r = apply(Reply::json(json!({})), Fault::BadJson);
        assert!(matches!(r.body, ReplyBody::Bytes(_)));
    }
}
