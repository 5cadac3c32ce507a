//! Retry timing and refusal: `Retry-After` is waited for, `insufficient_quota` and 4xx are not retried.

use std::time::{Duration, Instant};

use llmkit_client::ClientError;
use llmkit_types::{ChatCompletionRequest, ChatMessage};

use crate::support::{RawServer, chat_body, client, fast_config, http_json};

fn req() -> ChatCompletionRequest {
    ChatCompletionRequest::new("gpt-4o-mini", vec![ChatMessage::user("hi")])
}

#[tokio::test]
async fn waits_at_least_retry_after() {
    let limited = http_json(
        "429 Too Many Requests",
        &[("retry-after", "1"), ("x-request-id", "req_limited")],
        r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
    );
    let ok = http_json("200 OK", &[("x-request-id", "req_ok")], &chat_body("done"));
    let server = RawServer::start(vec![limited, ok]).await;
    let c = client(fast_config(&server.url, 2));
    let started = Instant::now();
    let resp = c.chat(&req()).await.expect("second attempt succeeds");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    assert_eq!(resp.body.text(), "done");
    assert_eq!(resp.meta.attempts, 2);
    assert_eq!(resp.meta.request_id.as_deref(), Some("req_ok"));
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let quota = http_json(
        "429 Too Many Requests",
        &[("x-request-id", "req_quota"), ("retry-after", "0")],
        r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
    );
    let server = RawServer::start(vec![quota]).await;
    let c = client(fast_config(&server.url, 5));
    let err = c.chat(&req()).await.expect_err("quota error");
    assert_eq!(server.requests(), 1);
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.request_id(), Some("req_quota"));
    assert!(!err.is_retryable());
    assert!(
        err.hint().unwrap_or_default().contains("billing"),
        "{:?}",
        err.hint()
    );
}

#[tokio::test]
async fn should_retry_header_overrides_the_status_rule() {
    let no = http_json(
        "503 Service Unavailable",
        &[("x-should-retry", "false")],
        r#"{"error":{"message":"down"}}"#,
    );
    let server = RawServer::start(vec![no]).await;
    let err = client(fast_config(&server.url, 3))
        .chat(&req())
        .await
        .expect_err("503");
    assert!(
        matches!(err, ClientError::Api { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn exhausted_retries_keep_the_last_status_body_and_request_id() {
    let down = http_json(
        "500 Internal Server Error",
        &[("x-request-id", "req_down")],
        r#"{"error":{"message":"The server had an error","type":"server_error"}}"#,
    );
    let server = RawServer::start(vec![down]).await;
    let err = client(fast_config(&server.url, 2))
        .chat(&req())
        .await
        .expect_err("500s");
    let ClientError::RetriesExhausted { attempts, last } = &err else {
        panic!("expected RetriesExhausted, got {err:?}");
    };
    assert_eq!(*attempts, 3);
    assert!(matches!(**last, ClientError::Api { status: 500, .. }));
    assert_eq!(err.request_id(), Some("req_down"));
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn a_200_that_is_not_json_is_retried() {
    let html = http_json("200 OK", &[], "<html>502 Bad Gateway</html>");
    let ok = http_json("200 OK", &[], &chat_body("fine"));
    let server = RawServer::start(vec![html, ok]).await;
    let resp = client(fast_config(&server.url, 2))
        .chat(&req())
        .await
        .expect("retry works");
    assert_eq!(resp.body.text(), "fine");
    assert_eq!(resp.meta.attempts, 2);
}

#[tokio::test]
async fn unreachable_server_maps_to_connect_with_hint() {
    // Bind and drop to get a port with nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let err = client(fast_config(&format!("http://127.0.0.1:{port}"), 1))
        .chat(&req())
        .await
        .expect_err("nothing listens");
    let ClientError::RetriesExhausted { last, .. } = &err else {
        panic!("expected RetriesExhausted, got {err:?}");
    };
    assert!(matches!(**last, ClientError::Connect { .. }), "{last:?}");
    assert!(
        err.hint().unwrap_or_default().contains("base URL"),
        "{:?}",
        err.hint()
    );
}
