//! The task library against the in-process mock: structured output, repair, map-reduce.

use llmkit_client::{Backend, ClientConfig, HttpClient, Pipeline, RequestInfo};
use llmkit_tasks::{
    ClassifyOptions, StructuredMode, SummarizeOptions, TaskError, TaskRunner, Templates, classify,
    summarize,
};
use llmkit_testkit::{MockConfig, MockServer};
use llmkit_types::ChatCompletionRequest;

async fn runner(mock: &MockServer) -> TaskRunner {
    let client =
        HttpClient::new(ClientConfig::new(format!("{}/v1", mock.url())).api_key("sk-test"))
            .unwrap();
    let pipeline = Pipeline::new(Backend::Http(client), RequestInfo::default());
    let proto = ChatCompletionRequest::new("gpt-4o-mini", Vec::new());
    TaskRunner::new(pipeline, proto, Templates::new(None))
}

#[tokio::test]
async fn classify_returns_one_of_the_labels() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let r = runner(&mock).await;
    let opts = ClassifyOptions::new(&["red".into(), "blue".into(), "red".into()], false).unwrap();
    assert_eq!(opts.labels, vec!["red", "blue"]);
    let c = classify(&r, "the sky", &opts).await.unwrap();
    assert!(["red", "blue"].contains(&c.labels[0].label.as_str()));
    assert_eq!(r.stats().requests, 1);
}

#[tokio::test]
async fn prompt_mode_repairs_then_fails() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let r = runner(&mock)
        .await
        .structured_mode(StructuredMode::Prompt)
        .repair_attempts(1);
    let opts = ClassifyOptions::new(&["a".into(), "b".into()], false).unwrap();
    let e = classify(&r, "MOCK_REPLY: not json", &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(e, TaskError::InvalidOutput { attempts: 2, .. }),
        "{e}"
    );
    assert!(!e.is_usage());
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn scripted_valid_json_passes_prompt_mode() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let r = runner(&mock).await.structured_mode(StructuredMode::Prompt);
    let opts = ClassifyOptions::new(&["a".into(), "b".into()], false).unwrap();
    let text = "MOCK_REPLY: Here you go: ```json\n{\"label\": \"b\", \"confidence\": 0.8}\n```";
    let c = classify(&r, text, &opts).await.unwrap();
    assert_eq!(c.labels[0].label, "b");
}

#[tokio::test]
async fn long_text_is_map_reduced_within_the_window() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let r = runner(&mock).await.window(2048).concurrency(3);
    let text = "Alpha beta gamma delta epsilon zeta eta theta. ".repeat(3000);
    let s = summarize(&r, &text, &SummarizeOptions::default())
        .await
        .unwrap();
    assert!(!s.is_empty());
    let stats = r.stats();
    assert!(stats.requests > 5, "{stats:?}");
    assert_eq!(stats.requests as usize, mock.requests().len());
}

#[tokio::test]
async fn empty_input_is_refused() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let r = runner(&mock).await;
    let e = summarize(&r, "   ", &SummarizeOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, TaskError::EmptyInput) && e.is_usage());
    assert_eq!(mock.requests().len(), 0);
}
