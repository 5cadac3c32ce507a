//! Turning raw HTTP answers into results: the failures of an exchange (a TLS handshake, an
//! API error body, a broken or stalled body), the response's meta, and request bodies.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use llmkit_types::ErrorResponse;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::capabilities::names_optional_parameter;
use crate::error::{ClientError, error_chain, truncate_raw};
use crate::http::{Failure, ResponseMeta};
use crate::ratelimit::RateLimitInfo;
use crate::retry::{Retry, decide_status};

/// Whether a transport error is a failed TLS handshake, and if so whether the server
/// answered with something that is not TLS at all (`Some(true)`: a plain-HTTP server, or one
/// that hung up on the handshake) rather than refusing a certificate (`Some(false)`).
pub(crate) fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<bool> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            // Bytes that are not a TLS record at all: the server speaks something else
            // (`HTTP/1.1 400 Bad Request` from a plain-HTTP server).
            let not_tls = matches!(
                tls,
                rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }
            );
            return Some(not_tls);
        }
        let io = err.downcast_ref::<std::io::Error>();
        if let Some(io) = io
            && io.kind() == std::io::ErrorKind::UnexpectedEof
            && io.to_string().contains("tls handshake eof")
        {
            return Some(true);
        }
        // `io::Error::source` skips the error it wraps, so step into it instead.
        cur = match io {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// Wraps the last error of a retried call; a call that made one attempt returns it as is.
pub(crate) fn exhausted(error: ClientError, attempts: u32) -> ClientError {
    if attempts > 1 {
        ClientError::RetriesExhausted {
            attempts,
            last: Box::new(error),
        }
    } else {
        error
    }
}

/// Reads a whole body, failing when nothing arrives for `stall`.
pub(crate) async fn read_body(
    resp: reqwest::Response,
    stall: Duration,
) -> Result<Bytes, ClientError> {
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout(stall, stream.next()).await {
            Err(_) => return Err(ClientError::StreamStalled { after: stall }),
            Ok(None) => return Ok(Bytes::from(buf)),
            Ok(Some(Ok(piece))) => buf.extend_from_slice(&piece),
            Ok(Some(Err(e))) => return Err(body_error(&e)),
        }
    }
}

/// A failure while reading a body that had started.
pub(crate) fn body_error(e: &reqwest::Error) -> ClientError {
    if e.is_timeout() {
        ClientError::Timeout(format!(
            "the response body did not finish in time: {}",
            error_chain(e)
        ))
    } else {
        ClientError::Stream(format!(
            "the connection broke while reading the body: {}",
            error_chain(e)
        ))
    }
}

pub(crate) fn api_failure(status: StatusCode, headers: &HeaderMap, bytes: &[u8]) -> Failure {
    let rate_limit = RateLimitInfo::from_headers(headers);
    let error = ClientError::Api {
        retry_after: crate::retry::server_delay(headers, std::time::SystemTime::now()),
        rate_limit: (!rate_limit.is_empty()).then(|| Box::new(rate_limit)),
        status: status.as_u16(),
        error: ErrorResponse::parse_lenient(bytes),
        request_id: request_id(headers),
        raw: truncate_raw(&String::from_utf8_lossy(bytes)),
    };
    let retry = if refuses_a_feature(status, &error) {
        Retry::No
    } else {
        decide_status(status.as_u16(), headers, error.is_insufficient_quota())
    };
    Failure { error, retry }
}

/// A 500 or 501 whose body names a parameter some servers lack (llama.cpp answers
/// `json_schema` so) is the server refusing the feature: sending it again cannot help.
fn refuses_a_feature(status: StatusCode, error: &ClientError) -> bool {
    let ClientError::Api { error, raw, .. } = error else {
        return false;
    };
    matches!(status.as_u16(), 500 | 501) && names_optional_parameter(error.as_ref(), raw)
}

pub(crate) fn meta_from(status: StatusCode, headers: &HeaderMap) -> ResponseMeta {
    ResponseMeta {
        request_id: request_id(headers),
        status: status.as_u16(),
        latency: Duration::ZERO,
        ttft: None,
        attempts: 0,
        rate_limit: RateLimitInfo::from_headers(headers),
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(crate) fn to_body<T: serde::Serialize>(req: &T) -> Result<Bytes, ClientError> {
    serde_json::to_vec(req)
        .map(Bytes::from)
        .map_err(|e| ClientError::InvalidConfig(format!("the request cannot be serialised: {e}")))
}
