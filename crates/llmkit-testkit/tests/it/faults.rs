//! Every fault kind, forced with `x-mock-fault` or drawn with `fault_rate`, as a client observes it.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::{client, parse_sse, start, user};
use llmkit_testkit::{Fault, MockConfig, MockServer};

async fn faulted(
    s: &MockServer,
    fault: &str,
    stream: bool,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut body = user("some words that would be the answer");
    body["stream"] = json!(stream);
    client()
        .post(format!("{}/v1/chat/completions", s.url()))
        .header("x-mock-fault", fault)
        .json(&body)
        .send()
        .await
}

/// Reads a body until it ends, fails, or `wait` passes; returns the text and how it ended.
async fn read_body(resp: reqwest::Response, wait: Duration) -> (String, &'static str) {
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    let end = loop {
        match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => break "stalled",
            Ok(None) => break "complete",
            Ok(Some(Err(_))) => break "error",
            Ok(Some(Ok(b))) => buf.extend_from_slice(&b),
        }
    };
    (String::from_utf8_lossy(&buf).into_owned(), end)
}

#[tokio::test]
async fn server_errors() {
    let s = start(MockConfig::default()).await;
    for (fault, status) in [("500", 500), ("503", 503)] {
        let resp = faulted(&s, fault, false).await.unwrap();
        assert_eq!(resp.status(), status);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "server_error");
    }
    let resp = faulted(&s, "429", true).await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(resp.headers()["retry-after-ms"], "50");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn reset_gives_no_response() {
    let s = start(MockConfig::default()).await;
    for stream in [false, true] {
        let err = faulted(&s, "reset", stream).await.unwrap_err();
        assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    }
    // The server keeps serving other connections.
    let resp = crate::post(&s, "/v1/chat/completions", user("still here")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(s.requests()[0]["status"], Value::Null);
    assert_eq!(s.requests()[0]["fault"], "reset");
}

#[tokio::test]
async fn stall_sends_headers_then_nothing() {
    let s = start(MockConfig::default()).await;
    let resp = tokio::time::timeout(Duration::from_secs(5), faulted(&s, "stall", false))
        .await
        .expect("headers arrive")
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (text, end) = read_body(resp, Duration::from_millis(300)).await;
    assert_eq!((text.as_str(), end), ("", "stalled"));

    let resp = faulted(&s, "stall", true).await.unwrap();
    let (text, end) = read_body(resp, Duration::from_millis(300)).await;
    assert_eq!(end, "stalled");
    let events = parse_sse(&text);
    assert_eq!(events.len(), 1, "{events:?}");
    let role: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
    // Shutting down ends the stalled connections.
    s.shutdown().await;
}

#[tokio::test]
async fn truncate_cuts_the_body() {
    let s = start(MockConfig::default()).await;
    let resp = faulted(&s, "truncate", false).await.unwrap();
    assert_eq!(resp.status(), 200);
    let (text, end) = read_body(resp, Duration::from_secs(5)).await;
    assert_eq!(end, "error");
    assert!(serde_json::from_str::<Value>(&text).is_err());

    let resp = faulted(&s, "truncate", true).await.unwrap();
    let (text, end) = read_body(resp, Duration::from_secs(5)).await;
    assert_eq!(end, "error");
    let events = parse_sse(&text);
    assert_eq!(events.len(), 1, "only the role chunk: {events:?}");
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn badjson_is_not_json() {
    let s = start(MockConfig::default()).await;
    let resp = faulted(&s, "badjson", false).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err());

    let resp = faulted(&s, "badjson", true).await.unwrap();
    let (text, end) = read_body(resp, Duration::from_secs(5)).await;
    assert_eq!(end, "complete");
    let events = parse_sse(&text);
    assert_eq!(events.len(), 2);
    assert!(serde_json::from_str::<Value>(&events[1]).is_err());
}

#[tokio::test]
async fn drawn_faults_are_reproducible_per_seed() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let s = start(MockConfig {
            fault_rate: 0.5,
            faults: vec![Fault::S500, Fault::S503],
            seed,
            ..MockConfig::default()
        })
        .await;
        let mut out = Vec::new();
        for _ in 0..24 {
            out.push(
                crate::post(&s, "/v1/chat/completions", user("x"))
                    .await
                    .status()
                    .as_u16(),
            );
        }
        out
    }
    let a = statuses(42).await;
    assert_eq!(a, statuses(42).await);
    assert!(a.contains(&200) && a.iter().any(|s| *s >= 500), "{a:?}");
    assert_ne!(a, statuses(43).await);
}
