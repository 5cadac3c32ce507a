//! RPM/TPM limits: 429 answers, `Retry-After` and the `x-ratelimit-*` headers.

use serde_json::{Value, json};

use crate::{post, start, user};
use llmkit_testkit::MockConfig;

#[tokio::test]
async fn rpm_limit_answers_429_with_headers() {
    let s = start(MockConfig {
        rpm: Some(3),
        ..MockConfig::default()
    })
    .await;
    for remaining in ["2", "1", "0"] {
        let resp = post(&s, "/v1/chat/completions", user("x")).await;
        assert_eq!(resp.status(), 200);
        let h = resp.headers();
        assert_eq!(h["x-ratelimit-limit-requests"], "3");
        assert_eq!(h["x-ratelimit-remaining-requests"], remaining);
        assert!(
            h["x-ratelimit-reset-requests"]
                .to_str()
                .unwrap()
                .ends_with('s')
        );
    }
    let resp = post(&s, "/v1/chat/completions", user("x")).await;
    assert_eq!(resp.status(), 429);
    let h = resp.headers().clone();
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    let retry_ms: u64 = h["retry-after-ms"].to_str().unwrap().parse().unwrap();
    assert!(
        retry >= 1 && (19_000..=20_000).contains(&retry_ms),
        "{retry} {retry_ms}"
    );
    assert_eq!(h["x-ratelimit-remaining-requests"], "0");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "requests");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(
            "on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in"
        ),
        "{msg}"
    );
}

#[tokio::test]
async fn tpm_limit_counts_prompt_and_max_tokens() {
    let s = start(MockConfig {
        tpm: Some(100),
        ..MockConfig::default()
    })
    .await;
    let mut body = user("x");
    body["max_tokens"] = json!(40);
    // Each request costs 7 prompt + 40 completion tokens.
    assert_eq!(
        post(&s, "/v1/chat/completions", body.clone())
            .await
            .status(),
        200
    );
    let second = post(&s, "/v1/chat/completions", body.clone()).await;
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["x-ratelimit-remaining-tokens"], "6");
    let third = post(&s, "/v1/chat/completions", body).await;
    assert_eq!(third.status(), 429);
    let v: Value = third.json().await.unwrap();
    assert_eq!(v["error"]["type"], "tokens");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(TPM): Limit 100, Used 94, Requested 47")
    );
}

#[tokio::test]
async fn issue22_injected_errors_give_their_charge_back() {
    // Room for two requests of 7 prompt + 40 completion tokens.
    let s = start(MockConfig {
        tpm: Some(100),
        ..MockConfig::default()
    })
    .await;
    let mut body = user("x");
    body["max_tokens"] = json!(40);
    let send = |fault: &'static str| {
        let mut rb = crate::client()
            .post(format!("{}/v1/chat/completions", s.url()))
            .json(&body);
        if !fault.is_empty() {
            rb = rb.header(llmkit_testkit::FORCE_FAULT_HEADER, fault);
        }
        rb.send()
    };
    let from_bucket = |v: &Value| {
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("on tokens per min")
    };
    assert_eq!(send("").await.expect("answered").status(), 200);
    // Were these charged, the second would find the bucket empty.
    for fault in ["500", "503", "429", "500"] {
        let r = send(fault).await.expect("answered");
        assert_eq!(r.status().as_str(), fault);
        let v: Value = r.json().await.expect("an error body");
        assert!(!from_bucket(&v), "{fault}: {v}");
    }
    // A fault that strikes after the model ran (a cut body) is charged.
    let _ = send("truncate").await.expect("answered").bytes().await;
    let r = send("").await.expect("answered");
    assert_eq!(r.status(), 429);
    assert!(from_bucket(&r.json().await.expect("an error body")));
}
