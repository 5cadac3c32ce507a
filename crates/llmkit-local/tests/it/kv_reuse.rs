//! KV-cache reuse on the real default model never changes an answer: greedy (and seeded)
//! output with a prefix reused from the cache equals the output computed from scratch, over
//! several prompts and prefix lengths, including a cached prefix covering the whole prompt.

use llmkit_local::{ChatTurn, GenerateOutput, GenerateRequest, KvCache, LoadOptions, LocalModel};

use crate::support::{default_model_path, shared_model};

const SYSTEM: &str = "You are a careful assistant. Answer in one or two short sentences, \
                      use plain words, and say so when you do not know.";

fn chat(turns: Vec<ChatTurn>, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        messages: turns,
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        ..Default::default()
    }
}

fn generate(model: &LocalModel, req: &GenerateRequest) -> GenerateOutput {
    model
        .generate(req, &mut |_| true)
        .expect("generation works")
}

/// Runs `req` on both models, requires equal outputs, and returns the output and how many
/// prompt tokens the cached model reused for it.
fn same_answer(
    cold: &LocalModel,
    warm: &LocalModel,
    label: &str,
    req: &GenerateRequest,
) -> (GenerateOutput, u64) {
    let before = warm.kv_cache_stats().expect("the cached model has a cache");
    let reused_out = generate(warm, req);
    let after = warm.kv_cache_stats().expect("the cached model has a cache");
    let fresh = generate(cold, req);
    assert_eq!(reused_out, fresh, "{label}: the cache changed the answer");
    (reused_out, after.reused_tokens - before.reused_tokens)
}

#[test]
fn reusing_a_cached_prefix_never_changes_the_answer() {
    let Some(cold) = shared_model() else {
        return;
    };
    let Some(path) = default_model_path() else {
        return;
    };
    let opts = LoadOptions {
        kv_cache: Some(KvCache::new(256 << 20)),
        ..LoadOptions::default()
    };
    let warm = LocalModel::load(&path, &opts).expect("the default model loads");
    assert!(cold.kv_cache_stats().is_none());

    // 1. Nothing cached yet.
    let q1 = "Name three colours of the rainbow.";
    let turn1 = vec![ChatTurn::system(SYSTEM), ChatTurn::user(q1)];
    let (out1, reused) = same_answer(&cold, &warm, "first turn", &chat(turn1.clone(), 24));
    assert_eq!(reused, 0);

    // 2. The next chat turn: the whole first exchange is reused, up to where the re-rendered
    // answer and its end-of-turn marker meet the cached sequence.
    let mut turn2 = turn1.clone();
    turn2.push(ChatTurn::assistant(&out1.text));
    turn2.push(ChatTurn::user("And three fruits?"));
    let (_, reused) = same_answer(&cold, &warm, "second turn", &chat(turn2, 24));
    let first_prompt = u64::from(out1.prompt_tokens);
    assert!(
        reused >= first_prompt,
        "second turn reused {reused} of {first_prompt}+ tokens"
    );

    // 3. The same system prompt with another question: only the system part is shared.
    let system_only = warm.count_chat_tokens(&[ChatTurn::system(SYSTEM)]).unwrap() as u64;
    let other = vec![
        ChatTurn::system(SYSTEM),
        ChatTurn::user("What is the capital of Italy?"),
    ];
    let (_, reused) = same_answer(&cold, &warm, "same system prompt", &chat(other, 24));
    assert!(
        reused >= system_only / 2 && reused < first_prompt,
        "same system prompt reused {reused} (system part {system_only} tokens)"
    );

    // 4. A prompt the cache covers entirely: all but its last token are reused, and that one
    // still runs to give the first logits.
    let (again, reused) = same_answer(
        &cold,
        &warm,
        "whole prompt cached",
        &chat(turn1.clone(), 24),
    );
    assert_eq!(reused, u64::from(again.prompt_tokens) - 1);
    assert_eq!(again, out1);

    // 5. A raw prompt that is a strict prefix of a cached sequence (covered entirely too).
    let rendered = warm.render_chat(&turn1).unwrap();
    let cut = rendered.find(q1).unwrap() + q1.len() / 2;
    let raw = GenerateRequest {
        raw_prompt: Some(rendered[..cut].to_string()),
        max_tokens: Some(16),
        temperature: Some(0.0),
        ..Default::default()
    };
    let (prefix_out, reused) = same_answer(&cold, &warm, "prefix of a cached prompt", &raw);
    assert!(
        reused > 0 && reused < u64::from(prefix_out.prompt_tokens),
        "reused {reused}"
    );

    // 6. A long history (past one 512-token prefill chunk), then a turn over it: prefill
    // resumes mid-chunk, and the reused part crosses a chunk boundary.
    let notes = "The library opens at nine, closes at five, and lends up to six books a \
                 person for three weeks. "
        .repeat(24);
    let long1 = vec![
        ChatTurn::system(SYSTEM),
        ChatTurn::user(format!("{notes}\nWhen does the library open?")),
    ];
    let (long_out, _) = same_answer(&cold, &warm, "long history", &chat(long1.clone(), 16));
    assert!(
        long_out.prompt_tokens > 512,
        "{} prompt tokens",
        long_out.prompt_tokens
    );
    let mut long2 = long1;
    long2.push(ChatTurn::assistant(&long_out.text));
    long2.push(ChatTurn::user("How many books can I borrow?"));
    let (_, reused) = same_answer(&cold, &warm, "turn over a long history", &chat(long2, 16));
    assert!(reused > 512, "reused {reused}");

    // 7. Seeded sampling reuses the same way and samples the same tokens.
    let mut seeded = chat(turn1, 24);
    seeded.temperature = Some(0.9);
    seeded.seed = Some(11);
    let (_, reused) = same_answer(&cold, &warm, "seeded sampling", &seeded);
    assert!(reused > 0);

    let stats = warm.kv_cache_stats().unwrap();
    assert!(
        stats.bytes <= stats.max_bytes && stats.entries > 0,
        "{stats:?}"
    );
}

#[test]
fn a_cache_of_zero_bytes_reuses_nothing() {
    let Some(path) = default_model_path() else {
        return;
    };
    let opts = LoadOptions {
        kv_cache: Some(KvCache::new(0)),
        ..LoadOptions::default()
    };
    let model = LocalModel::load(&path, &opts).expect("the default model loads");
    let req = chat(vec![ChatTurn::user("Say hello.")], 8);
    let first = generate(&model, &req);
    assert_eq!(generate(&model, &req), first);
    let stats = model.kv_cache_stats().unwrap();
    assert_eq!(
        (stats.reused_tokens, stats.entries, stats.bytes),
        (0, 0, 0),
        "{stats:?}"
    );
}
