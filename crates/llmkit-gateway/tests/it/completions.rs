//! `/v1/completions` (the legacy completions endpoint): answered whole through the pipeline,
//! so the key's budget, limits and the ledger apply as they do to chat.

use llmkit_gateway::NewKey;
use serde_json::{Value, json};

use crate::{Harness, error_of, post};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_pass_through_into_the_ledger() {
    let mut h = Harness::start().await;
    let (id, k) = h.key(NewKey {
        name: "legacy".into(),
        rpm: Some(10),
        budget_daily_usd: Some(5.0),
        ..NewKey::default()
    });
    let body = json!({"model": "gpt-4o-mini", "prompt": "Say this is a test", "max_tokens": 20});
    let (s, headers, b) = post(&h, "/v1/completions", Some(&k), &body).await;
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["object"], "text_completion");
    assert!(!v["choices"][0]["text"].as_str().unwrap().is_empty(), "{b}");
    let usage = &v["usage"];
    assert_eq!(headers["x-ratelimit-remaining-requests"], "9");
    assert!(headers.get("x-llmkit-overhead-ms").is_some());
    // The upstream got the request with its own key, the ledger the usage under the key id.
    assert_eq!(h.mock.requests().len(), 1);
    h.store.flush().unwrap();
    let rows: Vec<_> = h
        .store
        .ledger_rows(&Default::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.profile.as_deref() == Some(id.as_str()))
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].command, "serve");
    assert_eq!(Some(rows[0].prompt_tokens), usage["prompt_tokens"].as_u64());
    assert_eq!(
        Some(rows[0].completion_tokens),
        usage["completion_tokens"].as_u64()
    );
    assert!(rows[0].cost_usd > 0.0);

    // Not streamed here: a clear 400 instead of an answer the caller did not ask for.
    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let (s, _, b) = post(&h, "/v1/completions", Some(&k), &stream).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(error_of(&b)["param"], "stream");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_are_held_to_the_budget_and_scope() {
    let mut h = Harness::start().await;
    let (_, k) = h.key(NewKey {
        name: "tiny".into(),
        models: vec!["gpt-4o-mini".into()],
        budget_daily_usd: Some(0.000_001),
        ..NewKey::default()
    });
    let body = json!({"model": "gpt-4o-mini", "prompt": ["one", "two"], "max_tokens": 50});
    let (s, _, b) = post(&h, "/v1/completions", Some(&k), &body).await;
    assert_eq!(s, 429, "{b}");
    assert_eq!(error_of(&b)["code"], "insufficient_quota");
    let other = json!({"model": "gpt-4o", "prompt": "x"});
    let (s, _, b) = post(&h, "/v1/completions", Some(&k), &other).await;
    assert_eq!(s, 403, "{b}");
    let (s, _, b) = post(&h, "/v1/completions", Some(&k), &json!({"prompt": "x"})).await;
    assert_eq!(s, 400, "{b}");
    assert!(h.mock.requests().is_empty(), "nothing reached the upstream");
    h.stop().await;
}
