//! Validates serialised requests and sample responses against OpenAI's published OpenAPI
//! description, vendored in `tests/fixtures/openapi-subset.json` (the paths and schemas llmkit
//! uses, written by `tests/fixtures/vendor-openapi.py`, pinned by the sha256 in
//! `tests/fixtures/SOURCE`). A missing or altered subset fails every test here.

use std::path::PathBuf;
use std::sync::OnceLock;

use llmkit_types::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage,
    CompletionRequest, CompletionResponse, ContentPart, EmbeddingRequest, EmbeddingResponse,
    ErrorResponse, FunctionDef, ImageUrl, ModelList, ResponseFormat, Tool, ToolChoice,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The subset's sha256 as `SOURCE` records it.
fn pinned_sha256() -> String {
    let path = fixtures().join("SOURCE");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is missing ({e}): run vendor-openapi.py", path.display()));
    text.lines()
        .find_map(|l| l.strip_prefix("subset-sha256: "))
        .unwrap_or_else(|| panic!("{} has no subset-sha256 line", path.display()))
        .trim()
        .to_string()
}

/// The vendored subset's bytes, checked against the pinned sha256.
fn subset_bytes() -> Vec<u8> {
    let path = fixtures().join("openapi-subset.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the vendored OpenAPI subset {} is missing ({e}): run vendor-openapi.py",
            path.display()
        )
    });
    let actual = format!("{:x}", Sha256::digest(&bytes));
    assert_eq!(
        actual,
        pinned_sha256(),
        "{} does not match the sha256 in SOURCE: regenerate it with vendor-openapi.py \
         instead of editing it",
        path.display()
    );
    bytes
}

/// The parsed spec subset, loaded and verified once.
fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut value: Value =
            serde_json::from_slice(&subset_bytes()).expect("the OpenAPI subset is JSON");
        apply_nullable(&mut value);
        value
    })
}

/// Rewrites OpenAPI 3.0's `nullable: true`, which the spec still uses in places and which JSON
/// Schema 2020-12 ignores, into `anyOf: [schema, {type: null}]`.
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

/// Validates `instance` against `#/components/schemas/{schema}`, panicking with every error.
fn check(schema: &str, instance: &Value) {
    let mut root = spec().clone();
    root["$ref"] = json!(format!("#/components/schemas/{schema}"));
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema {schema} compiles: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{schema} rejects {instance:#}:\n{}",
        errors.join("\n")
    );
}

fn check_serialised<T: Serialize>(schema: &str, value: &T) {
    check(schema, &serde_json::to_value(value).unwrap());
}

/// A sample must validate against the spec and decode with our types.
fn check_sample<T: DeserializeOwned>(schema: &str, sample: Value) -> T {
    check(schema, &sample);
    serde_json::from_value(sample).unwrap_or_else(|e| panic!("{schema} sample decodes: {e}"))
}

#[test]
fn chat_requests_match_the_spec() {
    let simple = ChatCompletionRequest::new(
        "gpt-4o-mini",
        vec![ChatMessage::system("be brief"), ChatMessage::user("hi")],
    )
    .temperature(0.2)
    .top_p(0.9)
    .max_tokens(64)
    .n(2)
    .seed(7)
    .stop(vec!["\n\n".into()])
    .streaming();
    check_serialised("CreateChatCompletionRequest", &simple);

    let mut full = ChatCompletionRequest::new(
        "gpt-4o",
        vec![
            ChatMessage::developer("follow the rules"),
            ChatMessage::user_parts(vec![
                ContentPart::Text {
                    text: "what is in this image?".into(),
                },
                ContentPart::ImageUrl {
                    image_url: ImageUrl {
                        url: "https://example.com/cat.png".into(),
                        detail: Some(llmkit_types::ImageDetail::Low),
                    },
                },
            ]),
            ChatMessage::assistant_tool_calls(vec![llmkit_types::ToolCall {
                id: "call_1".into(),
                kind: "function".into(),
                function: llmkit_types::FunctionCall {
                    name: "lookup".into(),
                    arguments: "{\"q\":\"cat\"}".into(),
                },
            }]),
            ChatMessage::tool_result("call_1", "a cat"),
            ChatMessage::assistant("It is a cat."),
        ],
    )
    .response_format(ResponseFormat::json_schema(
        "answer",
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false}),
    ));
    full.max_completion_tokens = Some(100);
    full.presence_penalty = Some(0.5);
    full.frequency_penalty = Some(-0.5);
    full.logit_bias = Some([("50256".to_string(), -100)].into_iter().collect());
    full.logprobs = Some(true);
    full.top_logprobs = Some(3);
    full.tools = Some(vec![Tool::function(FunctionDef {
        name: "lookup".into(),
        description: Some("look a thing up".into()),
        parameters: Some(json!({"type": "object", "properties": {"q": {"type": "string"}}})),
        strict: Some(false),
    })]);
    full.tool_choice = Some(ToolChoice::Mode("auto".into()));
    full.user = Some("user-1".into());
    check_serialised("CreateChatCompletionRequest", &full);

    for format in [ResponseFormat::Text, ResponseFormat::JsonObject] {
        let req = ChatCompletionRequest::new("gpt-4.1", vec![ChatMessage::user("x")])
            .response_format(format);
        check_serialised("CreateChatCompletionRequest", &req);
    }
}

#[test]
fn chat_responses_match_the_spec() {
    let r: ChatCompletionResponse = check_sample(
        "CreateChatCompletionResponse",
        json!({
            "id": "chatcmpl-123", "object": "chat.completion", "created": 1_700_000_000,
            "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_1",
            "service_tier": "default",
            "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hello!", "refusal": null, "annotations": []}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
        }),
    );
    assert_eq!(r.text(), "Hello!");

    let r: ChatCompletionResponse = check_sample(
        "CreateChatCompletionResponse",
        json!({
            "id": "chatcmpl-456", "object": "chat.completion", "created": 1_700_000_001,
            "model": "gpt-4o",
            "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": null, "refusal": null,
                    "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "lookup", "arguments": "{}"}}]}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
        }),
    );
    assert_eq!(r.choices[0].message.tool_calls.as_ref().unwrap().len(), 1);
}

#[test]
fn stream_chunks_match_the_spec() {
    let c: ChatCompletionChunk = check_sample(
        "CreateChatCompletionStreamResponse",
        json!({
            "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"},
                "logprobs": null, "finish_reason": null}]
        }),
    );
    assert_eq!(c.delta_text(), Some("Hel"));
    let c: ChatCompletionChunk = check_sample(
        "CreateChatCompletionStreamResponse",
        json!({
            "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": "gpt-4o-mini", "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
        }),
    );
    assert_eq!(c.usage.unwrap().total_tokens, 11);
}

#[test]
fn completions_match_the_spec() {
    let mut req = CompletionRequest::new("gpt-3.5-turbo-instruct", "Once upon a time");
    req.max_tokens = Some(16);
    req.temperature = Some(0.7);
    req.n = Some(2);
    req.stop = Some(llmkit_types::Stop::Many(vec![".".into()]));
    check_serialised("CreateCompletionRequest", &req);
    let r: CompletionResponse = check_sample(
        "CreateCompletionResponse",
        json!({
            "id": "cmpl-1", "object": "text_completion", "created": 1_700_000_000,
            "model": "gpt-3.5-turbo-instruct",
            "choices": [{"text": " there was", "index": 0, "logprobs": null, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 16, "total_tokens": 20}
        }),
    );
    assert_eq!(r.choices[0].text, " there was");
}

#[test]
fn embeddings_match_the_spec() {
    let mut req = EmbeddingRequest::new("text-embedding-3-small", vec!["a".into(), "b".into()]);
    req.dimensions = Some(256);
    req.encoding_format = Some("float".into());
    check_serialised("CreateEmbeddingRequest", &req);
    let r: EmbeddingResponse = check_sample(
        "CreateEmbeddingResponse",
        json!({
            "object": "list", "model": "text-embedding-3-small",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 0.3]}],
            "usage": {"prompt_tokens": 2, "total_tokens": 2}
        }),
    );
    assert_eq!(r.data.len(), 1);
}

#[test]
fn models_and_errors_match_the_spec() {
    let l: ModelList = check_sample(
        "ListModelsResponse",
        json!({"object": "list", "data": [
            {"id": "gpt-4o", "object": "model", "created": 1_700_000_000, "owned_by": "system"}
        ]}),
    );
    assert_eq!(l.data[0].id, "gpt-4o");
    let e: ErrorResponse = check_sample(
        "ErrorResponse",
        json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
            "param": null, "code": "invalid_api_key"}}),
    );
    assert_eq!(e.error.code_str().as_deref(), Some("invalid_api_key"));
}

#[test]
fn the_vendored_subset_matches_its_pinned_sha256() {
    let bytes = subset_bytes();
    let spec: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let source = std::fs::read_to_string(fixtures().join("SOURCE")).unwrap();
    assert!(source.contains("source-sha256: "), "{source}");
    let licence = std::fs::read_to_string(fixtures().join("LICENSE")).unwrap();
    assert!(licence.starts_with("The MIT License"), "{licence}");
}

/// The Responses API, `/organization/costs` and `/organization/usage/completions` are in the
/// subset with every schema they reference, so that requests can be validated against them.
#[test]
fn the_subset_holds_the_responses_and_usage_apis() {
    let paths = spec()["paths"].as_object().unwrap();
    for path in [
        "/chat/completions",
        "/completions",
        "/embeddings",
        "/models",
        "/responses",
        "/responses/{response_id}",
        "/responses/{response_id}/cancel",
        "/responses/input_tokens",
        "/responses/{response_id}/input_items",
        "/organization/costs",
        "/organization/usage/completions",
    ] {
        assert!(paths.contains_key(path), "{path} is not in the subset");
    }
    check(
        "CreateResponse",
        &json!({"model": "gpt-4.1", "input": "hello", "max_output_tokens": 64}),
    );
    check(
        "CreateResponse",
        &json!({"model": "gpt-4.1", "stream": true, "input": "hi",
            "tools": [{"type": "function", "name": "lookup", "strict": true,
                "parameters": {"type": "object", "properties": {}}}]}),
    );
    check(
        "FunctionTool",
        &json!({"type": "function", "name": "lookup", "strict": null, "parameters": null}),
    );
    check(
        "ResponseStreamEvent",
        &json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
            "content_index": 0, "delta": "Hel", "sequence_number": 3, "logprobs": []}),
    );
    // Every schema referenced from these paths resolves: a validator for each compiles.
    for schema in [
        "Response",
        "ResponseItemList",
        "InputItem",
        "ItemResource",
        "UsageResponse",
        "CostsResult",
    ] {
        compiles(schema);
    }
}

/// Panics unless `#/components/schemas/{schema}` compiles with every reference resolved.
fn compiles(schema: &str) {
    let mut root = spec().clone();
    root["$ref"] = json!(format!("#/components/schemas/{schema}"));
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema {schema} compiles: {e}"));
}

/// Responses API samples in the shapes OpenAI documents validate against the spec and decode
/// with llmkit's types; the requests llmkit's builders make validate too. (Every body the
/// client sends is validated by llmkit-client's `responses_contract` test.)
#[test]
fn responses_api_samples_match_the_spec() {
    use llmkit_types::{
        CreateResponseRequest, ResponseItem, ResponseObject, ResponseStatus, ResponseStreamEvent,
        Role,
    };
    let r: ResponseObject = check_sample(
        "Response",
        json!({
            "id": "resp_1", "object": "response", "created_at": 1_741_476_542,
            "status": "completed", "error": null, "incomplete_details": null,
            "instructions": null, "max_output_tokens": null, "model": "o4-mini-2025-04-16",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "plan"}],
                 "encrypted_content": "gAAAA"},
                {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Hi!", "annotations": [], "logprobs": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
                 "arguments": "{}", "status": "completed"}
            ],
            "parallel_tool_calls": true, "previous_response_id": null,
            "reasoning": {"effort": "low", "summary": "auto"}, "store": false,
            "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
            "tools": [], "top_p": 1.0, "truncation": "disabled",
            "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                      "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 64},
                      "total_tokens": 123},
            "metadata": {}
        }),
    );
    assert_eq!(r.status, ResponseStatus::Completed);
    assert_eq!(r.output_text(), "Hi!");
    assert_eq!(r.usage.unwrap().reasoning_tokens(), 64);
    let e: ResponseStreamEvent = check_sample(
        "ResponseStreamEvent",
        json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_1",
               "output_index": 0, "summary_index": 0, "delta": "pl", "sequence_number": 2}),
    );
    assert!(matches!(
        e,
        ResponseStreamEvent::ReasoningSummaryTextDelta { .. }
    ));
    let e: ResponseStreamEvent = check_sample(
        "ResponseStreamEvent",
        json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1",
               "output_index": 1, "delta": "{\"a\"", "sequence_number": 5}),
    );
    assert!(matches!(
        e,
        ResponseStreamEvent::FunctionCallArgumentsDelta { .. }
    ));
    let e: ResponseStreamEvent = check_sample(
        "ResponseStreamEvent",
        json!({"type": "error", "code": "server_error", "message": "boom", "param": null,
               "sequence_number": 1}),
    );
    assert!(matches!(e, ResponseStreamEvent::Error { .. }));
    for req in [
        CreateResponseRequest::new("gpt-5", "hi"),
        CreateResponseRequest::new("o4-mini", "hi")
            .reasoning(Some("high"), Some("detailed"))
            .stateless()
            .max_output_tokens(100)
            .instructions("be brief"),
        CreateResponseRequest::new(
            "gpt-5",
            vec![
                ResponseItem::message(Role::User, "weather?"),
                ResponseItem::function_output("call_1", "sunny"),
            ],
        )
        .previous_response_id("resp_1")
        .background(true)
        .store(true)
        .temperature(0.5)
        .top_p(0.5),
    ] {
        check_serialised("CreateResponse", &req);
    }
}

/// Panics unless every `(name, value)` pair is a parameter of `GET {path}` in the spec whose
/// schema the value fits (integers, enums, array items), and every required one is there.
fn check_query(path: &str, pairs: &[(&str, String)]) {
    let params = spec()["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path} has no parameters in the subset"));
    for p in params {
        if p["required"] == true {
            let name = p["name"].as_str().unwrap();
            assert!(
                pairs.iter().any(|(n, _)| *n == name),
                "GET {path} needs `{name}`"
            );
        }
    }
    for (name, value) in pairs {
        let param = params
            .iter()
            .find(|p| p["name"] == *name)
            .unwrap_or_else(|| panic!("`{name}` is not a parameter of GET {path}"));
        let schema = &param["schema"];
        let schema = if schema["type"] == "array" {
            &schema["items"]
        } else {
            schema
        };
        match schema["type"].as_str() {
            Some("integer") => assert!(
                value.parse::<i64>().is_ok(),
                "{name}={value} is not an integer"
            ),
            Some("boolean") => assert!(matches!(value.as_str(), "true" | "false")),
            _ => {}
        }
        if let Some(allowed) = schema["enum"].as_array() {
            assert!(
                allowed.iter().any(|a| a == value.as_str()),
                "{name}={value} is not one of {allowed:?} for GET {path}"
            );
        }
    }
}

/// The organisation reports: llmkit's queries use only parameters and values the spec lists,
/// and pages in the documented shape validate and decode with llmkit's types.
#[test]
fn organization_usage_and_costs_match_the_spec() {
    use llmkit_types::{CostsResult, UsageCompletionsResult, UsagePage, UsageQuery};

    let mut usage = UsageQuery::daily(1_730_419_200, 1_730_592_000, "model");
    usage.limit = Some(31);
    usage.page = Some("page_AAAAAGdGxdEiJdKOAAAAAGcqsYA=".into());
    check_query("/organization/usage/completions", &usage.pairs());
    let costs = UsageQuery::daily(1_730_419_200, 1_730_592_000, "line_item");
    check_query("/organization/costs", &costs.pairs());
    // The costs report has no `model` grouping: a model comes from the line item.
    let bad = std::panic::catch_unwind(|| {
        check_query(
            "/organization/costs",
            &UsageQuery::daily(0, 86_400, "model").pairs(),
        )
    });
    assert!(bad.is_err(), "group_by=model is not a costs grouping");

    let page: UsagePage<UsageCompletionsResult> = check_sample(
        "UsageResponse",
        json!({"object": "page", "has_more": true, "next_page": "page_2", "data": [
            {"object": "bucket", "start_time": 1_730_419_200, "end_time": 1_730_505_600,
             "results": [{"object": "organization.usage.completions.result",
                "input_tokens": 1000, "input_cached_tokens": 200, "output_tokens": 500,
                "input_audio_tokens": 0, "output_audio_tokens": 0, "num_model_requests": 5,
                "project_id": null, "user_id": null, "api_key_id": null,
                "model": "gpt-4o-mini-2024-07-18", "batch": null}]}]}),
    );
    assert_eq!(page.data[0].results[0].input_cached_tokens, 200);
    assert_eq!(page.next_page.as_deref(), Some("page_2"));
    let page: UsagePage<CostsResult> = check_sample(
        "UsageResponse",
        json!({"object": "page", "has_more": false, "next_page": null, "data": [
            {"object": "bucket", "start_time": 1_730_419_200, "end_time": 1_730_505_600,
             "results": [{"object": "organization.costs.result",
                "amount": {"value": 0.06, "currency": "usd"},
                "line_item": "gpt-4o-mini-2024-07-18, input", "project_id": null}]}]}),
    );
    let row = &page.data[0].results[0];
    assert_eq!(row.line_item_model(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(row.amount.value, 0.06);
    // What llmkit writes back (the mock's answers are checked the same way in the client).
    check_serialised("UsageCompletionsResult", &page_row());
}

fn page_row() -> llmkit_types::UsageCompletionsResult {
    llmkit_types::UsageCompletionsResult {
        object: "organization.usage.completions.result".into(),
        input_tokens: 3,
        output_tokens: 2,
        num_model_requests: 1,
        model: Some("gpt-4o-mini".into()),
        ..Default::default()
    }
}
