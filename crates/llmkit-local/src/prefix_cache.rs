//! The prefix cache: a bounded LRU of immutable KV states keyed by (model, token ids), with
//! longest-common-prefix lookup, so a prompt that starts like a cached sequence prefills only
//! the tokens after the shared part.
//!
//! **Why a sorted map.** The entries sit in a `BTreeMap` ordered by (model, tokens), token ids
//! compared lexicographically. In that order the key sharing the longest prefix with a query is
//! always one of the query's two neighbours: if `a < b <= q` then `lcp(a, q) <= lcp(b, q)`,
//! because `a` and `q` agreeing on their first `k` ids forces `b`, which lies between them, to
//! agree on them too (and symmetrically above `q`). So a lookup is two `O(log n)` range steps
//! plus two prefix comparisons, and it finds *any* shared prefix, including one that ends inside
//! a cached sequence (the next chat turn re-renders the previous answer and then diverges at its
//! end-of-turn token). A token trie would find the same, but with a node per token (a
//! thousand-token history is a thousand nodes); hashed fixed-size blocks would lose the last
//! partial block of every shared prefix and need collision checks.
//!
//! **Copy on reuse.** Values are kept behind `Arc` and never handed out mutably: the engine
//! copies the first `len` positions out of an entry into its own sequence, so a later request
//! that extends or diverges from the entry never changes what is cached.
//!
//! **Eviction.** Each entry carries its size in bytes (given by the caller); inserting past the
//! cap evicts the least recently used entries (a lookup that hits counts as a use) until the
//! total fits. An entry larger than the cap is not kept. A new entry that extends cached ones
//! replaces them (their states are prefixes of its state); one that an entry already extends is
//! not stored twice.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Which loaded model a state belongs to: states of different models never match.
pub(crate) type ModelId = u64;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    model: ModelId,
    tokens: Arc<[u32]>,
}

struct Slot<V> {
    value: Arc<V>,
    bytes: usize,
    tick: u64,
}

/// A cached state sharing `len` leading tokens with the query.
pub(crate) struct Hit<V> {
    /// How many leading tokens of the query the state covers.
    pub(crate) len: usize,
    /// The cached state (read-only: copy what you need out of it).
    pub(crate) value: Arc<V>,
}

/// Counters for observing the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvCacheStats {
    /// Lookups that found a shared prefix.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
    /// Prompt tokens whose prefill a hit saved, summed over hits.
    pub reused_tokens: u64,
    /// Entries stored.
    pub inserts: u64,
    /// Entries dropped to stay under the cap.
    pub evictions: u64,
    /// Entries held now.
    pub entries: usize,
    /// Bytes held now (as the caller measured them).
    pub bytes: usize,
    /// The cap in bytes.
    pub max_bytes: usize,
}

/// The cache itself (single-threaded; the engine wraps it in a mutex).
pub(crate) struct PrefixCache<V> {
    max_bytes: usize,
    tick: u64,
    entries: BTreeMap<Key, Slot<V>>,
    /// Entries by last use, oldest first.
    lru: BTreeMap<u64, Key>,
    stats: KvCacheStats,
}

/// The number of leading ids `a` and `b` share.
pub(crate) fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl<V> PrefixCache<V> {
    /// An empty cache holding at most `max_bytes`.
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            tick: 0,
            entries: BTreeMap::new(),
            lru: BTreeMap::new(),
            stats: KvCacheStats {
                max_bytes,
                ..KvCacheStats::default()
            },
        }
    }

    pub(crate) fn stats(&self) -> KvCacheStats {
        self.stats
    }

    /// The cached state of `model` sharing the longest prefix with `tokens`, that prefix
    /// capped at `max_len`; `None` when nothing shares a first token (or `max_len` is 0).
    pub(crate) fn lookup(
        &mut self,
        model: ModelId,
        tokens: &[u32],
        max_len: usize,
    ) -> Option<Hit<V>> {
        let found = self.longest(model, tokens).filter(|_| max_len > 0);
        let Some((key, shared)) = found else {
            self.stats.misses += 1;
            return None;
        };
        let len = shared.min(max_len);
        self.touch(&key);
        let value = self.entries.get(&key).map(|s| Arc::clone(&s.value))?;
        self.stats.hits += 1;
        self.stats.reused_tokens += len as u64;
        Some(Hit { len, value })
    }

    /// How many leading tokens of `tokens` the best cached state of `model` covers, without
    /// counting a lookup or refreshing the entry.
    pub(crate) fn peek(&self, model: ModelId, tokens: &[u32]) -> usize {
        self.longest(model, tokens).map_or(0, |(_, n)| n)
    }

    /// Whether a cached state of `model` already covers all of `tokens`.
    pub(crate) fn covers(&self, model: ModelId, tokens: &[u32]) -> bool {
        self.extension_of(model, tokens).is_some()
    }

    /// Keeps `value`, the state after `tokens`, measured at `bytes`. Returns whether it is
    /// held (it is not when it alone exceeds the cap, or a cached state already covers it).
    pub(crate) fn insert(
        &mut self,
        model: ModelId,
        tokens: &[u32],
        value: V,
        bytes: usize,
    ) -> bool {
        if tokens.is_empty() || bytes > self.max_bytes {
            return false;
        }
        if let Some(key) = self.extension_of(model, tokens) {
            self.touch(&key);
            return false;
        }
        // Cached prefixes of `tokens` are redundant next to it. All sort below it. Let `below`
        // be the nearest key under `bound` (at first `tokens` itself), sharing `s` ids with
        // `tokens`: no prefix `tokens[..j]` with `s < j < bound.len()` is a key, or it would
        // sit between `below` and `bound`. So the next candidate is `tokens[..s]` itself, and
        // the search goes on below it; `bound` shortens every round.
        let mut bound = tokens.len();
        let mut redundant = Vec::new();
        while bound > 0 {
            let probe = Key {
                model,
                tokens: Arc::from(&tokens[..bound]),
            };
            let Some((below, _)) = self.entries.range(..probe).next_back() else {
                break;
            };
            if below.model != model {
                break;
            }
            let shared = common_prefix(&below.tokens, tokens).min(bound - 1);
            let exact = Key {
                model,
                tokens: Arc::from(&tokens[..shared]),
            };
            if shared > 0 && self.entries.contains_key(&exact) {
                redundant.push(exact);
            }
            bound = shared;
        }
        for key in redundant {
            self.remove(&key);
        }
        self.tick += 1;
        let key = Key {
            model,
            tokens: Arc::from(tokens),
        };
        self.lru.insert(self.tick, key.clone());
        self.entries.insert(
            key,
            Slot {
                value: Arc::new(value),
                bytes,
                tick: self.tick,
            },
        );
        self.stats.bytes += bytes;
        self.stats.inserts += 1;
        while self.stats.bytes > self.max_bytes {
            let Some((_, oldest)) = self.lru.pop_first() else {
                break;
            };
            if let Some(slot) = self.entries.remove(&oldest) {
                self.stats.bytes -= slot.bytes;
            }
            self.stats.evictions += 1;
        }
        self.stats.entries = self.entries.len();
        true
    }

    /// The key sharing the longest prefix with `tokens` (and that length), among `model`'s.
    fn longest(&self, model: ModelId, tokens: &[u32]) -> Option<(Key, usize)> {
        let probe = Key {
            model,
            tokens: Arc::from(tokens),
        };
        let below = self.entries.range(..=probe.clone()).next_back();
        let above = self.entries.range(probe..).next();
        [below, above]
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.model == model)
            .map(|(k, _)| (k.clone(), common_prefix(&k.tokens, tokens)))
            .filter(|(_, n)| *n > 0)
            .max_by_key(|(_, n)| *n)
    }

    /// A key of `model` that starts with all of `tokens` (equal or longer): the first key at or
    /// above `tokens`, when it does.
    fn extension_of(&self, model: ModelId, tokens: &[u32]) -> Option<Key> {
        let probe = Key {
            model,
            tokens: Arc::from(tokens),
        };
        let (k, _) = self.entries.range(probe..).next()?;
        (k.model == model && k.tokens.starts_with(tokens)).then(|| k.clone())
    }

    fn touch(&mut self, key: &Key) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(slot) = self.entries.get_mut(key) {
            self.lru.remove(&slot.tick);
            slot.tick = tick;
            self.lru.insert(tick, key.clone());
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(slot) = self.entries.remove(key) {
            self.lru.remove(&slot.tick);
            self.stats.bytes -= slot.bytes;
        }
        self.stats.entries = self.entries.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache of token lists standing in for KV states, 1 byte per token.
    fn cache(max_bytes: usize) -> PrefixCache<Vec<u32>> {
        PrefixCache::new(max_bytes)
    }

    fn put(c: &mut PrefixCache<Vec<u32>>, model: ModelId, tokens: &[u32]) -> bool {
        c.insert(model, tokens, tokens.to_vec(), tokens.len())
    }

    fn hit(
        c: &mut PrefixCache<Vec<u32>>,
        model: ModelId,
        tokens: &[u32],
    ) -> Option<(usize, Vec<u32>)> {
        c.lookup(model, tokens, usize::MAX)
            .map(|h| (h.len, h.value.as_ref().clone()))
    }

    #[test]
    fn the_longest_shared_prefix_is_chosen() {
        let mut c = cache(1000);
        put(&mut c, 1, &[1, 2, 3]);
        put(&mut c, 1, &[1, 2, 3, 4, 5, 9, 9]);
        put(&mut c, 1, &[1, 2, 7, 7, 7, 7]);
        put(&mut c, 1, &[5, 5]);
        // Shares 5 with the second entry, which ends elsewhere (a diverging chat turn).
        assert_eq!(hit(&mut c, 1, &[1, 2, 3, 4, 5, 6]).map(|h| h.0), Some(5));
        // The neighbour above the query is the best one.
        assert_eq!(hit(&mut c, 1, &[1, 2, 7, 7, 0]).unwrap().0, 4);
        // A query that a longer entry covers completely.
        assert_eq!(hit(&mut c, 1, &[1, 2, 3, 4]).unwrap().0, 4);
        assert_eq!(hit(&mut c, 1, &[5, 5, 5]).unwrap(), (2, vec![5, 5]));
        assert!(hit(&mut c, 1, &[6]).is_none());
        assert!(hit(&mut c, 1, &[]).is_none());
        // The caller's cap (the last prompt token must still run).
        assert_eq!(c.lookup(1, &[1, 2, 3, 4], 3).unwrap().len, 3);
        assert!(c.lookup(1, &[1, 2, 3, 4], 0).is_none());
        let s = c.stats();
        assert_eq!((s.hits, s.misses), (5, 3));
        assert_eq!(s.reused_tokens, 5 + 4 + 4 + 2 + 3);
    }

    #[test]
    fn the_longest_prefix_matches_a_linear_scan() {
        // Pseudo-random keys over a small alphabet, so that prefixes are shared often.
        let mut seed = 0x2545_f491_u64;
        let mut next = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m) as u32
        };
        let mut c = cache(usize::MAX);
        let mut keys: Vec<Vec<u32>> = Vec::new();
        for _ in 0..200 {
            let len = 1 + next(8) as usize;
            let k: Vec<u32> = (0..len).map(|_| next(3)).collect();
            put(&mut c, 7, &k);
            keys.retain(|old| !k.starts_with(old));
            if !keys.iter().any(|old| old.starts_with(&k)) {
                keys.push(k);
            }
        }
        assert_eq!(
            c.stats().entries,
            keys.len(),
            "prefixes of other keys were dropped"
        );
        for _ in 0..500 {
            let len = next(10) as usize;
            let q: Vec<u32> = (0..len).map(|_| next(3)).collect();
            let best = keys.iter().map(|k| common_prefix(k, &q)).max().unwrap_or(0);
            let got = hit(&mut c, 7, &q).map_or(0, |h| h.0);
            assert_eq!(got, best, "query {q:?}");
        }
    }

    #[test]
    fn states_of_another_model_are_never_reused() {
        let mut c = cache(1000);
        put(&mut c, 1, &[1, 2, 3, 4]);
        put(&mut c, 3, &[1, 2, 3, 4, 5]);
        assert!(hit(&mut c, 2, &[1, 2, 3, 4]).is_none());
        assert!(hit(&mut c, 0, &[1, 2, 3]).is_none());
        assert!(hit(&mut c, 4, &[1, 2, 3]).is_none());
        assert_eq!(
            hit(&mut c, 1, &[1, 2, 3, 4, 5]).unwrap(),
            (4, vec![1, 2, 3, 4])
        );
        assert!(!c.covers(2, &[1, 2]));
        assert!(c.covers(3, &[1, 2, 3, 4, 5]));
        // The same tokens under another model are a separate entry, not a duplicate.
        assert!(put(&mut c, 2, &[1, 2, 3, 4]));
        assert_eq!(c.stats().entries, 3);
    }

    #[test]
    fn eviction_keeps_the_total_under_the_cap_and_drops_the_least_recent() {
        let mut c = cache(10);
        assert!(put(&mut c, 1, &[1, 1, 1, 1]));
        assert!(put(&mut c, 1, &[2, 2, 2, 2]));
        // Using the first makes the second the least recent.
        assert!(hit(&mut c, 1, &[1, 1]).is_some());
        assert!(put(&mut c, 1, &[3, 3, 3, 3]));
        let s = c.stats();
        assert!(s.bytes <= 10, "{s:?}");
        assert_eq!((s.entries, s.evictions, s.bytes), (2, 1, 8));
        assert!(hit(&mut c, 1, &[2, 2]).is_none());
        assert!(hit(&mut c, 1, &[1, 1]).is_some());
        assert!(hit(&mut c, 1, &[3, 3]).is_some());
        // An entry larger than the cap is refused and evicts nothing.
        assert!(!put(&mut c, 1, &[4; 11]));
        assert_eq!(c.stats().entries, 2);
        // One that needs the whole cap evicts everything else.
        assert!(put(&mut c, 1, &[5; 10]));
        let s = c.stats();
        assert_eq!((s.entries, s.bytes, s.evictions), (1, 10, 3));
        // A cap of 0 holds nothing.
        let mut off = cache(0);
        assert!(!put(&mut off, 1, &[1]));
        assert!(hit(&mut off, 1, &[1]).is_none());
    }

    #[test]
    fn an_extension_replaces_its_prefixes_and_a_covered_state_is_not_stored_twice() {
        let mut c = cache(100);
        put(&mut c, 1, &[1, 2]);
        put(&mut c, 1, &[1, 2, 3, 4]);
        put(&mut c, 1, &[1, 2, 9]);
        // [1, 2] is a prefix of both others: dropped when [1, 2, 3, 4] arrived.
        assert_eq!(c.stats().entries, 2);
        assert_eq!(c.stats().bytes, 7);
        // [1, 2, 3] is covered by [1, 2, 3, 4].
        assert!(!put(&mut c, 1, &[1, 2, 3]));
        assert!(!put(&mut c, 1, &[1, 2, 3, 4]));
        assert_eq!(c.stats().entries, 2);
        // The next turn extends [1, 2, 3, 4] and replaces it, [1, 2, 9] stays.
        assert!(put(&mut c, 1, &[1, 2, 3, 4, 5, 6]));
        let s = c.stats();
        assert_eq!((s.entries, s.bytes), (2, 9));
    }

    #[test]
    fn a_reused_state_is_a_copy_later_requests_cannot_change() {
        let mut c = cache(100);
        put(&mut c, 1, &[1, 2, 3]);
        let Hit { len, value } = c.lookup(1, &[1, 2, 3, 8], usize::MAX).unwrap();
        // The engine copies what it reuses and then extends its own sequence.
        let mut mine = value[..len].to_vec();
        mine.push(8);
        assert!(
            Arc::strong_count(&value) >= 2,
            "the entry is shared read-only"
        );
        drop(value);
        assert_eq!(hit(&mut c, 1, &[1, 2, 3]).unwrap(), (3, vec![1, 2, 3]));
        assert_eq!(mine, vec![1, 2, 3, 8]);
    }
}
