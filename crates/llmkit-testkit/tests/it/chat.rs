//! Chat completions: echo, scripting, n, stop, max_tokens, streaming and structured output.

use serde_json::{Value, json};

use crate::{json, post, sse, start, user};
use llmkit_testkit::MockConfig;

#[tokio::test]
async fn echoes_last_user_message_in_openai_shape() {
    let s = start(MockConfig::default()).await;
    let resp = post(&s, "/v1/chat/completions", user("Hello there, world")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "req_mock_000001");
    let v = json(resp).await;
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["system_fingerprint"], "fp_mock");
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(
        choice["message"],
        json!({"role": "assistant", "content": "Hello there, world", "refusal": null, "annotations": []})
    );
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["finish_reason"], "stop");
    // 18 chars → 5 tokens, + 3 per message + 3 priming.
    assert_eq!(v["usage"]["prompt_tokens"], 11);
    assert_eq!(v["usage"]["completion_tokens"], 3);
    assert_eq!(v["usage"]["total_tokens"], 14);
    assert_eq!(s.request_count(), 1);
}

#[tokio::test]
async fn mock_reply_scripts_the_answer() {
    let s = start(MockConfig::default()).await;
    let v = json(
        post(
            &s,
            "/v1/chat/completions",
            user("MOCK_REPLY: scripted answer"),
        )
        .await,
    )
    .await;
    assert_eq!(v["choices"][0]["message"]["content"], "scripted answer");
}

#[tokio::test]
async fn n_stop_and_max_tokens() {
    let s = start(MockConfig::default()).await;
    let mut body = user("one two three four five");
    body["n"] = json!(3);
    let v = json(post(&s, "/v1/chat/completions", body.clone()).await).await;
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    assert!(choices.iter().enumerate().all(|(i, c)| c["index"] == i));
    assert_eq!(v["usage"]["completion_tokens"], 15);

    body["n"] = json!(1);
    body["stop"] = json!([" four", "nothing"]);
    let v = json(post(&s, "/v1/chat/completions", body.clone()).await).await;
    assert_eq!(v["choices"][0]["message"]["content"], "one two three");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    body["stop"] = Value::Null;
    body["max_tokens"] = json!(2);
    let v = json(post(&s, "/v1/chat/completions", body.clone()).await).await;
    assert_eq!(v["choices"][0]["message"]["content"], "one two");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 2);

    body["max_tokens"] = Value::Null;
    body["max_completion_tokens"] = json!(4);
    let v = json(post(&s, "/v1/chat/completions", body).await).await;
    assert_eq!(v["choices"][0]["message"]["content"], "one two three four");
}

#[tokio::test]
async fn streams_chunks_then_done() {
    let s = start(MockConfig::default()).await;
    let mut body = user("streamed reply with several words");
    body["stream"] = json!(true);
    let resp = post(&s, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse(resp).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert!(events.iter().any(|e| e == ": keep-alive"), "{events:?}");
    let chunks: Vec<Value> = events
        .iter()
        .filter(|e| !e.starts_with(':') && *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "streamed reply with several words");
    // role chunk + 5 words + finish chunk
    assert_eq!(chunks.len(), 7);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
}

#[tokio::test]
async fn stream_usage_chunk_when_asked() {
    let s = start(MockConfig::default()).await;
    let mut body = user("a b c");
    body["stream"] = json!(true);
    body["n"] = json!(2);
    body["stream_options"] = json!({"include_usage": true});
    let events = sse(post(&s, "/v1/chat/completions", body).await).await;
    let chunks: Vec<Value> = events
        .iter()
        .filter(|e| !e.starts_with(':') && *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 6);
    assert_eq!(
        usage["usage"]["total_tokens"],
        6 + usage["usage"]["prompt_tokens"].as_u64().unwrap()
    );
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null())
    );
    for i in 0..2 {
        let text: String = chunks
            .iter()
            .flat_map(|c| c["choices"].as_array().unwrap().iter())
            .filter(|ch| ch["index"] == i)
            .filter_map(|ch| ch["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "a b c");
    }
}

#[tokio::test]
async fn json_schema_answers_are_valid_instances() {
    let s = start(MockConfig::default()).await;
    let schema = json!({
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3},
            "score": {"type": "number", "minimum": 1, "maximum": 5},
            "labels": {"type": "array", "items": {"$ref": "#/$defs/label"}, "minItems": 2},
            "status": {"enum": ["open", "closed"]},
            "meta": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {}}]}
        },
        "required": ["title", "score", "labels", "status", "meta"],
        "additionalProperties": false,
        "$defs": {"label": {"type": "object", "properties": {"name": {"type": "string"}},
                            "required": ["name"], "additionalProperties": false}}
    });
    let mut body = user("extract");
    body["response_format"] = json!({"type": "json_schema",
        "json_schema": {"name": "t", "strict": true, "schema": schema}});
    let v = json(post(&s, "/v1/chat/completions", body).await).await;
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    let instance: Value = serde_json::from_str(text).unwrap();
    assert!(jsonschema::is_valid(&schema, &instance), "{instance}");
    assert_eq!(instance["labels"].as_array().unwrap().len(), 2);

    let mut body = user("wrap me");
    body["response_format"] = json!({"type": "json_object"});
    let v = json(post(&s, "/v1/chat/completions", body).await).await;
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        json!({"text": "wrap me"})
    );
}

#[tokio::test]
async fn streamed_tool_call_arguments_rebuild() {
    let s = start(MockConfig::default()).await;
    let mut body = user("call it");
    body["stream"] = json!(true);
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters":
        {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
         "required": ["query", "limit"], "additionalProperties": false}}}]);
    body["tool_choice"] = json!({"type": "function", "function": {"name": "lookup"}});
    let events = sse(post(&s, "/v1/chat/completions", body).await).await;
    let chunks: Vec<Value> = events
        .iter()
        .filter(|e| !e.starts_with(':') && *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "lookup"
    );
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"query": "example", "limit": 1})
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn paced_streams_take_their_time() {
    let s = start(MockConfig {
        tokens_per_sec: Some(50.0),
        ..MockConfig::default()
    })
    .await;
    let mut body = user("a b c d e f g h i j");
    body["stream"] = json!(true);
    let t0 = std::time::Instant::now();
    let events = sse(post(&s, "/v1/chat/completions", body).await).await;
    let elapsed = t0.elapsed();
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert!(elapsed.as_millis() >= 180, "{elapsed:?}");
}
