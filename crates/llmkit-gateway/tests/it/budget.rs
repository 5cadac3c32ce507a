//! Per-key budgets: reserved before the call, settled with the real usage, and held under
//! concurrency.

use llmkit_accounting::{Estimate, estimate_cost};
use llmkit_client::ModelCatalog;
use llmkit_gateway::NewKey;
use llmkit_types::{ChatCompletionRequest, ChatMessage};
use serde_json::{Value, json};

use crate::{Harness, error_of, post};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_holds_under_16_concurrent_requests() {
    // The upstream takes a second, so all 16 requests are in flight together.
    let mock = llmkit_testkit::MockConfig {
        latency_ms: 1000,
        ..llmkit_testkit::MockConfig::default()
    };
    let mut h = Harness::start_full(mock, |_| {}).await;
    let text = "count the sheep in the field";
    let max_tokens = 40;
    let req = ChatCompletionRequest::new("gpt-4o-mini", vec![ChatMessage::user(text)])
        .max_tokens(max_tokens);
    let Estimate::Usd(worst) = estimate_cost(&ModelCatalog::builtin(), &req, 1024) else {
        panic!("gpt-4o-mini is priced");
    };
    // Room for four requests' worst case, not five.
    let budget = worst * 4.5;
    let (id, k) = h.key(NewKey {
        name: "capped".into(),
        budget_daily_usd: Some(budget),
        ..NewKey::default()
    });
    let (_, other) = h.any_key();
    let body = json!({"model": "gpt-4o-mini", "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}]});
    let mut tasks = Vec::new();
    for i in 0..16 {
        let mut b = body.clone();
        if i % 2 == 1 {
            b["stream"] = json!(true);
            b["stream_options"] = json!({"include_usage": true});
        }
        let k = k.clone();
        let url = h.url("/v1/chat/completions");
        tasks.push(tokio::spawn(async move {
            let r = crate::client()
                .post(url)
                .bearer_auth(k)
                .json(&b)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            (status, retry, r.text().await.unwrap())
        }));
    }
    let mut served_tokens = 0u64;
    let mut ok = 0;
    for t in tasks {
        let (status, retry, text) = t.await.unwrap();
        match status {
            200 => {
                ok += 1;
                served_tokens += usage_in(&text);
            }
            429 => {
                assert!(retry, "a 429 carries Retry-After");
                assert_eq!(error_of(&text)["code"], "insufficient_quota");
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    // Four worst cases fit; a request may pass after earlier ones settled below theirs.
    assert!(ok >= 4, "four requests fit the budget, {ok} passed");
    assert!(ok < 16, "the budget refused nothing");
    h.store.flush().unwrap();
    let rows: Vec<_> = h
        .store
        .ledger_rows(&Default::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.profile.as_deref() == Some(id.as_str()))
        .collect();
    let spent: f64 = rows.iter().map(|r| r.cost_usd).sum();
    assert!(spent <= budget, "spent {spent} of {budget}");
    let ledger_tokens: u64 = rows
        .iter()
        .map(|r| r.prompt_tokens + r.completion_tokens)
        .sum();
    assert_eq!(ledger_tokens, served_tokens);
    // Another key's budget is its own.
    let (s, _, _) = post(&h, "/v1/chat/completions", Some(&other), &body).await;
    assert_eq!(s, 200);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpriced_models_are_refused_under_a_budget() {
    let mut h = Harness::start().await;
    let (_, k) = h.key(NewKey {
        name: "capped".into(),
        budget_daily_usd: Some(1.0),
        ..NewKey::default()
    });
    let (s, _, b) = post(
        &h,
        "/v1/chat/completions",
        Some(&k),
        &crate::chat_body("mock-model", "x"),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(error_of(&b)["code"], "model_unpriced");
    assert!(h.mock.requests().iter().all(|r| {
        !r["path"]
            .as_str()
            .unwrap_or("")
            .ends_with("/chat/completions")
    }));
    h.stop().await;
}

/// The total tokens of a whole answer, or of the usage chunk of a stream.
pub(crate) fn usage_in(text: &str) -> u64 {
    let total = |v: &Value| {
        v["usage"]["prompt_tokens"].as_u64().unwrap_or(0)
            + v["usage"]["completion_tokens"].as_u64().unwrap_or(0)
    };
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return total(&v);
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .map(|v| total(&v))
        .sum()
}
