//! Against the mock with injected faults: retries make every call succeed; a stall is detected and retried.

use std::time::Duration;

use futures::StreamExt;
use llmkit_client::ClientError;
use llmkit_testkit::{Fault, MockConfig, MockServer};
use llmkit_types::{ChatCompletionRequest, ChatMessage, ChunkAccumulator};

use crate::support::{client, fast_config};

fn faulty(seed: u64) -> MockConfig {
    MockConfig {
        fault_rate: 0.3,
        faults: Fault::ALL.to_vec(),
        seed,
        ..MockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_chats_survive_every_fault_kind() {
    let mock = MockServer::start(faulty(7)).await.expect("mock starts");
    let c = client(fast_config(&mock.url(), 10));
    let mut retried = 0;
    for i in 0..200 {
        let question = format!("question number {i}");
        let req = ChatCompletionRequest::new("gpt-4o-mini", vec![ChatMessage::user(&question)]);
        let resp = c
            .chat(&req)
            .await
            .unwrap_or_else(|e| panic!("chat {i} failed: {e}"));
        assert_eq!(resp.body.text(), question, "chat {i}");
        if resp.meta.attempts > 1 {
            retried += 1;
        }
    }
    assert!(mock.request_count() > 200, "no fault was injected");
    assert!(retried > 20, "only {retried} calls needed a retry");
    let faults: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r["fault"].as_str().map(str::to_string))
        .collect();
    for kind in ["500", "503", "429", "stall", "truncate", "badjson"] {
        assert!(
            faults.iter().any(|f| f == kind),
            "fault {kind} never struck: {faults:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chats_survive_faults_before_the_first_token() {
    let mock = MockServer::start(faulty(11)).await.expect("mock starts");
    let c = client(fast_config(&mock.url(), 10));
    let mut retried = 0;
    for i in 0..60 {
        let question = format!("stream question {i} with a few more words");
        let req = ChatCompletionRequest::new("gpt-4o-mini", vec![ChatMessage::user(&question)]);
        let mut stream = c
            .chat_stream(&req)
            .await
            .unwrap_or_else(|e| panic!("open {i}: {e}"));
        let mut acc = ChunkAccumulator::new();
        let mut roles = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap_or_else(|e| panic!("stream {i}: {e}"));
            roles += chunk
                .choices
                .iter()
                .filter(|c| c.delta.role.is_some())
                .count();
            acc.push(&chunk);
        }
        let meta = stream.meta().clone();
        let resp = acc.finish();
        assert_eq!(resp.text(), question, "stream {i}");
        assert_eq!(roles, 1, "stream {i} showed {roles} beginnings");
        assert!(resp.usage.is_some(), "stream {i} has no usage chunk");
        assert!(meta.ttft.is_some());
        if meta.attempts > 1 {
            retried += 1;
        }
    }
    assert!(retried > 5, "only {retried} streams needed a retry");
}

#[tokio::test]
async fn a_stall_is_detected_then_retried() {
    let mock = MockServer::start(MockConfig::default())
        .await
        .expect("mock starts");
    let cfg = fast_config(&mock.url(), 1)
        .stall_timeout(Duration::from_millis(300))
        .header("x-mock-fault", "stall");
    let c = client(cfg);
    let req = ChatCompletionRequest::new("gpt-4o-mini", vec![ChatMessage::user("hello")]);

    let err = c.chat(&req).await.expect_err("every attempt stalls");
    let ClientError::RetriesExhausted { attempts, last } = &err else {
        panic!("expected RetriesExhausted, got {err:?}");
    };
    assert_eq!(*attempts, 2);
    assert!(
        matches!(**last, ClientError::StreamStalled { .. }),
        "{last:?}"
    );
    assert!(err.hint().unwrap_or_default().contains("--stall-timeout"));
    assert_eq!(mock.request_count(), 2);

    let mut stream = c.chat_stream(&req).await.expect("headers arrive");
    let first = stream.next().await.expect("an item");
    let err = first.expect_err("the stream stalls");
    let ClientError::RetriesExhausted { last, .. } = &err else {
        panic!("expected RetriesExhausted, got {err:?}");
    };
    assert!(
        matches!(**last, ClientError::StreamStalled { .. }),
        "{last:?}"
    );
    assert!(stream.next().await.is_none());
    assert_eq!(mock.request_count(), 4);
}
