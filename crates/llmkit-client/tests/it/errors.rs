//! 401, unknown model, context-length and TLS errors map to typed errors with hints and are
//! not retried.

use llmkit_client::ClientError;
use llmkit_testkit::{MockConfig, MockServer};
use llmkit_types::{ChatCompletionRequest, ChatMessage};

use crate::support::{client, fast_config};

#[tokio::test]
async fn wrong_key_is_401_with_hint_and_not_retried() {
    let mock = MockServer::start(MockConfig {
        api_key: Some("sk-right-key".into()),
        ..MockConfig::default()
    })
    .await
    .expect("mock starts");
    let c = client(fast_config(&mock.url(), 3).api_key("sk-wrong-key"));
    let req = ChatCompletionRequest::new("gpt-4o-mini", vec![ChatMessage::user("hi")]);
    let err = c.chat(&req).await.expect_err("401");
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());
    assert!(err.hint().unwrap_or_default().contains("OPENAI_API_KEY"));
    assert!(!err.to_string().contains("sk-wrong-key"), "{err}");
    assert_eq!(mock.request_count(), 1);

    let ok = client(fast_config(&mock.url(), 0).api_key("sk-right-key"));
    assert_eq!(ok.chat(&req).await.expect("right key").body.text(), "hi");
}

#[tokio::test]
async fn unknown_model_is_model_not_found() {
    let mock = MockServer::start(MockConfig::default())
        .await
        .expect("mock starts");
    let c = client(fast_config(&mock.url(), 3));
    let req = ChatCompletionRequest::new("nonexistent-model", vec![ChatMessage::user("hi")]);
    let err = c.chat(&req).await.expect_err("404");
    assert_eq!(err.status(), Some(404));
    assert!(err.is_model_not_found(), "{err:?}");
    assert!(err.hint().unwrap_or_default().contains("llmkit models"));
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn long_prompt_is_context_length_exceeded() {
    let mock = MockServer::start(MockConfig::default())
        .await
        .expect("mock starts");
    let c = client(fast_config(&mock.url(), 3));
    let long = "tokens ".repeat(6000);
    let req = ChatCompletionRequest::new("mock-ctx4k", vec![ChatMessage::user(long)]);
    let err = c.chat(&req).await.expect_err("too long");
    assert!(err.is_context_length_exceeded(), "{err:?}");
    assert!(matches!(err, ClientError::Api { status: 400, .. }));
    assert!(err.hint().unwrap_or_default().contains("shorten"));
    assert_eq!(mock.request_count(), 1);

    let err = c.chat_stream(&req).await.expect_err("too long, streamed");
    assert!(err.is_context_length_exceeded(), "{err:?}");
    assert_eq!(mock.request_count(), 2);
}

/// `https://` to a server that answers in plain HTTP: the handshake fails the same way every
/// time, so the first attempt is the last, and the hint names the `http://` address.
#[tokio::test]
async fn issue22_https_to_a_plain_http_server_is_not_retried() {
    let mock = MockServer::start(MockConfig::default())
        .await
        .expect("mock starts");
    let https = mock.url().replacen("http://", "https://", 1);
    let c = client(fast_config(&https, 3));
    let req = ChatCompletionRequest::new("gpt-4o-mini", vec![ChatMessage::user("hi")]);
    let err = c.chat(&req).await.expect_err("no TLS there");
    assert!(
        matches!(
            err,
            ClientError::Tls {
                plain_http: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let hint = err.hint().unwrap_or_default();
    let origin = https.trim_start_matches("https://");
    assert_eq!(
        hint,
        format!(
            "the server at https://{origin} does not speak TLS; if it is a plain-HTTP server, \
             use http://{origin} in the base URL"
        )
    );
    assert_eq!(mock.request_count(), 0);
    let err = c
        .chat_stream(&req)
        .await
        .expect_err("streamed, no TLS there");
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn issue22_a_failed_tls_handshake_makes_one_connection() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut hello = [0u8; 1024];
                let _ = sock.read(&mut hello).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
                let _ = sock.shutdown().await;
            });
        }
    });
    let c = client(fast_config(&format!("https://{addr}"), 3));
    let req = ChatCompletionRequest::new("gpt-4o-mini", vec![ChatMessage::user("hi")]);
    let err = c.chat(&req).await.expect_err("no TLS there");
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    assert_eq!(connections.load(Ordering::SeqCst), 1, "retried: {err}");
}
