//! Per-minute request and token limits as continuously refilled buckets, with OpenAI's
//! `x-ratelimit-*` headers and 429 answers.

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::errors::ApiError;

/// A bucket of `capacity` that refills completely in one minute, continuously.
#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    level: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_minute: u32, now: Instant) -> Self {
        Self {
            capacity: f64::from(per_minute),
            level: f64::from(per_minute),
            last: now,
        }
    }

    fn per_sec(&self) -> f64 {
        self.capacity / 60.0
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + elapsed * self.per_sec()).min(self.capacity);
        self.last = now;
    }

    /// Time until `cost` is available (zero when it already is).
    fn wait_for(&self, cost: f64) -> Duration {
        if self.level >= cost || self.per_sec() <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((cost.min(self.capacity) - self.level) / self.per_sec())
    }

    /// Time until the bucket is full again (OpenAI's `x-ratelimit-reset-*`).
    fn until_full(&self) -> Duration {
        self.wait_for(self.capacity)
    }

    fn used(&self) -> u64 {
        (self.capacity - self.level).round().max(0.0) as u64
    }
}

/// The RPM and TPM buckets of one server.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

impl RateLimiter {
    pub(crate) fn new(rpm: Option<u32>, tpm: Option<u32>) -> Self {
        let now = Instant::now();
        Self {
            requests: rpm.map(|r| Bucket::new(r, now)),
            tokens: tpm.map(|t| Bucket::new(t, now)),
        }
    }

    /// Charges one request of `cost` tokens, or explains (as a 429) why it cannot be served yet.
    pub(crate) fn admit(&mut self, model: &str, cost: u64, now: Instant) -> Result<(), ApiError> {
        self.refill(now);
        if let Some(b) = &self.requests
            && b.level < 1.0
        {
            return Err(self.too_many(model, "requests", "RPM", 1, b.wait_for(1.0)));
        }
        if let Some(b) = &self.tokens {
            let cost = cost as f64;
            if b.level < cost {
                return Err(self.too_many(model, "tokens", "TPM", cost as u64, b.wait_for(cost)));
            }
        }
        if let Some(b) = &mut self.requests {
            b.level -= 1.0;
        }
        if let Some(b) = &mut self.tokens {
            b.level -= cost as f64;
        }
        Ok(())
    }

    /// Gives back what [`admit`](Self::admit) charged for a request that then failed before
    /// it reached the model.
    pub(crate) fn refund(&mut self, cost: u64, now: Instant) {
        self.refill(now);
        if let Some(b) = &mut self.requests {
            b.level = (b.level + 1.0).min(b.capacity);
        }
        if let Some(b) = &mut self.tokens {
            b.level = (b.level + cost as f64).min(b.capacity);
        }
    }

    /// The `x-ratelimit-*` headers describing the buckets now.
    pub(crate) fn headers(&mut self, now: Instant) -> Vec<(&'static str, String)> {
        self.refill(now);
        let mut out = Vec::new();
        if let Some(b) = &self.requests {
            out.push(("x-ratelimit-limit-requests", format!("{}", b.capacity)));
            out.push((
                "x-ratelimit-remaining-requests",
                format!("{}", b.level.floor()),
            ));
            out.push(("x-ratelimit-reset-requests", go_duration(b.until_full())));
        }
        if let Some(b) = &self.tokens {
            out.push(("x-ratelimit-limit-tokens", format!("{}", b.capacity)));
            out.push((
                "x-ratelimit-remaining-tokens",
                format!("{}", b.level.floor()),
            ));
            out.push(("x-ratelimit-reset-tokens", go_duration(b.until_full())));
        }
        out
    }

    fn refill(&mut self, now: Instant) {
        for b in [&mut self.requests, &mut self.tokens].into_iter().flatten() {
            b.refill(now);
        }
    }

    fn too_many(
        &self,
        model: &str,
        kind: &'static str,
        short: &str,
        requested: u64,
        wait: Duration,
    ) -> ApiError {
        let bucket = if kind == "requests" {
            &self.requests
        } else {
            &self.tokens
        };
        let (limit, used) = bucket
            .as_ref()
            .map_or((0, 0), |b| (b.capacity as u64, b.used()));
        let wait_ms = (wait.as_secs_f64() * 1000.0).ceil().max(1.0) as u64;
        let wait_s = wait_ms.div_ceil(1000).max(1);
        let per = if kind == "requests" {
            "requests"
        } else {
            "tokens"
        };
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            kind,
            format!(
                "Rate limit reached for {model} in organization org-mock on {per} per min \
                 ({short}): Limit {limit}, Used {used}, Requested {requested}. Please try again \
                 in {}.",
                go_duration(Duration::from_millis(wait_ms))
            ),
        )
        .with_code("rate_limit_exceeded")
        .with_header("retry-after", wait_s.to_string())
        .with_header("retry-after-ms", wait_ms.to_string())
    }
}

/// Formats a duration the way OpenAI's headers do (Go's `Duration.String` at millisecond
/// precision): `20ms`, `1s`, `1m30.5s`, `6m0s`, `1h2m3s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, frac) = (rest / 1000, rest % 1000);
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        let f = format!("{frac:03}");
        format!("{s}.{}s", f.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_look_like_openai() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(ms(0)), "0s");
        assert_eq!(go_duration(ms(20)), "20ms");
        assert_eq!(go_duration(ms(1000)), "1s");
        assert_eq!(go_duration(ms(360_000)), "6m0s");
        assert_eq!(go_duration(ms(90_500)), "1m30.5s");
        assert_eq!(go_duration(ms(3_723_000)), "1h2m3s");
        assert_eq!(go_duration(ms(1_250)), "1.25s");
    }

    #[test]
    fn rpm_bucket_refills_continuously() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(Some(60), None);
        for _ in 0..60 {
            rl.admit("m", 0, t0).unwrap();
        }
        let err = rl.admit("m", 0, t0).unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.kind, "requests");
        assert!(
            err.message.contains("Limit 60, Used 60, Requested 1"),
            "{}",
            err.message
        );
        assert!(err.headers.contains(&("retry-after", "1".into())));
        assert!(err.headers.contains(&("retry-after-ms", "1000".into())));
        // One second later, one request's worth has come back.
        rl.admit("m", 0, t0 + Duration::from_secs(1)).unwrap();
        let h = rl.headers(t0 + Duration::from_secs(1));
        assert!(h.contains(&("x-ratelimit-remaining-requests", "0".into())));
        assert!(h.contains(&("x-ratelimit-reset-requests", "1m0s".into())));
    }

    #[test]
    fn a_refund_gives_the_charge_back() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(Some(10), Some(600));
        rl.admit("m", 500, t0).unwrap();
        rl.refund(500, t0);
        let h = rl.headers(t0);
        assert!(h.contains(&("x-ratelimit-remaining-tokens", "600".into())));
        assert!(h.contains(&("x-ratelimit-remaining-requests", "10".into())));
        // Never above the capacity.
        rl.refund(500, t0);
        let h = rl.headers(t0);
        assert!(h.contains(&("x-ratelimit-remaining-tokens", "600".into())));
    }

    #[test]
    fn tpm_bucket_charges_cost() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(None, Some(600));
        rl.admit("m", 500, t0).unwrap();
        let err = rl.admit("m", 200, t0).unwrap_err();
        assert_eq!(err.kind, "tokens");
        assert!(
            err.message
                .contains("(TPM): Limit 600, Used 500, Requested 200")
        );
        assert!(err.headers.contains(&("retry-after", "10".into())));
        let h = rl.headers(t0);
        assert!(h.contains(&("x-ratelimit-remaining-tokens", "100".into())));
        assert!(h.contains(&("x-ratelimit-limit-tokens", "600".into())));
    }
}
