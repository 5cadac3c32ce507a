//! Stream edge cases: cut after content, error events, `[DONE]`-less endings, JSON answers to stream requests, rate-limit metadata.

use futures::StreamExt;
use llmkit_client::{ChatStream, ClientError};
use llmkit_testkit::{MockConfig, MockServer};
use llmkit_types::{ChatCompletionRequest, ChatMessage};

use crate::support::{RawServer, chat_body, client, fast_config, http_json};

fn req() -> ChatCompletionRequest {
    ChatCompletionRequest::new("m", vec![ChatMessage::user("hi")])
}

/// An HTTP response carrying `events` as an SSE body, then closing.
fn sse(events: &[&str]) -> String {
    let body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\nx-request-id: req_sse\r\n\r\n{body}",
        body.len()
    )
}

const ROLE: &str =
    r#"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;
const HELLO: &str = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"hello"}}]}"#;
const STOP: &str = r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;

async fn drain(mut s: ChatStream) -> (String, Option<ClientError>) {
    let mut text = String::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => text.push_str(c.delta_text().unwrap_or_default()),
            Err(e) => return (text, Some(e)),
        }
    }
    (text, None)
}

#[test]
fn chat_stream_is_send_and_unpin() {
    fn check<T: Send + Unpin + futures::Stream>() {}
    check::<ChatStream>();
}

#[tokio::test]
async fn a_stream_cut_after_content_is_an_error_and_not_retried() {
    let server = RawServer::start(vec![sse(&[ROLE, HELLO])]).await;
    let c = client(fast_config(&server.url, 3));
    let (text, err) = drain(c.chat_stream(&req()).await.expect("opens")).await;
    assert_eq!(text, "hello");
    assert!(
        matches!(err, Some(ClientError::Stream(ref m)) if m.contains("[DONE]")),
        "{err:?}"
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_stream_ending_before_content_is_retried() {
    let server = RawServer::start(vec![sse(&[ROLE]), sse(&[ROLE, HELLO, STOP, "[DONE]"])]).await;
    let c = client(fast_config(&server.url, 3));
    let stream = c.chat_stream(&req()).await.expect("opens");
    let (text, err) = drain(stream).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text, "hello");
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn error_events_become_api_errors() {
    let error = r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}"#;
    // Before content: a server_error is retried.
    let server = RawServer::start(vec![
        sse(&[ROLE, error]),
        sse(&[ROLE, HELLO, STOP, "[DONE]"]),
    ])
    .await;
    let c = client(fast_config(&server.url, 3));
    let (text, err) = drain(c.chat_stream(&req()).await.expect("opens")).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text, "hello");
    // After content: it ends the stream with the typed error and its request id.
    let server = RawServer::start(vec![sse(&[ROLE, HELLO, error])]).await;
    let c = client(fast_config(&server.url, 3));
    let (text, err) = drain(c.chat_stream(&req()).await.expect("opens")).await;
    assert_eq!(text, "hello");
    let err = err.expect("an error");
    assert!(matches!(err, ClientError::Api { .. }), "{err:?}");
    assert_eq!(err.request_id(), Some("req_sse"));
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_json_answer_to_a_stream_request_still_streams() {
    let server = RawServer::start(vec![http_json("200 OK", &[], &chat_body("whole answer"))]).await;
    let c = client(fast_config(&server.url, 0));
    let (resp, meta) = c
        .chat_stream(&req())
        .await
        .expect("opens")
        .collect_response()
        .await
        .expect("collects");
    assert_eq!(resp.text(), "whole answer");
    assert_eq!(resp.usage.map(|u| u.total_tokens), Some(2));
    assert_eq!(meta.attempts, 1);
}

#[tokio::test]
async fn rate_limit_headers_and_timings_land_in_meta() {
    let mock = MockServer::start(MockConfig {
        rpm: Some(600),
        tpm: Some(100_000),
        ..MockConfig::default()
    })
    .await
    .expect("mock starts");
    let c = client(fast_config(&mock.url(), 0));
    let resp = c.chat(&req()).await.expect("chat");
    let rl = &resp.meta.rate_limit;
    assert_eq!(rl.limit_requests, Some(600));
    assert_eq!(rl.limit_tokens, Some(100_000));
    assert!(rl.remaining_requests.is_some_and(|r| r < 600), "{rl:?}");
    assert!(rl.reset_requests.is_some(), "{rl:?}");
    assert!(resp.meta.request_id.is_some());
    assert_eq!(resp.meta.ttft, None);

    let mut stream = c.chat_stream(&req()).await.expect("stream");
    while let Some(chunk) = stream.next().await {
        chunk.expect("chunk");
    }
    let meta = stream.meta();
    let ttft = meta.ttft.expect("ttft");
    assert!(meta.latency >= ttft, "{meta:?}");
    assert_eq!(meta.rate_limit.limit_requests, Some(600));
}
