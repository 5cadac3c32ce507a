//! The Responses API against llmkit-mock: create (whole, streamed, background), retrieve,
//! delete, cancel, input items, input tokens, retries on faults, and chat requests sent over
//! Responses with the fallback to chat on a server without it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use llmkit_client::{ClientError, HttpClient, WireApi, is_missing_endpoint};
use llmkit_testkit::{Fault, MOCK_TURNS, MockConfig, MockServer};
use llmkit_types::{
    ChatCompletionRequest, ChatMessage, CreateResponseRequest, FunctionTool, ResponseInput,
    ResponseItem, ResponseStatus, ResponseStreamEvent, ResponseTool, ResponseToolChoice,
};
use serde_json::{Value, json};

use crate::support::{client, fast_config};

async fn mock(cfg: MockConfig) -> MockServer {
    MockServer::start(cfg).await.expect("mock starts")
}

fn bodies_on(mock: &MockServer, path: &str) -> Vec<Value> {
    mock.requests()
        .into_iter()
        .filter(|e| e["path"] == path)
        .map(|e| e["body"].clone())
        .collect()
}

#[tokio::test]
async fn a_whole_response_carries_text_usage_and_the_request_id() {
    let m = mock(MockConfig::default()).await;
    let c = client(fast_config(&m.url(), 0));
    let r = c
        .create_response(&CreateResponseRequest::new("gpt-5", "hello there"))
        .await
        .unwrap();
    assert_eq!(r.body.status, ResponseStatus::Completed);
    assert_eq!(r.body.output_text(), "hello there");
    let usage = r.body.usage.as_ref().unwrap();
    assert_eq!(usage.output_tokens, 2);
    assert!(usage.input_tokens > 0);
    assert!(
        r.meta
            .request_id
            .as_deref()
            .unwrap()
            .starts_with("req_mock_")
    );
    assert_eq!(r.meta.attempts, 1);
}

#[tokio::test]
async fn a_streamed_response_delivers_text_reasoning_and_the_final_response() {
    let m = mock(MockConfig::default()).await;
    let c = client(fast_config(&m.url(), 0));
    let req = CreateResponseRequest::new("o4-mini", "why is the sky blue")
        .reasoning(Some("low"), Some("auto"));
    let mut s = c.create_response_stream(&req).await.unwrap();
    let (mut text, mut summary, mut kinds) = (String::new(), String::new(), Vec::new());
    let mut last = None;
    while let Some(ev) = s.next().await {
        let ev = ev.unwrap();
        kinds.push(ev.kind().to_string());
        match &ev {
            ResponseStreamEvent::OutputTextDelta { delta, .. } => text.push_str(delta),
            ResponseStreamEvent::ReasoningSummaryTextDelta { delta, .. } => summary.push_str(delta),
            ResponseStreamEvent::Completed { response, .. } => last = Some(response.clone()),
            _ => {}
        }
    }
    assert_eq!(text, "why is the sky blue");
    assert_eq!(summary, "Considering the request: why is the sky blue.");
    assert_eq!(kinds.first().map(String::as_str), Some("response.created"));
    assert!(kinds.iter().any(|k| k == "response.output_item.added"));
    assert!(
        kinds.iter().any(|k| k == "response.content_part.added"),
        "kept as Other"
    );
    let last = last.unwrap();
    assert_eq!(last.output_text(), text);
    assert!(last.usage.unwrap().reasoning_tokens() > 0);
    assert!(s.meta().ttft.is_some());
    // The same request collected gives the same answer.
    let (whole, _) = c
        .create_response_stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(whole.output_text(), text);
    assert_eq!(whole.reasoning_summary(), summary);
}

#[tokio::test]
async fn forced_function_calls_stream_their_arguments() {
    let m = mock(MockConfig::default()).await;
    let c = client(fast_config(&m.url(), 0));
    let mut req = CreateResponseRequest::new("gpt-5", "weather in Paris?");
    req.tools = Some(vec![ResponseTool::Function(FunctionTool {
        name: "get_weather".into(),
        description: Some("the weather".into()),
        parameters: Some(
            json!({"type": "object", "properties": {"city": {"type": "string"}},
                                "required": ["city"], "additionalProperties": false}),
        ),
        strict: Some(true),
    })]);
    req.tool_choice = Some(ResponseToolChoice::function("get_weather"));
    let (r, _) = c
        .create_response_stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    let calls = r.function_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "get_weather");
    let args: Value = serde_json::from_str(&calls[0].arguments).unwrap();
    assert!(args["city"].is_string(), "{args}");
    // The result goes back as a function_call_output item, chained by id.
    let next = CreateResponseRequest::new(
        "gpt-5",
        vec![ResponseItem::function_output(
            calls[0].call_id.clone(),
            "sunny",
        )],
    )
    .previous_response_id(r.id.clone());
    let r2 = c.create_response(&next).await.unwrap();
    assert_eq!(r2.body.status, ResponseStatus::Completed);
}

#[tokio::test]
async fn previous_response_ids_and_stateless_reasoning_keep_the_context() {
    let m = mock(MockConfig::default()).await;
    let c = client(fast_config(&m.url(), 0));
    let first = c
        .create_response(&CreateResponseRequest::new("gpt-5", "one"))
        .await
        .unwrap()
        .body;
    let second = c
        .create_response(
            &CreateResponseRequest::new("gpt-5", MOCK_TURNS).previous_response_id(first.id.clone()),
        )
        .await
        .unwrap()
        .body;
    assert_eq!(second.output_text(), "turns: 2");
    // With `store: false` nothing can be chained by id: the caller sends the items back,
    // reasoning included, encrypted.
    let stateless = CreateResponseRequest::new("o4-mini", "one")
        .reasoning(Some("low"), None)
        .stateless();
    let r = c.create_response(&stateless).await.unwrap().body;
    let ResponseItem::Reasoning(reasoning) = &r.output[0] else {
        panic!("{:?}", r.output)
    };
    assert!(reasoning.encrypted_content.is_some());
    let e = c.retrieve_response(&r.id).await.unwrap_err();
    assert!(matches!(e, ClientError::Api { status: 404, .. }), "{e}");
    let mut items = vec![ResponseItem::message(llmkit_types::Role::User, "one")];
    items.extend(r.output.clone());
    items.push(ResponseItem::message(llmkit_types::Role::User, MOCK_TURNS));
    let mut next = stateless.clone();
    next.input = ResponseInput::Items(items.clone());
    let r2 = c.create_response(&next).await.unwrap().body;
    assert_eq!(r2.output_text(), "turns: 2");
    // Reasoning the mock did not encrypt is refused, as OpenAI refuses forged content.
    if let ResponseItem::Reasoning(r) = &mut items[1] {
        r.encrypted_content = Some("forged".into());
    }
    next.input = ResponseInput::Items(items);
    let e = c.create_response(&next).await.unwrap_err();
    assert!(matches!(e, ClientError::Api { status: 400, .. }), "{e}");
}

#[tokio::test]
async fn background_responses_are_polled_and_cancelled() {
    let m = mock(MockConfig {
        response_polls: 3,
        ..MockConfig::default()
    })
    .await;
    let c = client(fast_config(&m.url(), 0));
    let req = CreateResponseRequest::new("o3-pro", "slow question").background(true);
    let queued = c.create_response(&req).await.unwrap().body;
    assert_eq!(queued.status, ResponseStatus::Queued);
    let done = c
        .wait_response(&queued.id, Duration::from_millis(1))
        .await
        .unwrap()
        .body;
    assert_eq!(done.status, ResponseStatus::Completed);
    assert_eq!(done.output_text(), "slow question");
    let other = c.create_response(&req).await.unwrap().body;
    let cancelled = c.cancel_response(&other.id).await.unwrap().body;
    assert_eq!(cancelled.status, ResponseStatus::Cancelled);
    let cancels: Vec<_> = m
        .requests()
        .into_iter()
        .filter(|e| e["path"] == format!("/v1/responses/{}/cancel", other.id))
        .collect();
    assert_eq!(cancels.len(), 1);
    // A finished response cannot be cancelled.
    assert!(c.cancel_response(&queued.id).await.is_err());
}

#[tokio::test]
async fn retrieve_list_count_and_delete() {
    let m = mock(MockConfig::default()).await;
    let c = client(fast_config(&m.url(), 0));
    let req = CreateResponseRequest::new(
        "gpt-5",
        vec![
            ResponseItem::message(llmkit_types::Role::Developer, "be brief"),
            ResponseItem::message(llmkit_types::Role::User, "hi"),
        ],
    );
    let count = c.response_input_tokens(&req).await.unwrap().body;
    let r = c.create_response(&req).await.unwrap().body;
    assert_eq!(count.input_tokens, r.usage.as_ref().unwrap().input_tokens);
    let got = c.retrieve_response(&r.id).await.unwrap().body;
    assert_eq!(got.id, r.id);
    let items = c
        .response_input_items(&r.id, Some(10), None)
        .await
        .unwrap()
        .body;
    assert_eq!(items.data.len(), 2);
    assert!(c.delete_response(&r.id).await.unwrap().body.deleted);
    assert!(c.retrieve_response(&r.id).await.is_err());
    assert!(matches!(
        c.retrieve_response("../models").await,
        Err(ClientError::InvalidInput(_))
    ));
    // input_tokens takes only the fields its endpoint knows.
    let counted = bodies_on(&m, "/v1/responses/input_tokens");
    assert!(counted[0].get("store").is_none() && counted[0].get("input").is_some());
}

#[tokio::test]
async fn faults_are_retried_as_for_chat() {
    let m = mock(MockConfig {
        fault_rate: 1.0,
        faults: vec![Fault::S500],
        ..MockConfig::default()
    })
    .await;
    let c = client(fast_config(&m.url(), 2));
    let e = c
        .create_response(&CreateResponseRequest::new("gpt-5", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::RetriesExhausted { attempts: 3, .. }),
        "{e}"
    );
    assert_eq!(m.request_count(), 3);
    // A stream cut before any output is retried transparently.
    let m = mock(MockConfig {
        fault_rate: 0.5,
        faults: vec![Fault::Truncate, Fault::Stall],
        seed: 3,
        ..MockConfig::default()
    })
    .await;
    let c = client(fast_config(&m.url(), 8));
    for _ in 0..4 {
        let (r, meta) = c
            .create_response_stream(&CreateResponseRequest::new("gpt-5", "steady words"))
            .await
            .unwrap()
            .collect_response()
            .await
            .unwrap();
        assert_eq!(
            r.output_text(),
            "steady words",
            "after {} attempts",
            meta.attempts
        );
    }
    assert!(m.requests().iter().any(|e| !e["fault"].is_null()));
}

#[tokio::test]
async fn chat_requests_go_over_responses_with_the_privacy_default() {
    let m = mock(MockConfig::default()).await;
    let c = client(fast_config(&m.url(), 0).api(WireApi::Responses));
    let req = ChatCompletionRequest::new(
        "gpt-5",
        vec![ChatMessage::system("be brief"), ChatMessage::user("hello")],
    );
    let r = c.chat(&req).await.unwrap();
    assert_eq!(r.body.text(), "hello");
    assert!(r.body.id.starts_with("resp_"));
    let mut s = c.chat_stream(&req).await.unwrap();
    let mut text = String::new();
    while let Some(chunk) = s.next().await {
        text.push_str(chunk.unwrap().delta_text().unwrap_or(""));
    }
    assert_eq!(text, "hello");
    let sent = bodies_on(&m, "/v1/responses");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["store"], false);
    assert_eq!(sent[0]["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(sent[0]["input"][0]["role"], "system");
    assert!(bodies_on(&m, "/v1/chat/completions").is_empty());
    // `-o background=true` is stored (background mode needs it) and polled to the end.
    let mut bg = req.clone();
    bg.extra.insert("background".into(), json!(true));
    let r = c.chat(&bg).await.unwrap();
    assert_eq!(r.body.text(), "hello");
    let last = bodies_on(&m, "/v1/responses").pop().unwrap();
    assert_eq!(
        (&last["background"], &last["store"]),
        (&json!(true), &json!(true))
    );
    assert!(m.requests().iter().any(|e| {
        e["method"] == "GET"
            && e["path"]
                .as_str()
                .unwrap()
                .starts_with("/v1/responses/resp_")
    }));
}

#[tokio::test]
async fn a_server_without_responses_falls_back_to_chat_once() {
    let m = mock(MockConfig {
        no_responses: true,
        ..MockConfig::default()
    })
    .await;
    let notices = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = notices.clone();
    let cfg = fast_config(&m.url(), 2)
        .api(WireApi::ResponsesOrChat)
        .notice(move |n| seen.lock().unwrap().push(n.to_string()));
    let c: HttpClient = client(cfg);
    let req = ChatCompletionRequest::new("local-model", vec![ChatMessage::user("hi")]);
    assert_eq!(c.chat(&req).await.unwrap().body.text(), "hi");
    let (r, _) = c
        .chat_stream(&req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(r.text(), "hi");
    assert!(c.fell_back());
    assert_eq!(
        notices.lock().unwrap().len(),
        1,
        "{:?}",
        notices.lock().unwrap()
    );
    assert!(notices.lock().unwrap()[0].contains("chat completions"));
    assert_eq!(
        bodies_on(&m, "/v1/responses").len(),
        1,
        "asked once, not retried"
    );
    assert_eq!(bodies_on(&m, "/v1/chat/completions").len(), 2);
    // Strict Responses mode reports the missing endpoint instead, with a hint.
    let strict = client(fast_config(&m.url(), 2).api(WireApi::Responses));
    let e = strict.chat(&req).await.unwrap_err();
    assert!(matches!(e, ClientError::Unsupported { .. }), "{e}");
    assert!(e.hint().unwrap().contains("--api chat"), "{:?}", e.hint());
    // A Responses-only model never falls back: chat does not serve it.
    let either = client(fast_config(&m.url(), 2).api(WireApi::ResponsesOrChat));
    let pro = ChatCompletionRequest::new("o3-pro", vec![ChatMessage::user("hi")]);
    let e = either.chat(&pro).await.unwrap_err();
    assert!(
        e.to_string().contains("served only on the Responses API"),
        "{e}"
    );
    assert!(!either.fell_back());
    // On a compatible server, chat unless the model is Responses-only.
    let auto = client(fast_config(&m.url(), 2).api(WireApi::ChatUnlessResponsesOnly));
    assert_eq!(auto.chat(&req).await.unwrap().body.text(), "hi");
    assert!(auto.chat(&pro).await.is_err());
    let raw = llmkit_client::ClientError::Api {
        retry_after: None,
        rate_limit: None,
        status: 404,
        error: None,
        request_id: None,
        raw: String::new(),
    };
    assert!(is_missing_endpoint(&raw));
}
