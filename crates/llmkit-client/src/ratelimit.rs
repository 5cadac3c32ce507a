//! Parses OpenAI's `x-ratelimit-*` response headers, including durations such as `6m0s` or `1m30.5s`.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// The rate-limit state a server reported with a response (all `None` when it sent none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    pub limit_requests: Option<u64>,
    pub limit_tokens: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    /// Time until the request budget is full again.
    pub reset_requests: Option<Duration>,
    /// Time until the token budget is full again.
    pub reset_tokens: Option<Duration>,
}

impl RateLimitInfo {
    /// Reads the `x-ratelimit-*` headers; absent or malformed ones stay `None`.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let num = |name: &str| text(name).and_then(|v| v.trim().parse::<u64>().ok());
        let dur = |name: &str| text(name).and_then(parse_duration);
        Self {
            limit_requests: num("x-ratelimit-limit-requests"),
            limit_tokens: num("x-ratelimit-limit-tokens"),
            remaining_requests: num("x-ratelimit-remaining-requests"),
            remaining_tokens: num("x-ratelimit-remaining-tokens"),
            reset_requests: dur("x-ratelimit-reset-requests"),
            reset_tokens: dur("x-ratelimit-reset-tokens"),
        }
    }

    /// Whether the server sent any rate-limit header.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Parses a Go-style duration as OpenAI sends it: `1s`, `6m0s`, `20ms`, `1m30.5s`, `2h`,
/// `150us`; a bare number is taken as seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    total.is_finite().then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn parses_openai_durations() {
        let cases = [
            ("1s", 1000),
            ("6m0s", 360_000),
            ("20ms", 20),
            ("1m30.5s", 90_500),
            ("2h", 7_200_000),
            ("0s", 0),
            ("1h2m3s", 3_723_000),
            ("0.5", 500),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_millis(ms)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("150us"), Some(Duration::from_micros(150)));
        for bad in ["", "s", "5x", "1m-3s", "abc"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_headers() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-ratelimit-limit-requests", "500"),
            ("x-ratelimit-limit-tokens", "30000"),
            ("x-ratelimit-remaining-requests", "499"),
            ("x-ratelimit-remaining-tokens", "29000"),
            ("x-ratelimit-reset-requests", "120ms"),
            ("x-ratelimit-reset-tokens", "1m30.5s"),
        ] {
            h.insert(k, HeaderValue::from_static(v));
        }
        let info = RateLimitInfo::from_headers(&h);
        assert_eq!(info.limit_requests, Some(500));
        assert_eq!(info.remaining_tokens, Some(29000));
        assert_eq!(info.reset_requests, Some(Duration::from_millis(120)));
        assert_eq!(info.reset_tokens, Some(Duration::from_millis(90_500)));
        assert!(RateLimitInfo::from_headers(&HeaderMap::new()).is_empty());
    }
}
