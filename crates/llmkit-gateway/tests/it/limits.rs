//! Per-key RPM, TPM and concurrency limits: OpenAI-shaped 429s with `Retry-After`, the
//! `x-ratelimit-*` headers on every answer, refunds of the token estimate, and the refusal
//! counts in `/metrics`.

use llmkit_gateway::NewKey;
use serde_json::{Value, json};

use crate::{Harness, chat_body, client, error_of, metrics, post};

fn header(h: &reqwest::header::HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {h:?}"))
        .to_string()
}

fn number(h: &reqwest::header::HeaderMap, name: &str) -> u64 {
    header(h, name).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_minute_run_out_with_an_openai_429() {
    let mut h = Harness::start().await;
    let (id, k) = h.key(NewKey {
        name: "rpm".into(),
        rpm: Some(3),
        ..NewKey::default()
    });
    let body = chat_body("gpt-4o-mini", "hello");
    for left in [2, 1] {
        let (s, headers, b) = post(&h, "/v1/chat/completions", Some(&k), &body).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(number(&headers, "x-ratelimit-limit-requests"), 3);
        assert_eq!(number(&headers, "x-ratelimit-remaining-requests"), left);
        assert!(header(&headers, "x-ratelimit-reset-requests").ends_with('s'));
        // No token limit, so no token headers.
        assert!(headers.get("x-ratelimit-limit-tokens").is_none());
    }
    // Embeddings count against the same minute.
    let emb = json!({"model": "text-embedding-3-small", "input": "one"});
    let (s, headers, _) = post(&h, "/v1/embeddings", Some(&k), &emb).await;
    assert_eq!(s, 200);
    assert_eq!(number(&headers, "x-ratelimit-remaining-requests"), 0);

    let (s, headers, b) = post(&h, "/v1/chat/completions", Some(&k), &body).await;
    assert_eq!(s, 429, "{b}");
    let err = error_of(&b);
    assert_eq!(err["code"], "rate_limit_exceeded");
    assert_eq!(err["type"], "requests");
    assert!(
        err["message"].as_str().unwrap().contains("Limit 3"),
        "{err}"
    );
    // At 3 RPM a request comes back every 20 s.
    let retry = number(&headers, "retry-after");
    assert!((19..=20).contains(&retry), "Retry-After {retry}");
    let retry_ms = number(&headers, "retry-after-ms");
    assert!(retry_ms > 18_000 && retry_ms <= 20_000, "{retry_ms}");
    assert_eq!(number(&headers, "x-ratelimit-remaining-requests"), 0);
    assert!(!b.contains(&k), "the key is never echoed");

    let m = metrics(&h).await;
    assert!(
        m.contains(&format!(
            "llmkit_gateway_refusals_total{{key=\"{id}\",reason=\"rpm\"}} 1"
        )),
        "{m}"
    );
    // The refused request never reached the upstream: 2 chats and 1 embedding did.
    assert_eq!(h.mock.requests().len(), 3);
    // Another key is not affected.
    let (_, other) = h.any_key();
    let (s, headers, _) = post(&h, "/v1/chat/completions", Some(&other), &body).await;
    assert_eq!(s, 200);
    assert!(headers.get("x-ratelimit-limit-requests").is_none());
    h.stop().await;
}

/// The completion tokens the mock reported in a whole chat answer, plus its prompt tokens.
fn used(body: &str) -> u64 {
    let v: Value = serde_json::from_str(body).unwrap();
    v["usage"]["total_tokens"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_estimates_are_refunded_with_the_real_usage() {
    let mut h = Harness::start().await;
    let (id, k) = h.key(NewKey {
        name: "tpm".into(),
        tpm: Some(1000),
        ..NewKey::default()
    });
    // Prompt plus a 600-token output budget: two at once would not fit in 1000.
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 600,
        "messages": [{"role": "user", "content": "hello"}]});
    let (s, headers, b) = post(&h, "/v1/chat/completions", Some(&k), &body).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(number(&headers, "x-ratelimit-limit-tokens"), 1000);
    let after_first = number(&headers, "x-ratelimit-remaining-tokens");
    assert!(
        after_first < 400,
        "the estimate was taken: {after_first} left"
    );
    let first_used = used(&b);
    assert!(first_used < 100, "{b}");
    // The first request settled with its real usage, so the second one fits.
    let (s, headers, b) = post(&h, "/v1/chat/completions", Some(&k), &body).await;
    assert_eq!(s, 200, "the refund was not made: {b}");
    let after_second = number(&headers, "x-ratelimit-remaining-tokens");
    // 1000 - first's real usage - second's estimate (plus a little refill).
    let estimate = 1000 - after_first;
    let expected = 1000 - first_used - estimate;
    assert!(
        after_second >= expected && after_second <= expected + 20,
        "{after_second} left, expected about {expected}"
    );

    // Streams settle when they end.
    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let (s, _, text) = post(&h, "/v1/chat/completions", Some(&k), &stream).await;
    assert_eq!(s, 200);
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let (s, _, b) = post(&h, "/v1/chat/completions", Some(&k), &body).await;
    assert_eq!(s, 200, "the stream's estimate was not refunded: {b}");

    // Larger than a whole minute's tokens: refused, and marked as not worth retrying.
    let huge = json!({"model": "gpt-4o-mini", "max_tokens": 5000,
        "messages": [{"role": "user", "content": "hello"}]});
    let (s, headers, b) = post(&h, "/v1/chat/completions", Some(&k), &huge).await;
    assert_eq!(s, 429, "{b}");
    let err = error_of(&b);
    assert_eq!(err["type"], "tokens");
    assert!(
        err["message"].as_str().unwrap().contains("too large"),
        "{err}"
    );
    assert_eq!(header(&headers, "x-should-retry"), "false");
    assert!(headers.get("retry-after").is_some());
    assert!(headers.get("x-ratelimit-remaining-tokens").is_some());

    // More than is left for now (but within the limit): an ordinary refusal that names
    // when to come back.
    let most = json!({"model": "gpt-4o-mini", "max_tokens": 990,
        "messages": [{"role": "user", "content": "hello"}]});
    let (s, headers, b) = post(&h, "/v1/chat/completions", Some(&k), &most).await;
    assert_eq!(s, 429, "{b}");
    assert!(headers.get("x-should-retry").is_none());
    assert!(number(&headers, "retry-after") >= 1);
    assert!(
        metrics(&h)
            .await
            .contains(&format!("key=\"{id}\",reason=\"tpm\"}} 2"))
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_capped_and_streams_hold_their_slot() {
    // Streams of the mock take about a second (20 chunks at 20 tokens/s).
    let mock = llmkit_testkit::MockConfig {
        tokens_per_sec: Some(20.0),
        ..llmkit_testkit::MockConfig::default()
    };
    let mut h = Harness::start_full(mock, |_| {}).await;
    let (id, k) = h.key(NewKey {
        name: "conc".into(),
        max_concurrent: Some(1),
        ..NewKey::default()
    });
    let mut body = chat_body(
        "gpt-4o-mini",
        "one two three four five six seven eight nine ten",
    );
    body["stream"] = json!(true);
    // The response head is back while the stream still runs: the slot stays taken.
    let held = client()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&k)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 200);
    let whole = chat_body("gpt-4o-mini", "hello");
    let (s, headers, b) = post(&h, "/v1/chat/completions", Some(&k), &whole).await;
    assert_eq!(s, 429, "{b}");
    let err = error_of(&b);
    assert_eq!(err["code"], "rate_limit_exceeded");
    assert!(
        err["message"].as_str().unwrap().contains("in flight"),
        "{err}"
    );
    assert_eq!(number(&headers, "retry-after"), 1);
    // The stream ends: its slot is free again.
    let text = held.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let mut freed = false;
    for _ in 0..50 {
        let (s, _, _) = post(&h, "/v1/chat/completions", Some(&k), &whole).await;
        if s == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(freed, "the stream's slot was not freed");
    assert!(
        metrics(&h)
            .await
            .contains(&format!("key=\"{id}\",reason=\"concurrency\"}} 1"))
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_other_kinds_carry_the_limit_headers_too() {
    let mut h = Harness::start().await;
    let (_, k) = h.key(NewKey {
        name: "both".into(),
        rpm: Some(100),
        tpm: Some(1000),
        budget_daily_usd: Some(0.000_001),
        ..NewKey::default()
    });
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 800,
        "messages": [{"role": "user", "content": "hi"}]});
    // A used-up budget after admission: still a 429, with the key's limit headers.
    for _ in 0..2 {
        let (s, headers, b) = post(&h, "/v1/chat/completions", Some(&k), &body).await;
        assert_eq!(s, 429, "{b}");
        // The second is refused by the budget again, not by the token limit: the first
        // one's estimate came back whole when it was refused.
        assert_eq!(error_of(&b)["code"], "insufficient_quota");
        assert_eq!(number(&headers, "x-ratelimit-limit-requests"), 100);
        assert_eq!(number(&headers, "x-ratelimit-limit-tokens"), 1000);
    }
    // A body the gateway cannot read is refused before the limits: no headers.
    let (s, headers, _) = post(&h, "/v1/chat/completions", Some(&k), &json!({"nope": 1})).await;
    assert_eq!(s, 400);
    assert!(headers.get("x-ratelimit-limit-requests").is_none());
    h.stop().await;
}
