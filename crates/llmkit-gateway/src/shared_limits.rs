//! `RedisLimiter`: per-key RPM, TPM and concurrency limits shared by every replica, through
//! `llmkit-cluster`'s Lua script in Redis, with the degraded mode the operator chose for
//! when Redis cannot be reached: refuse (fail closed) or fall back to in-process limits
//! divided by the number of replicas.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use llmkit_cluster::{LimitDecision, Limits, RedisLimits};
use rand::RngCore;
use tokio::runtime::Handle;

use crate::limits::{Decision, KeyLimits, LimitKind, Limiter, LocalLimiter, Snapshot, Window};

/// What the limits do while Redis is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitsFallback {
    /// Refuse limited keys' requests (429, retry after a second): no key can pass its limit.
    #[default]
    FailClosed,
    /// Enforce each limit divided by `replicas` in each replica's own memory: together the
    /// replicas stay near the limit, and nothing is refused for want of Redis.
    PerReplica { replicas: u32 },
}

/// Where an admitted request's hold lives, for its settle and release.
#[derive(Debug, Clone)]
enum Hold {
    /// In Redis: the second it was counted in, and its concurrency lease.
    Shared { bucket: i64, lease: Option<String> },
    /// In the fallback limiter (Redis was down when it was admitted).
    Local,
}

pub(crate) struct RedisLimiter {
    redis: RedisLimits,
    handle: Handle,
    fallback: LocalLimiter,
    mode: LimitsFallback,
    /// Per key, the holds of admitted requests not yet settled / not yet released, oldest
    /// first. A key's holds are interchangeable: any of its leases frees one slot, and a
    /// refund goes to a second that still counts.
    unsettled: Mutex<HashMap<String, VecDeque<Hold>>>,
    unreleased: Mutex<HashMap<String, VecDeque<Hold>>>,
}

impl RedisLimiter {
    pub(crate) fn new(redis: RedisLimits, mode: LimitsFallback) -> Self {
        Self {
            redis,
            handle: Handle::current(),
            fallback: LocalLimiter::new(),
            mode,
            unsettled: Mutex::new(HashMap::new()),
            unreleased: Mutex::new(HashMap::new()),
        }
    }

    fn push(&self, key: &str, hold: Hold) {
        for map in [&self.unsettled, &self.unreleased] {
            map.lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key.to_string())
                .or_default()
                .push_back(hold.clone());
        }
    }

    fn pop(map: &Mutex<HashMap<String, VecDeque<Hold>>>, key: &str) -> Option<Hold> {
        let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
        let q = m.get_mut(key)?;
        let hold = q.pop_front();
        if q.is_empty() {
            m.remove(key);
        }
        hold
    }

    fn divided(&self, limits: KeyLimits) -> KeyLimits {
        let LimitsFallback::PerReplica { replicas } = self.mode else {
            return limits;
        };
        let div = |v: Option<u32>| v.map(|x| (x / replicas.max(1)).max(1));
        KeyLimits {
            rpm: div(limits.rpm),
            tpm: div(limits.tpm),
            max_concurrent: div(limits.max_concurrent),
        }
    }
}

fn lease_id() -> String {
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Limiter for RedisLimiter {
    fn admit<'a>(
        &'a self,
        key: &'a str,
        limits: KeyLimits,
        tokens: u64,
    ) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let shared = Limits {
                rpm: limits.rpm.map(u64::from),
                tpm: limits.tpm.map(u64::from),
                max_concurrent: limits.max_concurrent.map(u64::from),
            };
            match self.redis.admit(key, &shared, tokens, &lease_id()).await {
                Ok(LimitDecision::Allowed {
                    bucket,
                    lease,
                    remaining_requests,
                    remaining_tokens,
                }) => {
                    self.push(key, Hold::Shared { bucket, lease });
                    // A sliding minute: a full window is back within 60 s at the latest.
                    let window = |limit: Option<u32>, remaining: Option<u64>| {
                        limit.map(|l| Window {
                            limit: u64::from(l),
                            remaining: remaining.unwrap_or(0),
                            reset: Duration::from_secs(60),
                        })
                    };
                    Decision::Admitted(Snapshot {
                        requests: window(limits.rpm, remaining_requests),
                        tokens: window(limits.tpm, remaining_tokens),
                    })
                }
                Ok(LimitDecision::Refused(r)) => Decision::Refused {
                    kind: match r.kind {
                        "rpm" => LimitKind::Requests,
                        "tpm" => LimitKind::Tokens,
                        _ => LimitKind::Concurrency,
                    },
                    retry_after: r.retry_after,
                    fits: !r.oversize,
                    snapshot: Snapshot::default(),
                },
                Err(_) => match self.mode {
                    LimitsFallback::FailClosed => Decision::Refused {
                        kind: LimitKind::Requests,
                        retry_after: Duration::from_secs(1),
                        fits: true,
                        snapshot: Snapshot::default(),
                    },
                    LimitsFallback::PerReplica { .. } => {
                        let d = self.fallback.admit(key, self.divided(limits), tokens).await;
                        if matches!(d, Decision::Admitted(_)) {
                            self.push(key, Hold::Local);
                        }
                        d
                    }
                },
            }
        })
    }

    fn settle(&self, key: &str, limits: KeyLimits, estimated: u64, used: u64) {
        match Self::pop(&self.unsettled, key) {
            Some(Hold::Local) => self
                .fallback
                .settle(key, self.divided(limits), estimated, used),
            Some(Hold::Shared { bucket, .. }) if used < estimated && limits.tpm.is_some() => {
                let redis = self.redis.clone();
                let key = key.to_string();
                // Off the request path; a lost refund only makes the window stricter.
                self.handle.spawn(async move {
                    let _ = redis.refund_tokens(&key, bucket, estimated - used).await;
                });
            }
            _ => {}
        }
    }

    fn release(&self, key: &str, limits: KeyLimits) {
        match Self::pop(&self.unreleased, key) {
            Some(Hold::Local) => self.fallback.release(key, self.divided(limits)),
            Some(Hold::Shared {
                lease: Some(lease), ..
            }) => {
                let redis = self.redis.clone();
                let key = key.to_string();
                // A lost release frees the slot when its lease expires.
                self.handle.spawn(async move {
                    let _ = redis.release(&key, &lease).await;
                });
            }
            _ => {}
        }
    }
}
