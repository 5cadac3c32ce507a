//! Every request body the client sends to `POST /v1/responses`, for two dozen option
//! combinations (chat requests converted at the backend boundary, streamed and not, and
//! Responses requests built directly), validates against the `CreateResponse` schema of
//! OpenAI's spec as vendored in `llmkit-types/tests/fixtures/openapi-subset.json` (pinned by
//! the sha256 in its `SOURCE`). The bodies are the ones the mock received, not rebuilt here.

use std::path::PathBuf;
use std::sync::OnceLock;

use llmkit_client::{HttpClient, ResponsesOptions, WireApi};
use llmkit_testkit::{MockConfig, MockServer};
use llmkit_types::{
    ChatCompletionRequest, ChatMessage, ContentPart, CreateResponseRequest, FileInput,
    FunctionCall, FunctionDef, ImageDetail, ImageUrl, NamedFunction, NamedToolChoice,
    ResponseFormat, ResponseInput, ResponseItem, Role, Tool, ToolCall, ToolChoice,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{client, fast_config};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../llmkit-types/tests/fixtures")
}

/// The vendored subset, checked against its pinned sha256, with OpenAPI 3.0's `nullable`
/// rewritten for JSON Schema 2020-12 (as the types crate's contract test does), and a
/// `oneOf` that carries a `discriminator` read as OpenAPI reads it: the branch is the one
/// the discriminator picks, not "exactly one branch matches". JSON Schema's exclusive
/// `oneOf` rejects every message with content parts, which fits both `EasyInputMessage`
/// and `InputMessage` (`a_message_with_parts_fits_two_input_item_branches` shows it).
pub(crate) fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let bytes = std::fs::read(fixtures().join("openapi-subset.json")).unwrap();
        let source = std::fs::read_to_string(fixtures().join("SOURCE")).unwrap();
        let pinned = source
            .lines()
            .find_map(|l| l.strip_prefix("subset-sha256: "))
            .unwrap()
            .trim();
        assert_eq!(format!("{:x}", Sha256::digest(&bytes)), pinned);
        let mut v: Value = serde_json::from_slice(&bytes).unwrap();
        apply_nullable(&mut v);
        discriminated_one_of_as_any_of(&mut v);
        v
    })
}

fn apply_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for v in map.values_mut() {
                apply_nullable(v);
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                let inner = Value::Object(std::mem::take(map));
                map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(apply_nullable),
        _ => {}
    }
}

fn discriminated_one_of_as_any_of(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for v in map.values_mut() {
                discriminated_one_of_as_any_of(v);
            }
            if map.contains_key("discriminator")
                && let Some(branches) = map.remove("oneOf")
            {
                map.insert("anyOf".into(), branches);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(discriminated_one_of_as_any_of),
        _ => {}
    }
}

fn check_create_response(body: &Value) -> Vec<String> {
    validate("CreateResponse", body)
}

pub(crate) fn validate(schema: &str, body: &Value) -> Vec<String> {
    let mut root = spec().clone();
    root["$ref"] = json!(format!("#/components/schemas/{schema}"));
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap();
    validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn user(text: &str) -> ChatCompletionRequest {
    ChatCompletionRequest::new("gpt-5", vec![ChatMessage::user(text)])
}

fn weather_tool() -> Tool {
    Tool::function(FunctionDef {
        name: "get_weather".into(),
        description: Some("Current weather".into()),
        parameters: Some(
            json!({"type": "object", "properties": {"city": {"type": "string"}},
                                "required": ["city"], "additionalProperties": false}),
        ),
        strict: Some(true),
    })
}

/// Chat requests, each with a different set of options.
fn chat_cases() -> Vec<(&'static str, ChatCompletionRequest)> {
    let mut cases = vec![
        ("plain", user("hello")),
        (
            "system",
            ChatCompletionRequest::new(
                "gpt-5",
                vec![ChatMessage::system("be brief"), ChatMessage::user("hi")],
            ),
        ),
        (
            "developer and sampling",
            ChatCompletionRequest::new(
                "gpt-4.1",
                vec![ChatMessage::developer("rules"), ChatMessage::user("hi")],
            )
            .temperature(0.3)
            .top_p(0.9),
        ),
        ("small max_tokens", user("hi").max_tokens(5)),
        (
            "multi-turn",
            ChatCompletionRequest::new(
                "gpt-5",
                vec![
                    ChatMessage::user("one"),
                    ChatMessage::assistant("two"),
                    ChatMessage::user("three"),
                ],
            ),
        ),
        (
            "json_schema",
            user("x").response_format(ResponseFormat::json_schema(
                "answer",
                json!({"type": "object", "properties": {"a": {"type": "string"}},
                       "required": ["a"], "additionalProperties": false}),
            )),
        ),
        (
            "json_object",
            user("x").response_format(ResponseFormat::JsonObject),
        ),
        (
            "text format",
            user("x").response_format(ResponseFormat::Text),
        ),
    ];
    let mut r = user("x");
    r.max_completion_tokens = Some(500);
    cases.push(("max_completion_tokens", r));
    for (name, choice) in [
        ("tools auto", Some(ToolChoice::Mode("auto".into()))),
        ("tools required", Some(ToolChoice::Mode("required".into()))),
        ("tools none", Some(ToolChoice::Mode("none".into()))),
        (
            "tools named",
            Some(ToolChoice::Named(NamedToolChoice {
                kind: "function".into(),
                function: NamedFunction {
                    name: "get_weather".into(),
                },
            })),
        ),
        ("tools without choice", None),
    ] {
        let mut r = user("weather in Paris?");
        r.tools = Some(vec![weather_tool()]);
        r.tool_choice = choice;
        cases.push((name, r));
    }
    let mut r = ChatCompletionRequest::new(
        "gpt-5",
        vec![
            ChatMessage::user("weather in Paris?"),
            ChatMessage::assistant_tool_calls(vec![ToolCall {
                id: "call_1".into(),
                kind: "function".into(),
                function: FunctionCall {
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Paris\"}".into(),
                },
            }]),
            ChatMessage::tool_result("call_1", "sunny, 21 C"),
        ],
    );
    r.tools = Some(vec![weather_tool()]);
    r.parallel_tool_calls = Some(false);
    cases.push(("tool results", r));
    cases.push((
        "image by url",
        ChatCompletionRequest::new(
            "gpt-5",
            vec![ChatMessage::user_parts(vec![
                ContentPart::Text {
                    text: "what is this?".into(),
                },
                ContentPart::ImageUrl {
                    image_url: ImageUrl {
                        url: "https://example.com/cat.png".into(),
                        detail: Some(ImageDetail::Low),
                    },
                },
            ])],
        ),
    ));
    cases.push((
        "image as data",
        ChatCompletionRequest::new(
            "gpt-5",
            vec![ChatMessage::user_parts(vec![ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: "data:image/png;base64,iVBORw0KGgo=".into(),
                    detail: None,
                },
            }])],
        ),
    ));
    cases.push((
        "pdf file",
        ChatCompletionRequest::new(
            "gpt-5",
            vec![ChatMessage::user_parts(vec![
                ContentPart::File {
                    file: FileInput {
                        filename: Some("a.pdf".into()),
                        file_data: Some("data:application/pdf;base64,JVBERi0=".into()),
                        file_id: None,
                    },
                },
                ContentPart::Text {
                    text: "summarise".into(),
                },
            ])],
        ),
    ));
    let mut r = user("think");
    r.reasoning_effort = Some("high".into());
    cases.push(("reasoning effort", r));
    let mut r = user("x");
    r.metadata = Some([("job".to_string(), "7".to_string())].into_iter().collect());
    r.service_tier = Some("flex".into());
    r.user = Some("user-1".into());
    cases.push(("metadata and tier", r));
    let mut r = user("x");
    r.extra.insert("verbosity".into(), json!("low"));
    r.extra
        .insert("prompt_cache_key".into(), json!("session-1"));
    r.extra.insert("truncation".into(), json!("auto"));
    cases.push(("-o options", r));
    let mut r = user("x");
    r.store = Some(true);
    cases.push(("store on the request", r));
    // A later turn: the assistant's encrypted reasoning goes back as a reasoning item.
    let mut answer = ChatMessage::assistant("earlier answer");
    answer.extra.insert(
        llmkit_types::REASONING_ITEMS_FIELD.into(),
        json!([{"id": "rs_1", "summary": [], "encrypted_content": "enc_mock_000001"}]),
    );
    cases.push((
        "encrypted reasoning carried over",
        ChatCompletionRequest::new(
            "o4-mini",
            vec![ChatMessage::user("q"), answer, ChatMessage::user("and?")],
        ),
    ));
    cases
}

/// Responses requests built directly.
fn direct_cases() -> Vec<(&'static str, CreateResponseRequest)> {
    vec![
        (
            "background",
            CreateResponseRequest::new("o3-pro", "slow")
                .background(true)
                .store(true),
        ),
        (
            "instructions and previous id",
            CreateResponseRequest::new("gpt-5", "and then?")
                .instructions("be brief")
                .previous_response_id("resp_mock000001"),
        ),
        (
            "stateless with reasoning summary",
            CreateResponseRequest::new("o4-mini", "why")
                .reasoning(Some("medium"), Some("auto"))
                .stateless()
                .max_output_tokens(64),
        ),
    ]
}

#[tokio::test]
async fn every_body_sent_to_responses_validates_against_create_response() {
    let m = MockServer::start(MockConfig::default()).await.unwrap();
    let plain = client(fast_config(&m.url(), 0).api(WireApi::Responses));
    let summarising = client(
        fast_config(&m.url(), 0)
            .api(WireApi::Responses)
            .responses_options(ResponsesOptions {
                store: true,
                reasoning_summary: Some("auto".into()),
            }),
    );
    let mut sent = 0;
    for (name, req) in chat_cases() {
        for c in [&plain, &summarising] {
            c.chat(&req).await.unwrap_or_else(|e| panic!("{name}: {e}"));
            c.chat_stream(&req.clone().streaming())
                .await
                .unwrap_or_else(|e| panic!("{name} streamed: {e}"))
                .collect_response()
                .await
                .unwrap_or_else(|e| panic!("{name} streamed: {e}"));
            sent += 2;
        }
    }
    let first = plain
        .create_response(&CreateResponseRequest::new("gpt-5", "one"))
        .await
        .unwrap()
        .body;
    sent += 1;
    let mut stateless_turn = CreateResponseRequest::new("o4-mini", "x")
        .reasoning(Some("low"), None)
        .stateless();
    let reasoning_output = plain.create_response(&stateless_turn).await.unwrap().body;
    sent += 1;
    let mut items = vec![ResponseItem::message(Role::User, "x")];
    items.extend(reasoning_output.output);
    items.push(ResponseItem::message(Role::User, "and?"));
    stateless_turn.input = ResponseInput::Items(items);
    plain.create_response(&stateless_turn).await.unwrap();
    sent += 1;
    for (name, mut req) in direct_cases() {
        if req.previous_response_id.is_some() {
            req.previous_response_id = Some(first.id.clone());
        }
        let c: &HttpClient = &plain;
        c.create_response(&req)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        c.create_response_stream(&req)
            .await
            .unwrap_or_else(|e| panic!("{name} streamed: {e}"))
            .collect_response()
            .await
            .unwrap_or_else(|e| panic!("{name} streamed: {e}"));
        sent += 2;
    }
    let bodies: Vec<Value> = m
        .requests()
        .into_iter()
        .filter(|e| e["path"] == "/v1/responses")
        .map(|e| e["body"].clone())
        .collect();
    assert_eq!(bodies.len(), sent);
    assert!(sent >= 40, "{sent}");
    let distinct: std::collections::BTreeSet<String> =
        bodies.iter().map(Value::to_string).collect();
    assert!(distinct.len() >= 20, "{} distinct bodies", distinct.len());
    let failures: Vec<String> = bodies
        .iter()
        .filter_map(|b| {
            let errors = check_create_response(b);
            (!errors.is_empty()).then(|| format!("{b}\n  {}", errors.join("\n  ")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} bodies fail CreateResponse:\n{}",
        failures.len(),
        bodies.len(),
        failures.join("\n")
    );
}

/// Why the `discriminator` reading above is needed: a user message with content parts, as
/// OpenAI's own SDKs send it, is valid against two branches of `InputItem`.
#[test]
fn a_message_with_parts_fits_two_input_item_branches() {
    let message = json!({"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "what is this?"},
                    {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"}]});
    assert_eq!(validate("EasyInputMessage", &message), Vec::<String>::new());
    assert_eq!(validate("InputMessage", &message), Vec::<String>::new());
    assert_eq!(validate("InputItem", &message), Vec::<String>::new());
    // A message that fits no branch is still rejected.
    let bad = json!({"type": "message", "role": "robot", "content": 5});
    assert!(!validate("InputItem", &bad).is_empty());
}
