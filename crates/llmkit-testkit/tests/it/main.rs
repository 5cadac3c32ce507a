//! Integration tests of llmkit-mock: the server runs in-process and is driven over HTTP with reqwest.

// Test code: a failed unwrap is a failed test (clippy.toml exempts #[test] functions,
// not the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod chat;
mod endpoints;
mod faults;
mod finetune;
mod limits;
mod support;

use futures::StreamExt;
use llmkit_testkit::{MockConfig, MockServer};
use serde_json::Value;

/// Starts a server with `cfg`.
pub async fn start(cfg: MockConfig) -> MockServer {
    MockServer::start(cfg).await.expect("mock server starts")
}

pub fn client() -> reqwest::Client {
    // The workspace's reqwest has no default TLS provider; another test may have installed it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("client builds")
}

/// POSTs `body` as JSON to `path` (e.g. `/v1/chat/completions`).
pub async fn post(s: &MockServer, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", s.url()))
        .json(&body)
        .send()
        .await
        .expect("request is answered")
}

pub async fn json(resp: reqwest::Response) -> Value {
    resp.json().await.expect("body is JSON")
}

/// Reads an SSE body to its end; returns each event's `data` (and comment lines as `:...`).
pub async fn sse(resp: reqwest::Response) -> Vec<String> {
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk.expect("stream chunk"));
    }
    parse_sse(&String::from_utf8(buf).expect("utf-8 stream"))
}

pub fn parse_sse(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| match e.strip_prefix("data: ") {
            Some(d) => d.to_string(),
            None => e.to_string(),
        })
        .collect()
}

pub fn user(text: &str) -> Value {
    serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]})
}
