//! Batches concurrent requests on the native engine: each request keeps its own generation
//! loop on its own thread, but their forward steps meet here and run as one batched pass, so
//! the weights are read once for all of them.
//!
//! Whoever finds the engine free runs the next step for everything queued. Before running it
//! waits briefly (at most [`GATHER_WAIT`]) for the other open sessions, which are usually only
//! sampling their previous token, so that steady concurrent decoding batches every step.
//!
//! With a [`KvCache`], a session starts from the cached state sharing the longest prefix with
//! its prompt (copied into its slot) and keeps its own state there after prefill and at the
//! end. A session whose prompt shares at least [`WAIT_FOR_SHARED`] more tokens with a prompt
//! another session is prefilling right now than with the cache waits for that prefill to be
//! kept, so two concurrent requests with one long shared prefix compute it once.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{LocalError, guard};
use crate::generate::Step;
use crate::native::{Entry, KvState, Native};
use crate::prefix_cache::{KvCacheStats, ModelId, PrefixCache, common_prefix};

/// How long a step waits for other open sessions to submit theirs.
const GATHER_WAIT: Duration = Duration::from_millis(1);

/// How many more shared tokens an in-flight prefill must offer than the cache for a new
/// session to wait for it rather than prefill alongside it (batched, a short shared part
/// costs little).
const WAIT_FOR_SHARED: usize = 32;

/// Each loaded engine's key in a (possibly shared) [`KvCache`].
static NEXT_MODEL: AtomicU64 = AtomicU64::new(1);

/// A bounded cache of KV states keyed by token prefix, kept across requests so that a prompt
/// sharing a prefix with an earlier sequence (the next chat turn, a repeated system prompt
/// or task template) prefills only the tokens after it. Cloning shares the cache; pass one
/// clone to several models to put them under one memory cap (states never cross models).
/// Only the native engine uses it.
#[derive(Clone)]
pub struct KvCache {
    inner: Arc<Mutex<PrefixCache<KvState>>>,
}

impl KvCache {
    /// A cache holding at most `max_bytes` of KV state (f16 keys and values plus the token
    /// ids; SmolLM2-135M takes about 23 KB a token). 0 keeps nothing.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(PrefixCache::new(max_bytes))),
        }
    }

    /// Hits, reused tokens, evictions and the memory held so far.
    pub fn stats(&self) -> KvCacheStats {
        self.lock().stats()
    }

    fn lock(&self) -> MutexGuard<'_, PrefixCache<KvState>> {
        // Nothing panics while holding it, and every entry is complete when inserted.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for KvCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvCache")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Counters for observing batching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Forward passes run.
    pub steps: u64,
    /// Forward passes that served more than one request.
    pub batched_steps: u64,
    /// The most requests one forward pass served.
    pub max_batch: usize,
}

pub(crate) struct Batcher {
    state: Mutex<State>,
    wake: Condvar,
    /// The prefix cache and this engine's key in it.
    cache: Option<(KvCache, ModelId)>,
    /// The KV memory one position takes, to skip copying states the cache cannot hold.
    bytes_per_token: usize,
}

struct Pending {
    ticket: u64,
    slot: usize,
    tokens: Vec<u32>,
    pos: usize,
}

struct State {
    /// `None` while a step runs (the runner holds it).
    engine: Option<Box<Native>>,
    pending: Vec<Pending>,
    done: HashMap<u64, Result<Vec<f32>, LocalError>>,
    next_ticket: u64,
    /// Open sessions, and the slots not in use.
    open: usize,
    free_slots: Vec<usize>,
    slots: usize,
    /// Sessions whose tokens the running step is computing.
    running: usize,
    /// The prompts being prefilled, by slot.
    prefilling: HashMap<usize, Vec<u32>>,
    /// Open sessions waiting for another's prefill (they submit no steps meanwhile).
    waiting: usize,
    stats: BatchStats,
}

impl Batcher {
    pub(crate) fn new(engine: Native, cache: Option<KvCache>) -> Self {
        let bytes_per_token = engine.kv_bytes_per_token();
        Self {
            state: Mutex::new(State {
                engine: Some(Box::new(engine)),
                pending: Vec::new(),
                done: HashMap::new(),
                next_ticket: 0,
                open: 0,
                free_slots: Vec::new(),
                slots: 0,
                running: 0,
                prefilling: HashMap::new(),
                waiting: 0,
                stats: BatchStats::default(),
            }),
            wake: Condvar::new(),
            cache: cache.map(|c| (c, NEXT_MODEL.fetch_add(1, Ordering::Relaxed))),
            bytes_per_token,
        }
    }

    /// The prefix cache's counters, when there is one.
    pub(crate) fn cache_stats(&self) -> Option<KvCacheStats> {
        self.cache.as_ref().map(|(c, _)| c.stats())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Steps run outside the lock and panics inside them are caught, so a poisoned lock
        // still holds consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session with its own KV cache slot.
    pub(crate) fn session(&self) -> Session<'_> {
        let mut st = self.lock();
        st.open += 1;
        let slot = match st.free_slots.pop() {
            Some(slot) => slot,
            None => {
                st.slots += 1;
                st.slots - 1
            }
        };
        Session {
            batcher: self,
            slot,
        }
    }

    pub(crate) fn stats(&self) -> BatchStats {
        self.lock().stats
    }

    /// Runs `tokens` at `pos..` in `slot`, batched with whatever other sessions submit.
    fn step(&self, slot: usize, tokens: &[u32], pos: usize) -> Result<Vec<f32>, LocalError> {
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.pending.push(Pending {
            ticket,
            slot,
            tokens: tokens.to_vec(),
            pos,
        });
        self.wake.notify_all();
        let mut gather_until: Option<Instant> = None;
        loop {
            if let Some(result) = st.done.remove(&ticket) {
                return result;
            }
            if st.engine.is_none() {
                st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // The engine is free: gather the other open sessions' steps for a moment.
            let deadline = *gather_until.get_or_insert_with(|| Instant::now() + GATHER_WAIT);
            let now = Instant::now();
            if st.pending.len() + st.waiting < st.open && now < deadline {
                st = self
                    .wake
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            st = self.run_pending(st);
        }
    }

    /// Takes the engine and every pending step, runs them as one batch outside the lock, and
    /// files the results.
    fn run_pending<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let Some(mut engine) = st.engine.take() else {
            return st;
        };
        let batch = std::mem::take(&mut st.pending);
        st.running = batch.len();
        drop(st);
        let entries: Vec<Entry<'_>> = batch
            .iter()
            .map(|p| Entry {
                slot: p.slot,
                tokens: &p.tokens,
                pos: p.pos,
            })
            .collect();
        let results = match guard("running the model", || engine.step(&entries)) {
            Ok(results) => results,
            Err(msg) => entries
                .iter()
                .map(|_| Err(LocalError::Inference(msg.clone())))
                .collect(),
        };
        let mut st = self.lock();
        st.engine = Some(engine);
        st.running = 0;
        st.stats.steps += 1;
        if batch.len() > 1 {
            st.stats.batched_steps += 1;
        }
        st.stats.max_batch = st.stats.max_batch.max(batch.len());
        for (p, r) in batch.iter().zip(results) {
            st.done.insert(p.ticket, r);
        }
        self.wake.notify_all();
        st
    }

    /// Runs `f` on the engine once no step holds it.
    fn with_engine<R>(&self, f: impl FnOnce(&mut Native) -> R) -> Result<R, LocalError> {
        let mut st = self.lock();
        let mut engine = loop {
            if let Some(engine) = st.engine.take() {
                break engine;
            }
            st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        };
        drop(st);
        let result = guard("copying a KV cache", || f(&mut engine));
        let mut st = self.lock();
        st.engine = Some(engine);
        self.wake.notify_all();
        drop(st);
        result.map_err(LocalError::Inference)
    }

    /// Loads into `slot` the cached state sharing the longest prefix with `prompt` (at most
    /// all but its last token, whose logits the caller needs) and returns its length. Waits
    /// first for another session's prefill that shares clearly more.
    fn resume(&self, slot: usize, prompt: &[u32]) -> Result<usize, LocalError> {
        let Some((cache, model)) = &self.cache else {
            return Ok(0);
        };
        let max = prompt.len().saturating_sub(1);
        let mut st = self.lock();
        loop {
            let in_flight = st
                .prefilling
                .iter()
                .filter(|&(&s, _)| s != slot)
                .map(|(_, p)| common_prefix(p, prompt).min(max))
                .max()
                .unwrap_or(0);
            let cached = cache.lock().peek(*model, prompt).min(max);
            if in_flight < cached + WAIT_FOR_SHARED {
                break;
            }
            st.waiting += 1;
            self.wake.notify_all();
            st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            st.waiting -= 1;
        }
        st.prefilling.insert(slot, prompt.to_vec());
        drop(st);
        let Some(hit) = cache.lock().lookup(*model, prompt, max) else {
            return Ok(0);
        };
        self.with_engine(|engine| engine.restore(slot, &hit.value, hit.len))?;
        Ok(hit.len)
    }

    /// Keeps a copy of `slot`'s state after `tokens` (all of them run) in the cache, and
    /// lets sessions waiting for this prefill go on.
    fn keep(&self, slot: usize, tokens: &[u32]) -> Result<(), LocalError> {
        let kept = self.store(slot, tokens);
        let mut st = self.lock();
        if st.prefilling.remove(&slot).is_some() {
            self.wake.notify_all();
        }
        drop(st);
        kept
    }

    fn store(&self, slot: usize, tokens: &[u32]) -> Result<(), LocalError> {
        let Some((cache, model)) = &self.cache else {
            return Ok(());
        };
        let bytes = tokens.len() * (self.bytes_per_token + std::mem::size_of::<u32>());
        {
            let cache = cache.lock();
            if tokens.is_empty() || bytes > cache.stats().max_bytes || cache.covers(*model, tokens)
            {
                return Ok(());
            }
        }
        if let Some(state) = self.with_engine(|engine| engine.snapshot(slot, tokens.len()))? {
            let bytes = state.bytes() + std::mem::size_of_val(tokens);
            cache.lock().insert(*model, tokens, state, bytes);
        }
        Ok(())
    }

    fn close(&self, slot: usize) {
        let mut st = self.lock();
        st.prefilling.remove(&slot);
        st.open = st.open.saturating_sub(1);
        // The slot's cache is emptied lazily: its next session starts at position 0, which
        // overwrites it. Emptying it here would need the engine, which a step may hold.
        st.free_slots.push(slot);
        self.wake.notify_all();
    }
}

/// One request's handle on the batcher (its KV cache slot).
pub(crate) struct Session<'a> {
    batcher: &'a Batcher,
    slot: usize,
}

impl Step for Session<'_> {
    fn reset(&mut self) {
        // Every request starts at position 0, which truncates the slot's cache.
    }

    fn logits(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, LocalError> {
        self.batcher.step(self.slot, tokens, pos)
    }

    fn resume(&mut self, prompt: &[u32]) -> Result<usize, LocalError> {
        self.batcher.resume(self.slot, prompt)
    }

    fn keep(&mut self, tokens: &[u32]) -> Result<(), LocalError> {
        self.batcher.keep(self.slot, tokens)
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.batcher.close(self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufFile;

    /// The shipped model's native engine; skips (fails under `LLMKIT_REQUIRE_MODELS=1`)
    /// when it has not been fetched.
    #[track_caller]
    fn engine(_test: &str) -> Option<Native> {
        let path = llmkit_testkit::fixtures::require_model("SmolLM2-135M-Instruct.Q4_1.gguf")?;
        Some(Native::load(GgufFile::open(&path).unwrap(), 2).unwrap())
    }

    #[test]
    fn a_batched_step_equals_separate_steps() {
        let Some(mut engine) = engine("a_batched_step_equals_separate_steps") else {
            return;
        };
        let a: Vec<u32> = vec![504, 3575, 282, 4649, 314];
        let b: Vec<u32> = vec![1, 2000, 300, 40];
        // Alone, each in slot 0.
        let alone_a = engine.logits(&a, 0).unwrap();
        let alone_a2 = engine.logits(&[7042], a.len()).unwrap();
        engine.reset();
        let alone_b = engine.logits(&b, 0).unwrap();
        // Together: prefill of both, then one decode step of `a` next to a prefill.
        let both = engine.step(&[
            Entry {
                slot: 1,
                tokens: &a,
                pos: 0,
            },
            Entry {
                slot: 2,
                tokens: &b,
                pos: 0,
            },
        ]);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(both[0].as_ref().unwrap()), bits(&alone_a));
        assert_eq!(bits(both[1].as_ref().unwrap()), bits(&alone_b));
        let next = engine.step(&[
            Entry {
                slot: 1,
                tokens: &[7042],
                pos: a.len(),
            },
            Entry {
                slot: 3,
                tokens: &b,
                pos: 0,
            },
        ]);
        assert_eq!(bits(next[0].as_ref().unwrap()), bits(&alone_a2));
        assert_eq!(bits(next[1].as_ref().unwrap()), bits(&alone_b));
        // A bad entry fails alone.
        let mixed = engine.step(&[
            Entry {
                slot: 4,
                tokens: &[u32::MAX],
                pos: 0,
            },
            Entry {
                slot: 5,
                tokens: &b,
                pos: 0,
            },
            Entry {
                slot: 6,
                tokens: &b,
                pos: 3,
            },
        ]);
        assert!(mixed[0].is_err());
        assert_eq!(bits(mixed[1].as_ref().unwrap()), bits(&alone_b));
        assert!(mixed[2].is_err(), "position past the cache");
    }

    #[test]
    fn concurrent_sessions_get_the_results_of_running_alone() {
        let Some(mut engine) = engine("concurrent_sessions_get_the_results_of_running_alone")
        else {
            return;
        };
        let prompts: Vec<Vec<u32>> = vec![vec![504, 3575, 282], vec![1, 2000, 300, 40, 5]];
        // Greedy continuations, each alone.
        let greedy = |engine: &mut dyn FnMut(&[u32], usize) -> Vec<f32>, prompt: &[u32]| {
            let mut out = Vec::new();
            let mut logits = engine(prompt, 0);
            for pos in prompt.len()..prompt.len() + 12 {
                let next = (0..logits.len())
                    .max_by(|&x, &y| logits[x].total_cmp(&logits[y]))
                    .unwrap() as u32;
                out.push(next);
                logits = engine(&[next], pos);
            }
            out
        };
        let alone: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| {
                engine.reset();
                greedy(&mut |t, pos| engine.logits(t, pos).unwrap(), p)
            })
            .collect();
        let batcher = Batcher::new(engine, None);
        let together: Vec<Vec<u32>> = std::thread::scope(|s| {
            let handles: Vec<_> = prompts
                .iter()
                .map(|p| {
                    let batcher = &batcher;
                    s.spawn(move || {
                        let mut session = batcher.session();
                        greedy(&mut |t, pos| session.logits(t, pos).unwrap(), p)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(together, alone);
        let stats = batcher.stats();
        assert!(stats.steps > 0 && stats.max_batch <= 2, "{stats:?}");
        eprintln!("batching: {stats:?}");
    }

    /// Greedy continuation of `prompt` through a session, as the generation loop runs it:
    /// resume from the cache, prefill the rest, keep the prompt's state, decode `n` tokens.
    fn greedy_session(session: &mut Session<'_>, prompt: &[u32], n: usize) -> (usize, Vec<u32>) {
        let reused = session.resume(prompt).unwrap();
        let mut logits = session.logits(&prompt[reused..], reused).unwrap();
        session.keep(prompt).unwrap();
        let mut out = Vec::new();
        for pos in prompt.len()..prompt.len() + n {
            let next = (0..logits.len())
                .max_by(|&x, &y| logits[x].total_cmp(&logits[y]))
                .unwrap() as u32;
            out.push(next);
            logits = session.logits(&[next], pos).unwrap();
        }
        (reused, out)
    }

    #[test]
    fn concurrent_requests_with_a_shared_prefix_compute_it_once() {
        let Some(mut engine) = engine("concurrent_requests_with_a_shared_prefix_compute_it_once")
        else {
            return;
        };
        let shared: Vec<u32> = (0..200u32).map(|i| 300 + (i * 37) % 4000).collect();
        let prompts: Vec<Vec<u32>> = [[504u32, 3575, 282], [1, 2000, 300]]
            .iter()
            .map(|tail| shared.iter().chain(tail).copied().collect())
            .collect();
        let alone: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| {
                engine.reset();
                let mut logits = engine.logits(p, 0).unwrap();
                let mut out = Vec::new();
                for pos in p.len()..p.len() + 8 {
                    let next = (0..logits.len())
                        .max_by(|&x, &y| logits[x].total_cmp(&logits[y]))
                        .unwrap() as u32;
                    out.push(next);
                    logits = engine.logits(&[next], pos).unwrap();
                }
                out
            })
            .collect();
        let cache = KvCache::new(64 << 20);
        let batcher = Batcher::new(engine, Some(cache.clone()));
        let together: Vec<(usize, Vec<u32>)> = std::thread::scope(|s| {
            let handles: Vec<_> = prompts
                .iter()
                .map(|p| {
                    let batcher = &batcher;
                    s.spawn(move || greedy_session(&mut batcher.session(), p, 8))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let outputs: Vec<Vec<u32>> = together.iter().map(|(_, o)| o.clone()).collect();
        assert_eq!(outputs, alone);
        // Whichever started second waited for the other's prefill and reused the whole
        // shared part, however the two threads were scheduled.
        let mut reused: Vec<usize> = together.iter().map(|(r, _)| *r).collect();
        reused.sort_unstable();
        assert_eq!(reused, vec![0, shared.len()], "{:?}", cache.stats());
        // A third request with the first prompt reuses all of it but its last token.
        let (r, out) = greedy_session(&mut batcher.session(), &prompts[0], 8);
        assert_eq!((r, &out), (prompts[0].len() - 1, &alone[0]));
    }
}
