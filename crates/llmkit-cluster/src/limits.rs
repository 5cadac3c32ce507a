//! Request, token and concurrency limits shared by every replica, in Redis.
//!
//! Requests and tokens are counted in one-second buckets of a 60-second sliding window (a
//! Redis hash per scope keyed by the second), so that any minute holds at most the limit
//! whichever replicas served it; a token bucket would let a full burst plus a minute's
//! refill through in the first minute. Concurrency is a sorted set of leases that expire,
//! so a replica that dies mid-request frees its slots. One Lua script checks and charges
//! all three at once on Redis's own clock (`TIME`), so the check is atomic across replicas
//! and no replica's clock skew matters.

use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::error::ClusterError;
use crate::redis_conn;

/// One scope's limits; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_concurrent: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.max_concurrent.is_none()
    }
}

/// Why a request was refused, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `rpm`, `tpm` or `concurrency`.
    pub kind: &'static str,
    /// When a retry may succeed (the oldest counted second leaving the window).
    pub retry_after: Duration,
    /// The request alone needs more tokens than the limit allows per minute: no retry helps.
    pub oversize: bool,
    pub limit: u64,
}

/// The outcome of [`RedisLimits::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitDecision {
    Allowed {
        /// The second the request was counted in (for [`RedisLimits::refund_tokens`]).
        bucket: i64,
        /// The concurrency lease to release when the request ends.
        lease: Option<String>,
        /// Left in the current window after this request (`x-ratelimit-remaining-*`).
        remaining_requests: Option<u64>,
        remaining_tokens: Option<u64>,
    },
    Refused(Refusal),
}

/// KEYS: requests hash, tokens hash, leases sorted set.
/// ARGV: rpm, tpm, max concurrent (0: none), tokens, lease id, lease ttl ms.
/// Returns {0, bucket, remaining requests (-1: none), remaining tokens (-1: none)} or
/// {kind (1 rpm, 2 tpm, 3 concurrency), retry after ms, oversize (0/1)}.
const ADMIT: &str = r"
local t = redis.call('TIME')
local sec = tonumber(t[1])
local now_ms = sec * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm, maxc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local function window(key)
  local total, oldest = 0, nil
  local vals = redis.call('HGETALL', key)
  for i = 1, #vals, 2 do
    local s = tonumber(vals[i])
    if s <= sec - 60 then
      redis.call('HDEL', key, vals[i])
    else
      local n = tonumber(vals[i + 1])
      total = total + n
      if n > 0 and (oldest == nil or s < oldest) then oldest = s end
    end
  end
  return total, oldest
end
local function wait_ms(oldest)
  if oldest == nil then return 1000 end
  return math.max((oldest + 60 - sec) * 1000 - (now_ms % 1000), 1)
end
local req_used, req_oldest = 0, nil
if rpm > 0 then
  req_used, req_oldest = window(KEYS[1])
  if req_used + 1 > rpm then return {1, wait_ms(req_oldest), 0} end
end
local tok_used, tok_oldest = 0, nil
if tpm > 0 then
  if tokens > tpm then return {2, 60000, 1} end
  tok_used, tok_oldest = window(KEYS[2])
  if tok_used + tokens > tpm then return {2, wait_ms(tok_oldest), 0} end
end
if maxc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms)
  if redis.call('ZCARD', KEYS[3]) >= maxc then return {3, 250, 0} end
  redis.call('ZADD', KEYS[3], now_ms + tonumber(ARGV[6]), ARGV[5])
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[6]) + 60000)
end
local rem_req, rem_tok = -1, -1
if rpm > 0 then
  redis.call('HINCRBY', KEYS[1], sec, 1)
  redis.call('EXPIRE', KEYS[1], 120)
  rem_req = rpm - req_used - 1
end
if tpm > 0 then
  redis.call('HINCRBY', KEYS[2], sec, tokens)
  redis.call('EXPIRE', KEYS[2], 120)
  rem_tok = tpm - tok_used - tokens
end
return {0, sec, rem_req, rem_tok}
";

/// KEYS: tokens hash. ARGV: bucket, tokens to give back. Only while the bucket counts.
const REFUND: &str = r"
local left = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if left <= 0 then return 0 end
local back = math.min(left, tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[1], ARGV[1], -back)
return back
";

/// The limiter over one Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisLimits {
    conn: ConnectionManager,
    admit: redis::Script,
    refund: redis::Script,
    /// A lease outlives a request only when its replica dies; then it frees the slot.
    lease_ttl: Duration,
}

impl std::fmt::Debug for RedisLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimits").finish_non_exhaustive()
    }
}

fn keys(scope: &str) -> [String; 3] {
    [
        format!("llmkit:rl:{{{scope}}}:req"),
        format!("llmkit:rl:{{{scope}}}:tok"),
        format!("llmkit:rl:{{{scope}}}:conc"),
    ]
}

impl RedisLimits {
    /// Connects to `url` with `timeout` for connecting and for each answer.
    pub async fn connect(
        url: &str,
        timeout: Duration,
        lease_ttl: Duration,
    ) -> Result<Self, ClusterError> {
        let client = redis_conn::client(url)?;
        Ok(Self {
            conn: redis_conn::manager(&client, timeout).await?,
            admit: redis::Script::new(ADMIT),
            refund: redis::Script::new(REFUND),
            lease_ttl,
        })
    }

    /// Checks and charges one request of `tokens` (its reservation: prompt plus
    /// `max_tokens`) against `scope`'s limits. `lease_id` names its concurrency slot.
    pub async fn admit(
        &self,
        scope: &str,
        limits: &Limits,
        tokens: u64,
        lease_id: &str,
    ) -> Result<LimitDecision, ClusterError> {
        if limits.is_empty() {
            return Ok(LimitDecision::Allowed {
                bucket: 0,
                lease: None,
                remaining_requests: None,
                remaining_tokens: None,
            });
        }
        let [k1, k2, k3] = keys(scope);
        let mut conn = self.conn.clone();
        let ttl_ms = u64::try_from(self.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        let out: Vec<i64> = self
            .admit
            .key(k1)
            .key(k2)
            .key(k3)
            .arg(limits.rpm.unwrap_or(0))
            .arg(limits.tpm.unwrap_or(0))
            .arg(limits.max_concurrent.unwrap_or(0))
            .arg(tokens)
            .arg(lease_id)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(ClusterError::from_redis)?;
        let get = |i: usize| out.get(i).copied().unwrap_or(0);
        let opt = |v: i64| u64::try_from(v).ok();
        Ok(match get(0) {
            0 => LimitDecision::Allowed {
                bucket: get(1),
                lease: limits.max_concurrent.map(|_| lease_id.to_string()),
                remaining_requests: opt(get(2)),
                remaining_tokens: opt(get(3)),
            },
            kind => {
                let (name, limit) = match kind {
                    1 => ("rpm", limits.rpm),
                    2 => ("tpm", limits.tpm),
                    _ => ("concurrency", limits.max_concurrent),
                };
                LimitDecision::Refused(Refusal {
                    kind: name,
                    retry_after: Duration::from_millis(u64::try_from(get(1)).unwrap_or(1000)),
                    oversize: get(2) == 1,
                    limit: limit.unwrap_or(0),
                })
            }
        })
    }

    /// Gives back tokens charged at `bucket` that the request did not use (the estimate
    /// minus the real usage). Returns how many were given back (0 once the second has
    /// left the window).
    pub async fn refund_tokens(
        &self,
        scope: &str,
        bucket: i64,
        tokens: u64,
    ) -> Result<u64, ClusterError> {
        if tokens == 0 {
            return Ok(0);
        }
        let [_, k2, _] = keys(scope);
        let mut conn = self.conn.clone();
        let back: i64 = self
            .refund
            .key(k2)
            .arg(bucket)
            .arg(tokens)
            .invoke_async(&mut conn)
            .await
            .map_err(ClusterError::from_redis)?;
        Ok(u64::try_from(back).unwrap_or(0))
    }

    /// Frees a concurrency slot.
    pub async fn release(&self, scope: &str, lease: &str) -> Result<(), ClusterError> {
        let [_, _, k3] = keys(scope);
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(k3)
            .arg(lease)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(ClusterError::from_redis)?;
        Ok(())
    }

    /// Whether Redis answers (`/readyz`).
    pub async fn ping(&self) -> Result<(), ClusterError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(ClusterError::from_redis)?;
        Ok(())
    }
}
