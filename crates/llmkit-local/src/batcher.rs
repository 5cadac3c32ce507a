//! Batches concurrent requests on the native engine: each request keeps its own generation
//! loop on its own thread, but their forward steps meet here and run as one batched pass, so
//! the weights are read once for all of them.
//!
//! Whoever finds the engine free runs the next step for everything queued. Before running it
//! waits briefly (at most [`GATHER_WAIT`]) for the other open sessions, which are usually only
//! sampling their previous token, so that steady concurrent decoding batches every step.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{LocalError, guard};
use crate::generate::Step;
use crate::native::{Entry, Native};

/// How long a step waits for other open sessions to submit theirs.
const GATHER_WAIT: Duration = Duration::from_millis(1);

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
    stats: BatchStats,
}

impl Batcher {
    pub(crate) fn new(engine: Native) -> Self {
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
                stats: BatchStats::default(),
            }),
            wake: Condvar::new(),
        }
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
            if st.pending.len() < st.open && now < deadline {
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

    fn close(&self, slot: usize) {
        let mut st = self.lock();
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
        let batcher = Batcher::new(engine);
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
}
