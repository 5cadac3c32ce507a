//! Streams that end before their usage chunk (the upstream cuts the connection, the caller
//! goes away): the ledger row counts the prompt and the completion received with the
//! tokenizer and is marked as counted, never left at zero tokens.

use std::time::Duration;

use llmkit_store::LedgerRow;
use llmkit_testkit::{Fault, MockConfig};
use serde_json::json;

use crate::{Harness, client};

/// The ledger rows of key `id`, waiting up to 5 s for `n` of them (a dropped stream writes
/// its row as the gateway notices the caller has gone).
async fn rows_of(h: &Harness, id: &str, n: usize) -> Vec<LedgerRow> {
    for _ in 0..100 {
        h.store.flush().unwrap();
        let rows: Vec<_> = h
            .store
            .ledger_rows(&Default::default())
            .unwrap()
            .into_iter()
            .filter(|r| r.profile.as_deref() == Some(id))
            .collect();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} ledger rows for {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_cut_counts_the_prompt_and_marks_the_row() {
    // Every upstream stream is cut after its role chunk, before any content or usage.
    let mock = MockConfig {
        fault_rate: 1.0,
        faults: vec![Fault::Truncate],
        ..MockConfig::default()
    };
    let mut h = Harness::start_full(mock, |_| {}).await;
    let (id, k) = h.any_key();
    let body = json!({"model": "gpt-4o-mini", "stream": true, "max_tokens": 50,
        "messages": [{"role": "user", "content": "a prompt of a few words to count"}]});
    let r = client()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&k)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("\"error\""), "the cut is passed on: {text}");
    let rows = rows_of(&h, &id, 1).await;
    let row = &rows[0];
    assert!(row.tokens_counted, "{row:?}");
    // The cookbook's count of one user message of eight words is well above zero.
    assert!(row.prompt_tokens >= 10, "{row:?}");
    assert_eq!(row.completion_tokens, 0, "{row:?}");
    assert!(row.cost_usd > 0.0, "a counted row is priced: {row:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_gets_its_received_tokens_counted() {
    // A slow stream: 10 chunks a second, so the caller can leave part-way.
    let mock = MockConfig {
        tokens_per_sec: Some(10.0),
        ..MockConfig::default()
    };
    let mut h = Harness::start_full(mock, |_| {}).await;
    let (id, k) = h.any_key();
    let words = "one two three four five six seven eight nine ten eleven twelve";
    let body = json!({"model": "gpt-4o-mini", "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": words}]});
    let mut r = client()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&k)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Read until some content has come, then hang up.
    let mut seen = String::new();
    while !seen.contains("\"content\":\"") || !seen.contains("two") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk())
            .await
            .unwrap()
            .unwrap()
            .expect("the stream ended before any content");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(r);
    let rows = rows_of(&h, &id, 1).await;
    let row = &rows[0];
    assert_eq!(row.status, 499, "{row:?}");
    assert!(row.tokens_counted, "{row:?}");
    assert!(row.prompt_tokens >= 10, "{row:?}");
    assert!(
        row.completion_tokens >= 1 && row.completion_tokens < 10,
        "only what was received is counted: {row:?}"
    );

    // A stream that runs to its end keeps the upstream's own usage, unmarked.
    let mut whole = body.clone();
    whole["messages"] = json!([{"role": "user", "content": "hi"}]);
    let r = client()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&k)
        .json(&whole)
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    let rows = rows_of(&h, &id, 2).await;
    assert_eq!(rows[1].status, 200, "{:?}", rows[1]);
    assert!(!rows[1].tokens_counted, "{:?}", rows[1]);
    h.stop().await;
}
