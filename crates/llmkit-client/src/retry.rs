//! Which failures are retried and how long to wait: status rules, `x-should-retry`, `Retry-After`, jittered backoff.
//!
//! The rules follow OpenAI's own SDKs:
//! - connect errors, timeouts, stalls, truncated or undecodable bodies, and the statuses 408,
//!   409, 429 and 5xx are retried;
//! - 400, 401, 403, 404 and 422, and a 429 whose code is `insufficient_quota`, never are;
//!   nor is a 500 or 501 whose body names a parameter some compatible servers lack
//!   (`response_format`, `stream_options`, `tools`): that server refuses the feature
//!   (`answer.rs`, `capabilities.rs`);
//! - for any other status, `x-should-retry: true|false` from the server decides;
//! - a server-given delay (`retry-after-ms`, then `Retry-After` in seconds or as an HTTP
//!   date) is used when it lies in `0..=60 s`; a longer one is ignored in favour of our own
//!   backoff, because a CLI that sleeps for minutes looks hung (the caller sees the 429 and
//!   can decide);
//! - otherwise the delay is `initial * 2^n`, capped at `max`, times a jitter in `[0.75, 1]`.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use crate::config::RetryPolicy;

/// The longest server-requested delay we honour.
pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(60);

/// What the retry loop should do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    No,
    /// Retry, after the server's delay if it gave a usable one.
    Yes {
        server_delay: Option<Duration>,
    },
}

/// The retry rule for an error status (without headers).
pub(crate) fn status_is_retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// Decides about a non-2xx response from its status, headers and error code.
pub(crate) fn decide_status(status: u16, headers: &HeaderMap, insufficient_quota: bool) -> Retry {
    if insufficient_quota || matches!(status, 400 | 401 | 403 | 404 | 422) {
        return Retry::No;
    }
    let retry = match should_retry_header(headers) {
        Some(v) => v,
        None => status_is_retryable(status),
    };
    if retry {
        Retry::Yes {
            server_delay: server_delay(headers, SystemTime::now()),
        }
    } else {
        Retry::No
    }
}

/// The `x-should-retry` header, when present and valid.
pub(crate) fn should_retry_header(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry")?.to_str().ok()?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The delay the server asked for, if it is in `0..=60 s`.
pub(crate) fn server_delay(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let delay =
        if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
            secs_to_duration(ms / 1000.0)
        } else {
            let v = header("retry-after")?.trim();
            match v.parse::<f64>() {
                Ok(secs) => secs_to_duration(secs),
                Err(_) => {
                    let at = httpdate::parse_http_date(v).ok()?;
                    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
                }
            }
        }?;
    (delay <= MAX_SERVER_DELAY).then_some(delay)
}

/// Our own delay before retry number `retry` (0 for the first retry).
pub(crate) fn backoff(policy: &RetryPolicy, retry: u32) -> Duration {
    let factor = 2f64.powi(i32::try_from(retry.min(30)).unwrap_or(30));
    let base =
        (policy.initial_backoff.as_secs_f64() * factor).min(policy.max_backoff.as_secs_f64());
    let jitter: f64 = rand::random_range(0.75..=1.0);
    Duration::from_secs_f64(base * jitter)
}

/// The delay before retry number `retry`: the server's when it gave one, else ours.
pub(crate) fn delay_for(
    policy: &RetryPolicy,
    retry: u32,
    server_delay: Option<Duration>,
) -> Duration {
    server_delay.unwrap_or_else(|| backoff(policy, retry))
}

fn secs_to_duration(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn status_rules() {
        let none = HeaderMap::new();
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(
                matches!(decide_status(s, &none, false), Retry::Yes { .. }),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 422, 418] {
            assert_eq!(decide_status(s, &none, false), Retry::No, "{s}");
        }
        assert_eq!(decide_status(429, &none, true), Retry::No);
        let yes = headers(&[("x-should-retry", "true")]);
        let no = headers(&[("x-should-retry", "false")]);
        assert!(matches!(decide_status(418, &yes, false), Retry::Yes { .. }));
        assert_eq!(decide_status(503, &no, false), Retry::No);
        assert_eq!(decide_status(401, &yes, false), Retry::No);
    }

    #[test]
    fn server_delays() {
        let now = SystemTime::now();
        let h = headers(&[("retry-after-ms", "250"), ("retry-after", "5")]);
        assert_eq!(server_delay(&h, now), Some(Duration::from_millis(250)));
        let h = headers(&[("retry-after", "2")]);
        assert_eq!(server_delay(&h, now), Some(Duration::from_secs(2)));
        let h = headers(&[("retry-after", "120")]);
        assert_eq!(server_delay(&h, now), None);
        let at = httpdate::fmt_http_date(now + Duration::from_secs(10));
        let h = headers(&[("retry-after", &at)]);
        let d = server_delay(&h, now).unwrap();
        assert!(
            d <= Duration::from_secs(10) && d >= Duration::from_secs(9),
            "{d:?}"
        );
        let h = headers(&[("retry-after", "soon")]);
        assert_eq!(server_delay(&h, now), None);
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let p = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        };
        for _ in 0..100 {
            let d0 = backoff(&p, 0);
            assert!(d0 >= Duration::from_millis(375) && d0 <= Duration::from_millis(500));
            let d2 = backoff(&p, 2);
            assert!(d2 >= Duration::from_millis(1500) && d2 <= Duration::from_secs(2));
            let d9 = backoff(&p, 9);
            assert!(d9 >= Duration::from_secs(6) && d9 <= Duration::from_secs(8));
        }
        assert!(backoff(&p, u32::MAX) <= Duration::from_secs(8));
    }
}
