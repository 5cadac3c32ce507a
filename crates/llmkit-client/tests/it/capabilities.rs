//! Capability fallbacks against llmkit-mock acting as servers without `json_schema`,
//! `stream_options`, `tools` or `/responses`: the fallback request, the one notice, what the
//! memory hears, and a client told in advance going straight to the fallback.

use std::sync::{Arc, Mutex};

use llmkit_client::{
    CapabilityMemory, ClientConfig, ClientError, Feature, HttpClient, Rejection, WireApi,
};
use llmkit_testkit::{MockConfig, MockServer};
use llmkit_types::{ChatCompletionRequest, ChatMessage, ResponseFormat};
use serde_json::{Value, json};

use crate::support::{client, fast_config};

/// A memory that keeps what it hears.
#[derive(Default)]
struct Recorder(Mutex<Vec<Rejection>>);

impl CapabilityMemory for Recorder {
    fn remember(&self, rejection: &Rejection) {
        self.0.lock().unwrap().push(rejection.clone());
    }
}

fn logged(m: &MockServer, path: &str) -> Vec<Value> {
    m.requests()
        .into_iter()
        .filter(|e| e["path"] == path)
        .collect()
}

fn schema_request() -> ChatCompletionRequest {
    let mut r = ChatCompletionRequest::new("m", vec![ChatMessage::user("Bob is 42")]);
    r.response_format = Some(ResponseFormat::json_schema(
        "person",
        json!({"type": "object", "properties": {"age": {"type": "integer"}},
               "required": ["age"], "additionalProperties": false}),
    ));
    r
}

/// A client with the fallbacks on, its notices and its memory.
fn watched(cfg: ClientConfig) -> (HttpClient, Arc<Mutex<Vec<String>>>, Arc<Recorder>) {
    let notices = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&notices);
    let memory = Arc::new(Recorder::default());
    let cfg = cfg
        .notice(move |n| seen.lock().unwrap().push(n.to_string()))
        .capability_memory(Arc::clone(&memory) as Arc<dyn CapabilityMemory>);
    (client(cfg), notices, memory)
}

#[tokio::test]
async fn json_schema_falls_back_to_json_object_once() {
    for status in [400u16, 500] {
        let m = MockServer::start(MockConfig {
            no_json_schema: Some(status),
            ..MockConfig::default()
        })
        .await
        .unwrap();
        // Retries allowed: the 500 that names the field must still be sent only once.
        let (c, notices, memory) = watched(fast_config(&m.url(), 3).fallbacks(Vec::new()));
        let r = c.chat(&schema_request()).await.unwrap();
        let answer: Value = serde_json::from_str(r.body.text()).unwrap();
        assert!(answer["age"].is_i64(), "{answer}");
        let (s, _) = c
            .chat_stream(&schema_request())
            .await
            .unwrap()
            .collect_response()
            .await
            .unwrap();
        assert!(serde_json::from_str::<Value>(s.text()).unwrap()["age"].is_i64());
        let log = logged(&m, "/v1/chat/completions");
        let statuses: Vec<u64> = log.iter().map(|e| e["status"].as_u64().unwrap()).collect();
        assert_eq!(statuses, [u64::from(status), 200, 200], "{status}");
        assert_eq!(
            notices.lock().unwrap().len(),
            1,
            "{:?}",
            notices.lock().unwrap()
        );
        assert!(notices.lock().unwrap()[0].contains("for this server from now on"));
        let heard = memory.0.lock().unwrap().clone();
        assert_eq!(heard.len(), 1);
        assert_eq!(
            (heard[0].feature, heard[0].status),
            (Feature::JsonSchema, status)
        );
        assert!(
            heard[0].message.contains("response_format"),
            "{}",
            heard[0].message
        );
        assert_eq!(c.missing_features(), [Feature::JsonSchema]);

        // Told in advance, a client sends the fallback at once.
        let told = client(fast_config(&m.url(), 0).fallbacks(vec![Feature::JsonSchema]));
        told.chat(&schema_request()).await.unwrap();
        let log = logged(&m, "/v1/chat/completions");
        assert_eq!(log.len(), 4);
        assert_eq!(log[3]["status"], 200);
        assert_eq!(log[3]["body"]["response_format"]["type"], "json_object");
    }
}

#[tokio::test]
async fn without_fallbacks_the_rejection_is_returned_unretried() {
    let m = MockServer::start(MockConfig {
        no_json_schema: Some(500),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let c = client(fast_config(&m.url(), 3));
    let e = c.chat(&schema_request()).await.unwrap_err();
    assert_eq!(e.status(), Some(500), "{e}");
    assert!(!matches!(e, ClientError::RetriesExhausted { .. }), "{e}");
    assert_eq!(logged(&m, "/v1/chat/completions").len(), 1);
}

#[tokio::test]
async fn stream_options_fall_back_to_a_plain_stream() {
    let m = MockServer::start(MockConfig {
        no_stream_options: true,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let (c, notices, memory) = watched(fast_config(&m.url(), 2).fallbacks(Vec::new()));
    let req = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi there")]);
    let (r, _) = c
        .chat_stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.text(), "hi there");
    // The server sent no usage: the pipeline counts it (see the CLI's fallbacks test).
    assert!(r.usage.is_none());
    let log = logged(&m, "/v1/chat/completions");
    assert_eq!(log.len(), 2);
    assert!(log[1]["body"].get("stream_options").is_none());
    assert_eq!(notices.lock().unwrap().len(), 1);
    assert_eq!(memory.0.lock().unwrap()[0].feature, Feature::StreamOptions);
    // Whole answers never carried it, so they are untouched.
    c.chat(&req).await.unwrap();
    assert_eq!(logged(&m, "/v1/chat/completions").len(), 3);
}

#[tokio::test]
async fn tools_are_a_clear_error_and_not_remembered() {
    let m = MockServer::start(MockConfig {
        no_tools: true,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let (c, _, memory) = watched(fast_config(&m.url(), 2).fallbacks(Vec::new()));
    let mut req = ChatCompletionRequest::new("qwen-local", vec![ChatMessage::user("hi")]);
    req.tools = Some(vec![
        serde_json::from_value(json!({"type": "function", "function": {"name": "f"}})).unwrap(),
    ]);
    let e = c.chat(&req).await.unwrap_err();
    assert!(
        matches!(e, ClientError::Unsupported { options: false, .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("does not support tool calling"),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("qwen-local"), "{:?}", e.hint());
    assert!(memory.0.lock().unwrap().is_empty());
    assert_eq!(logged(&m, "/v1/chat/completions").len(), 1);
}

#[tokio::test]
async fn a_remembered_missing_responses_api_goes_straight_to_chat() {
    let m = MockServer::start(MockConfig {
        no_responses: true,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let req = ChatCompletionRequest::new("local-model", vec![ChatMessage::user("hi")]);
    let (c, notices, memory) = watched(fast_config(&m.url(), 2).api(WireApi::ResponsesOrChat));
    assert_eq!(c.chat(&req).await.unwrap().body.text(), "hi");
    assert_eq!(notices.lock().unwrap().len(), 1);
    let heard = memory.0.lock().unwrap().clone();
    assert_eq!(
        (heard[0].feature, heard[0].status),
        (Feature::Responses, 404)
    );
    assert_eq!(logged(&m, "/v1/responses").len(), 1);

    // The next run, told what was remembered, never asks /responses.
    let told = client(
        fast_config(&m.url(), 2)
            .api(WireApi::ResponsesOrChat)
            .fallbacks(vec![Feature::Responses]),
    );
    assert!(told.fell_back());
    assert_eq!(told.chat(&req).await.unwrap().body.text(), "hi");
    assert_eq!(logged(&m, "/v1/responses").len(), 1);
}
