//! 401, unknown model and context-length errors map to typed errors with hints and are not retried.

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
