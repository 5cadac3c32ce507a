//! `ClientError`: every way a backend call fails, with status, OpenAI error body, request id and a user-facing hint.

use std::time::Duration;

use llmkit_types::ApiErrorBody;

use crate::ratelimit::RateLimitInfo;

/// A boxed error source (reqwest, IO...), kept for `Error::source` chains.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a backend call failed. The API key never appears in any variant.
///
/// Only failures of a backend call live here: the other crates' errors (the store, the
/// tasks) have their own types, and the pipeline's accounting step reports its own failure
/// as [`ClientError::Accounting`] with the cause kept as the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached (DNS, refused, reset, TLS).
    #[error("could not reach {url}: {}", error_chain(source.as_ref()))]
    Connect {
        url: String,
        #[source]
        source: BoxError,
    },

    /// The TLS handshake failed: the server does not speak TLS (a plain-HTTP server addressed
    /// with `https://`) or its certificate was refused. Not transient, so never retried.
    #[error("the TLS handshake with {url} failed: {}", error_chain(source.as_ref()))]
    Tls {
        url: String,
        /// The server answered the handshake with something that is not TLS.
        plain_http: bool,
        #[source]
        source: BoxError,
    },

    /// An attempt ran out of time (what timed out is in the text).
    #[error("timed out: {0}")]
    Timeout(String),

    /// The server answered with an error status, or sent an error object inside a stream
    /// (then `status` is the stream's HTTP status, usually 200).
    #[error("{}", api_message(*status, error.as_ref(), request_id.as_deref(), raw))]
    Api {
        status: u16,
        error: Option<ApiErrorBody>,
        request_id: Option<String>,
        /// The response body as received (truncated to 4 KiB).
        raw: String,
        /// The wait the server asked for (`retry-after-ms` / `Retry-After`), if any.
        retry_after: Option<std::time::Duration>,
        /// The `x-ratelimit-*` headers of the error response, when it had any: a 429 with
        /// capacity left is a fault, not a sign that the caller is going too fast.
        rate_limit: Option<Box<RateLimitInfo>>,
    },

    /// Every attempt failed with a retryable error; `last` is the final one.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        attempts: u32,
        last: Box<ClientError>,
    },

    /// A response body sent nothing for `after`.
    #[error("the response stalled: no data for {}", fmt_duration(*after))]
    StreamStalled { after: Duration },

    /// A body that should be JSON of a known shape was not.
    #[error("could not decode {what}: {source}")]
    Decode {
        what: String,
        /// The offending text (truncated to 4 KiB).
        raw: String,
        #[source]
        source: serde_json::Error,
    },

    /// The stream broke: cut before `[DONE]`, or the body failed to read.
    #[error("stream error: {0}")]
    Stream(String),

    /// The configuration cannot work (bad URL, bad header).
    #[error("invalid client configuration: {0}")]
    InvalidConfig(String),

    /// The local model failed (its own error, hint included).
    #[cfg(feature = "local")]
    #[error("local model: {0}")]
    Local(Box<llmkit_local::LocalError>),

    /// The local embedding model failed.
    #[cfg(feature = "local")]
    #[error("local embedding model: {0}")]
    LocalEmbed(Box<llmkit_local::EmbedError>),

    /// The local backend has no model of the kind the request needs (`chat`, `embedding`).
    #[error("no local {0} model is loaded")]
    NoLocalModel(&'static str),

    /// The local model's worker thread failed (a bug, not bad input).
    #[error("local model worker failed: {0}")]
    LocalWorker(String),

    /// A spending limit would be exceeded: nothing was sent.
    #[error("{period} budget reached: ${spent:.4} spent of the ${limit:.4} limit")]
    BudgetExceeded {
        spent: f64,
        limit: f64,
        /// `invocation` (--max-cost), `daily` or `monthly`.
        period: String,
    },

    /// A spending limit is set and the model has no known price: nothing was sent, since a
    /// cap that prices a request at $0 would never trigger.
    #[error("`{model}` has no known price, so --max-cost and the budgets cannot hold it")]
    Unpriced { model: String },

    /// The pipeline's accounting step (ledger, cache, budgets) failed: nothing was sent.
    #[error("accounting: {source}")]
    Accounting {
        #[source]
        source: BoxError,
    },

    /// A local file to upload or to download into could not be read or written.
    #[error("{what}: {source}")]
    File {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// An argument cannot be sent (an id with a `/` in it...).
    #[error("{0}")]
    InvalidInput(String),

    /// The request cannot go over the API chosen for it (an option the Responses API does
    /// not have, a Responses-only model on a server without the Responses API): nothing
    /// was sent, or the server said it has no such endpoint.
    #[error("{what}")]
    Unsupported {
        what: String,
        hint: String,
        /// True when the request's own options are what cannot be sent (a usage error),
        /// false when the server lacks what the request needs.
        options: bool,
    },

    /// Every upstream of a pool said it has no requests or tokens left (or answered 429)
    /// and none has reset yet: nothing was sent.
    #[error("all {upstreams} upstreams are rate-limited; the first resets in {}", fmt_duration(*retry_after))]
    UpstreamsLimited {
        /// Until the soonest of them resets.
        retry_after: Duration,
        upstreams: usize,
    },

    /// A downloaded file is not the one expected (it was deleted, nothing was installed).
    #[error(
        "checksum mismatch for {url}: expected sha256 {expected}, got {actual}; the file was deleted"
    )]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },

    /// The caller interrupted a call (Ctrl-C); `cancelled` says whether the server
    /// confirmed that it stopped the work.
    #[error("interrupted: {what} was {}", if *cancelled { "cancelled at the server" } else { "left running (the cancel request failed)" })]
    Interrupted { what: String, cancelled: bool },
}

impl ClientError {
    /// A one-line suggestion for the user, when there is a useful one.
    pub fn hint(&self) -> Option<String> {
        let text = match self {
            #[cfg(feature = "local")]
            Self::Local(e) => return e.hint(),
            #[cfg(feature = "local")]
            Self::LocalEmbed(e) => return e.hint(),
            Self::Unpriced { model } => {
                return Some(format!(
                    "set its price in the config file (USD per 1M tokens): `[models.\"{model}\"]` with `input_per_mtok = ...` and `output_per_mtok = ...`; or pass --allow-unpriced to send it without a cap"
                ));
            }
            Self::Unsupported { hint, .. } => return Some(hint.clone()),
            Self::Interrupted {
                cancelled: true, ..
            } => "nothing more is generated or billed for it; run the request again to retry",
            Self::Interrupted { .. } => {
                "it may still finish and be billed: cancel it with POST /v1/responses/ID/cancel"
            }
            Self::NoLocalModel(_) => {
                "run `llmkit models pull` (or scripts/fetch-models.sh), or set an API key"
            }
            Self::Connect { source, .. } if is_tls_root_problem(source.as_ref()) => {
                "no usable CA certificates were found: install the system CA bundle (ca-certificates)"
            }
            Self::Connect { .. } => {
                "check the base URL (`llmkit config show`) and that the server is running"
            }
            Self::Tls {
                url, plain_http, ..
            } => return Some(tls_hint(url, *plain_http)),
            Self::UpstreamsLimited { .. } => {
                "the upstreams' own rate limits are used up: wait for Retry-After, or add an upstream to the route"
            }
            Self::Timeout(_) => "the server is slow or unreachable: try again or raise --timeout",
            Self::RetriesExhausted { last, .. } => {
                // A 5xx's own hint ("the server failed: try again later") says it again.
                let generic = matches!(
                    **last,
                    Self::Api {
                        status: 500..=599,
                        ..
                    }
                );
                let inner = last
                    .hint()
                    .filter(|_| !generic)
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                return Some(format!(
                    "the server kept failing: try again later or raise --max-retries{inner}"
                ));
            }
            Self::StreamStalled { .. } => {
                "the server stopped sending: raise --stall-timeout or try again"
            }
            Self::InvalidConfig(_) => "check `llmkit config list` and the command-line flags",
            Self::Api { .. } => return self.api_hint(),
            Self::BudgetExceeded { period, .. } if period == "invocation" => {
                "raise --max-cost, or drop it to use only the configured budgets"
            }
            Self::BudgetExceeded { .. } => {
                "wait for the next period, or raise budget_daily_usd / budget_monthly_usd (`llmkit config set`); `llmkit usage` shows the spend"
            }
            Self::File { .. } => "check the path, its permissions and the free disk space",
            Self::InvalidInput(_) => {
                "ids look like `file-abc123`, `batch_abc123` or `ftjob-abc123`"
            }
            Self::ChecksumMismatch { .. } => {
                "the download was cut or altered, or the server (HF_ENDPOINT) serves another file: run the command again"
            }
            Self::Decode { .. }
            | Self::Stream(_)
            | Self::LocalWorker(_)
            | Self::Accounting { .. } => return None,
        };
        Some(text.to_string())
    }

    /// The wait the server asked for before a retry (from the last attempt).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            Self::UpstreamsLimited { retry_after, .. } => Some(*retry_after),
            Self::RetriesExhausted { last, .. } => last.retry_after(),
            _ => None,
        }
    }

    /// The `x-ratelimit-*` headers of an error response (of the last attempt for
    /// `RetriesExhausted`), when the server sent any.
    pub fn rate_limit(&self) -> Option<&RateLimitInfo> {
        match self {
            Self::Api { rate_limit, .. } => rate_limit.as_deref(),
            Self::RetriesExhausted { last, .. } => last.rate_limit(),
            _ => None,
        }
    }

    /// The HTTP status of the failure (of the last attempt for `RetriesExhausted`).
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::UpstreamsLimited { .. } => Some(429),
            Self::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The server's `x-request-id`, for support requests.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api { request_id, .. } => request_id.as_deref(),
            Self::RetriesExhausted { last, .. } => last.request_id(),
            _ => None,
        }
    }

    /// The OpenAI error body, when the server sent one.
    pub fn api_error(&self) -> Option<&ApiErrorBody> {
        match self {
            Self::Api { error, .. } => error.as_ref(),
            Self::RetriesExhausted { last, .. } => last.api_error(),
            _ => None,
        }
    }

    /// The error `code` (`"model_not_found"`, `"insufficient_quota"`...).
    pub fn code(&self) -> Option<String> {
        self.api_error().and_then(ApiErrorBody::code_str)
    }

    /// The prompt (plus `max_tokens`) did not fit the model's context window.
    pub fn is_context_length_exceeded(&self) -> bool {
        if self.code().as_deref() == Some("context_length_exceeded") {
            return true;
        }
        let Some(body) = self.api_error() else {
            return false;
        };
        let msg = body.message.to_ascii_lowercase();
        msg.contains("maximum context length") || msg.contains("context length exceeded")
    }

    /// The model does not exist or this key may not use it.
    pub fn is_model_not_found(&self) -> bool {
        if self.code().as_deref() == Some("model_not_found") {
            return true;
        }
        let Some(body) = self.api_error() else {
            return false;
        };
        let msg = body.message.to_ascii_lowercase();
        self.status() == Some(404) && msg.contains("model") && msg.contains("not exist")
    }

    /// The account is out of credit (429 `insufficient_quota`): retrying cannot help.
    pub fn is_insufficient_quota(&self) -> bool {
        self.code().as_deref() == Some("insufficient_quota")
            || self.api_error().and_then(|b| b.kind.as_deref()) == Some("insufficient_quota")
    }

    /// Whether another attempt might succeed (the rule the retry loop applies, without the
    /// server's `x-should-retry` header, which only the loop sees).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { source, .. } => !is_tls_root_problem(source.as_ref()),
            Self::Timeout(_) | Self::StreamStalled { .. } | Self::Stream(_) => true,
            Self::Decode { .. } => true,
            Self::Api { status, error, .. } => {
                if self.is_insufficient_quota() {
                    return false;
                }
                if *status < 400 {
                    // An error event inside a 200 stream: retry only server-side failures.
                    let kind = error.as_ref().and_then(|b| b.kind.as_deref());
                    return matches!(kind, Some("server_error" | "overloaded_error"));
                }
                crate::retry::status_is_retryable(*status)
            }
            Self::RetriesExhausted { .. }
            | Self::Tls { .. }
            | Self::InvalidConfig(_)
            | Self::BudgetExceeded { .. }
            | Self::Accounting { .. }
            | Self::Unpriced { .. }
            | Self::File { .. }
            | Self::InvalidInput(_)
            | Self::Unsupported { .. }
            | Self::ChecksumMismatch { .. }
            | Self::Interrupted { .. }
            | Self::UpstreamsLimited { .. }
            | Self::NoLocalModel(_)
            | Self::LocalWorker(_) => false,
            #[cfg(feature = "local")]
            Self::Local(_) | Self::LocalEmbed(_) => false,
        }
    }

    fn api_hint(&self) -> Option<String> {
        let text = if self.is_insufficient_quota() {
            "the account has no credit left: check billing at the provider's dashboard"
        } else if self.is_context_length_exceeded() {
            "shorten the input (or lower --max-tokens), or use a model with a bigger context window"
        } else if self.is_model_not_found() {
            "`llmkit models` lists the models this server offers"
        } else {
            match self.status()? {
                401 => "check OPENAI_API_KEY or run `llmkit config set api_key`",
                403 => {
                    "this key may not use this model or endpoint: check the key's project and permissions"
                }
                404 => {
                    "check the base URL (it usually ends in /v1) and the model name (`llmkit models`)"
                }
                429 => "rate limited: slow down (--concurrency) or try again later",
                500..=599 => "the server failed: try again later",
                _ => return None,
            }
        };
        Some(text.to_string())
    }
}

/// Limits a body kept inside an error to 4 KiB, cut at a character boundary.
pub(crate) fn truncate_raw(raw: &str) -> String {
    const MAX: usize = 4096;
    if raw.len() <= MAX {
        return raw.to_string();
    }
    let mut end = MAX;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &raw[..end])
}

/// `1.5s`, `250ms`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn api_message(
    status: u16,
    error: Option<&ApiErrorBody>,
    request_id: Option<&str>,
    raw: &str,
) -> String {
    let mut out = format!("API error {status}");
    match error {
        Some(body) => {
            if let Some(code) = body.code_str().or_else(|| body.kind.clone()) {
                out.push_str(&format!(" ({code})"));
            }
            if !body.message.is_empty() {
                out.push_str(&format!(": {}", body.message));
            }
        }
        None if !raw.trim().is_empty() => {
            let snippet: String = raw.trim().chars().take(200).collect();
            out.push_str(&format!(": {snippet}"));
        }
        None => {}
    }
    if let Some(id) = request_id {
        out.push_str(&format!(" [request id {id}]"));
    }
    out
}

/// The error and its causes joined with ": ", since reqwest's own message alone is vague.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// What to do about a failed TLS handshake with `url`: for a server that does not speak TLS,
/// the same address over `http://`.
fn tls_hint(url: &str, plain_http: bool) -> String {
    let origin = url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_string();
            Some(match u.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_else(|| url.to_string());
    if plain_http {
        format!(
            "the server at https://{origin} does not speak TLS; if it is a plain-HTTP server, \
             use http://{origin} in the base URL"
        )
    } else {
        format!(
            "the TLS handshake with {origin} was refused: check that the base URL names the \
             server's host (its certificate must match) and that the system CA bundle is installed"
        )
    }
}

fn is_tls_root_problem(e: &(dyn std::error::Error + 'static)) -> bool {
    error_chain(e).contains("No CA certificates")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn api(status: u16, body: serde_json::Value) -> ClientError {
        let raw = body.to_string();
        ClientError::Api {
            status,
            error: llmkit_types::ErrorResponse::parse_lenient(raw.as_bytes()),
            request_id: Some("req_123".into()),
            raw,
            retry_after: None,
            rate_limit: None,
        }
    }

    #[test]
    fn classifies_openai_errors() {
        let e = api(
            400,
            json!({"error": {"message": "This model's maximum context length is 4096 tokens.", "type": "invalid_request_error", "code": "context_length_exceeded"}}),
        );
        assert!(e.is_context_length_exceeded() && !e.is_retryable());
        assert!(e.hint().unwrap().contains("shorten"));
        assert!(e.to_string().contains("req_123"));

        let e = api(
            404,
            json!({"error": {"message": "The model `nope` does not exist", "code": "model_not_found"}}),
        );
        assert!(e.is_model_not_found());
        assert!(e.hint().unwrap().contains("llmkit models"));

        let e = api(
            429,
            json!({"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
        );
        assert!(!e.is_retryable());
        assert!(e.hint().unwrap().contains("billing"));

        let e = api(
            429,
            json!({"error": {"message": "slow down", "code": "rate_limit_exceeded"}}),
        );
        assert!(e.is_retryable());

        let e = api(401, json!({"error": {"message": "bad key"}}));
        assert!(e.hint().unwrap().contains("OPENAI_API_KEY"));
    }

    #[test]
    fn retries_exhausted_delegates_to_last() {
        let e = ClientError::RetriesExhausted {
            attempts: 3,
            last: Box::new(api(503, json!({"error": {"message": "overloaded"}}))),
        };
        assert_eq!(e.status(), Some(503));
        assert_eq!(e.request_id(), Some("req_123"));
        assert!(e.hint().unwrap().contains("--max-retries"));
        assert!(!e.is_retryable());
    }

    #[test]
    fn truncates_at_char_boundary() {
        let s = "é".repeat(3000);
        let t = truncate_raw(&s);
        assert!(t.len() <= 4096 + '…'.len_utf8());
    }
}
