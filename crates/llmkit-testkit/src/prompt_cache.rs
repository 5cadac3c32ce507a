//! OpenAI's prompt caching, as the mock plays it: a chat request whose leading messages
//! match an earlier request's (with the same `prompt_cache_key`) reports those messages'
//! tokens as `cached_tokens`, from 1024 tokens up, in steps of 128, as OpenAI does.

use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::Value;

use crate::tokens::estimate_messages;

/// The shortest prefix OpenAI caches, and the step cached counts come in.
const MIN_CACHED: u64 = 1024;
const STEP: u64 = 128;
/// Prefixes remembered before the cache starts over (the mock serves bounded runs).
const CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct PromptCache {
    prefixes: HashSet<u64>,
}

impl PromptCache {
    /// The cached tokens of `body` (a chat request), and remembers its prefixes for the
    /// requests after it.
    pub(crate) fn serve(&mut self, body: &Value) -> u64 {
        let Some(messages) = body.get("messages").and_then(Value::as_array) else {
            return 0;
        };
        let key = body
            .get("prompt_cache_key")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let mut hashes = Vec::with_capacity(messages.len());
        for m in messages {
            m.to_string().hash(&mut hasher);
            hashes.push(hasher.finish());
        }
        // The longest known prefix; the last message (the new turn) is never a hit.
        let hit = hashes[..hashes.len().saturating_sub(1)]
            .iter()
            .rposition(|h| self.prefixes.contains(h))
            .map_or(0, |i| i + 1);
        if self.prefixes.len() + hashes.len() > CAPACITY {
            self.prefixes.clear();
        }
        self.prefixes.extend(hashes);
        let tokens = if hit == 0 {
            0
        } else {
            estimate_messages(&messages[..hit])
        };
        if tokens < MIN_CACHED {
            0
        } else {
            tokens / STEP * STEP
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_long_shared_prefix_is_cached_in_steps() {
        let long = "word ".repeat(3000);
        let first = json!({"messages": [{"role": "system", "content": long}, {"role": "user", "content": "a"}]});
        let second = json!({"messages": [
            {"role": "system", "content": long}, {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]});
        let mut cache = PromptCache::default();
        assert_eq!(cache.serve(&first), 0);
        let cached = cache.serve(&second);
        assert!(cached >= MIN_CACHED && cached % STEP == 0, "{cached}");
        // Another key routes elsewhere: nothing cached there yet.
        let mut keyed = second.clone();
        keyed["prompt_cache_key"] = json!("other");
        assert_eq!(cache.serve(&keyed), 0);
        // A short prefix is never cached.
        let short = json!({"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "x"}]});
        cache.serve(&short);
        assert_eq!(cache.serve(&short), 0);
    }
}
