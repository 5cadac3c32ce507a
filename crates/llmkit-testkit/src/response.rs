//! What a handler answers (`Reply`): status, headers and a JSON, byte or timed-frame body, and its
//! conversion into an HTTP response whose frames are paced, stalled or cut as scripted.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::errors::ApiError;

/// How long a stalled response stays silent (the client is expected to time out first).
const STALL: Duration = Duration::from_secs(3600);
/// Pause before a mid-body cut, so that the bytes before it reach the client.
const FLUSH_BEFORE_ABORT: Duration = Duration::from_millis(20);

/// What a handler knows about the request it serves, besides the body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    /// 1-based request number; ids derive from it so that runs are reproducible.
    pub seq: u64,
    /// Unix seconds, for `created`.
    pub created: u64,
    /// Streaming pace.
    pub tokens_per_sec: Option<f64>,
    /// Prompt tokens the prompt cache served (chat requests; see `prompt_cache.rs`).
    pub cached_tokens: u64,
}

/// A handler's answer and what it costs against the rate limits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Handled {
    pub reply: Reply,
    /// `(model, tokens)` when the request counts against RPM/TPM.
    pub charge: Option<(String, u64)>,
}

impl Handled {
    pub(crate) fn free(reply: Reply) -> Self {
        Self {
            reply,
            charge: None,
        }
    }
}

/// One step of a streamed body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// Bytes to send.
    Data(Bytes),
    /// Wait before the next frame (token pacing).
    Pause(Duration),
    /// Where a stream fault strikes: after the role chunk, before the first content token.
    FaultPoint,
    /// Send nothing more for a long time.
    Stall,
    /// Cut the connection mid-body.
    Abort(&'static str),
}

/// A body that is a JSON document, raw bytes, or a sequence of timed frames.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReplyBody {
    Json(Value),
    Bytes(Bytes),
    Frames(Vec<Frame>),
}

/// A complete answer before it is turned into an HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReplyBody,
}

impl Reply {
    pub(crate) fn json(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: "application/json",
            headers: Vec::new(),
            body: ReplyBody::Json(body),
        }
    }

    pub(crate) fn sse(frames: Vec<Frame>) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: "text/event-stream; charset=utf-8",
            headers: vec![("cache-control", "no-cache".into())],
            body: ReplyBody::Frames(frames),
        }
    }

    pub(crate) fn bytes(content_type: &'static str, bytes: impl Into<Bytes>) -> Self {
        Self {
            status: StatusCode::OK,
            content_type,
            headers: Vec::new(),
            body: ReplyBody::Bytes(bytes.into()),
        }
    }

    /// Builds the HTTP response; `cancel` ends pauses and stalls when the server shuts down.
    pub(crate) fn into_response(self, cancel: CancellationToken) -> Response {
        let mut builder = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, self.content_type);
        for (name, value) in &self.headers {
            builder = builder.header(*name, value.as_str());
        }
        let body = match self.body {
            ReplyBody::Json(v) => Body::from(v.to_string()),
            ReplyBody::Bytes(b) => Body::from(b),
            ReplyBody::Frames(frames) => body_from_frames(frames, cancel),
        };
        builder.body(body).unwrap_or_else(|_| {
            let mut r = Response::new(Body::from(ApiError::server_error().body().to_string()));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        })
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status,
            content_type: "application/json",
            body: ReplyBody::Json(e.body()),
            headers: e.headers,
        }
    }
}

/// Formats one SSE event carrying `data`.
pub(crate) fn sse_data(data: &str) -> Frame {
    Frame::Data(Bytes::from(format!("data: {data}\n\n")))
}

/// Plays `frames` as a body stream. An error item makes hyper drop the connection mid-body.
fn body_from_frames(frames: Vec<Frame>, cancel: CancellationToken) -> Body {
    let state = (VecDeque::from(frames), cancel);
    let stream = futures::stream::unfold(state, |(mut queue, cancel)| async move {
        loop {
            let fail = |why: &str| Err(io::Error::other(why.to_string()));
            let item: Result<Bytes, io::Error> = match queue.pop_front()? {
                Frame::Data(b) => Ok(b),
                Frame::FaultPoint => continue,
                Frame::Pause(d) => {
                    tokio::select! {
                        () = tokio::time::sleep(d) => continue,
                        () = cancel.cancelled() => fail("mock server shutting down"),
                    }
                }
                Frame::Stall => {
                    tokio::select! {
                        () = tokio::time::sleep(STALL) => fail("mock fault: stall ended"),
                        () = cancel.cancelled() => fail("mock server shutting down"),
                    }
                }
                Frame::Abort(why) => {
                    // hyper drops buffered output on a body error: let it flush what was sent.
                    tokio::time::sleep(FLUSH_BEFORE_ABORT).await;
                    fail(why)
                }
            };
            if item.is_err() {
                queue.clear();
            }
            return Some((item, (queue, cancel)));
        }
    });
    Body::from_stream(stream)
}
