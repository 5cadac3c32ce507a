//! `ApiError`: one OpenAI error body with its status and headers (`Retry-After`,
//! `x-ratelimit-*`), and how pipeline and upstream failures map onto it.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use llmkit_client::ClientError;
use serde_json::json;

use crate::ops::Refused;

/// One OpenAI error body with its status and headers.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: String,
    message: String,
    param: Option<serde_json::Value>,
    code: Option<serde_json::Value>,
    retry_after: Option<u64>,
    /// Set when the gateway refused the request itself (for the metrics).
    refusal: Option<&'static str>,
    /// More headers for the answer (`x-ratelimit-*`, `retry-after-ms`).
    headers: HeaderMap,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind: kind.to_string(),
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
            refusal: None,
            headers: HeaderMap::new(),
        }
    }

    pub(crate) fn refused(mut self, reason: &'static str) -> Self {
        self.refusal = Some(reason);
        self
    }

    pub(crate) fn param(mut self, param: &str) -> Self {
        self.param = Some(json!(param));
        self
    }

    pub(crate) fn code(mut self, code: &str) -> Self {
        self.code = Some(json!(code));
        self
    }

    /// `Retry-After` in whole seconds.
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub(crate) fn with_headers(mut self, headers: &HeaderMap) -> Self {
        self.headers.extend(headers.clone());
        self
    }

    pub(crate) fn model_not_allowed(model: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            format!("This key may not use the model `{model}`."),
        )
        .code("model_not_allowed")
        .refused("scope")
    }

    /// A pipeline failure: the budget and price refusals are the gateway's own answers;
    /// everything else came from (or on the way to) the upstream.
    pub(crate) fn from_client(e: &ClientError) -> Self {
        match e {
            ClientError::BudgetExceeded { period, .. } => {
                let mut err = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "insufficient_quota",
                    format!("This key's {period} budget is used up."),
                )
                .code("insufficient_quota");
                err.retry_after = Some(BUDGET_RETRY_AFTER_SECS);
                // The official SDKs retry every 429, and the Node one sleeps for whatever
                // `Retry-After` says: told not to, they raise at once.
                err.headers.insert(
                    axum::http::HeaderName::from_static("x-should-retry"),
                    HeaderValue::from_static("false"),
                );
                err.refused("budget")
            }
            ClientError::Unpriced { model } => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("`{model}` has no known price, so this key's budget cannot hold it."),
            )
            .code("model_unpriced")
            .refused("unpriced"),
            ClientError::Accounting { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "The gateway's ledger is unavailable; nothing was sent.",
            ),
            other => Self::upstream(other),
        }
    }

    /// An upstream failure: its 4xx answers (and 429s with their wait) pass through, a
    /// 5xx or a broken connection becomes 502, a timeout 504.
    pub(crate) fn upstream(e: &ClientError) -> Self {
        match e {
            ClientError::RetriesExhausted { last, .. } => Self::upstream(last),
            ClientError::Api {
                status,
                error,
                retry_after,
                ..
            } if (400..500).contains(status) => {
                let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
                let mut err = match error {
                    Some(body) => {
                        let mut err = Self::new(
                            status,
                            body.kind.as_deref().unwrap_or("invalid_request_error"),
                            body.message.clone(),
                        );
                        err.param = body.param.clone();
                        err.code = body.code.clone();
                        err
                    }
                    None => Self::new(
                        status,
                        "invalid_request_error",
                        "The upstream refused the request.",
                    ),
                };
                err.retry_after = retry_after.map(|d| d.as_secs().max(1));
                if status == StatusCode::TOO_MANY_REQUESTS && err.retry_after.is_none() {
                    err.retry_after = Some(1);
                }
                err
            }
            ClientError::UpstreamsLimited { retry_after, .. } => {
                let mut err = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "requests",
                    "Every upstream of this model has used up its own rate limit; nothing was sent. Try again after Retry-After.",
                )
                .code("rate_limit_exceeded");
                // Whole seconds, rounded up, so a client that waits them finds one reset.
                err.retry_after = Some(retry_after.as_secs_f64().ceil().max(1.0) as u64);
                if let Ok(v) = HeaderValue::from_str(&retry_after.as_millis().to_string()) {
                    err.headers
                        .insert(axum::http::HeaderName::from_static("retry-after-ms"), v);
                }
                err.refused("upstream_limits")
            }
            ClientError::Timeout(_) | ClientError::StreamStalled { .. } => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                "api_error",
                "The upstream did not answer in time.",
            )
            .code("upstream_timeout"),
            other => Self::new(
                StatusCode::BAD_GATEWAY,
                "api_error",
                format!("The upstream failed: {other}"),
            )
            .code("upstream_error"),
        }
    }

    pub(crate) fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        resp.headers_mut().extend(self.headers);
        if let Some(reason) = self.refusal {
            resp.extensions_mut().insert(Refused(reason));
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// A budget refusal lasts until the local day rolls over, which this slice does not
/// compute; an hour's `Retry-After` keeps SDK retries from hammering it meanwhile.
const BUDGET_RETRY_AFTER_SECS: u64 = 3600;
