//! Models, embeddings, legacy completions, Azure paths, errors, latency and the request log.

use serde_json::{Value, json};

use crate::{client, json, post, start, user};
use llmkit_testkit::MockConfig;

#[tokio::test]
async fn lists_models() {
    let s = start(MockConfig::default()).await;
    let resp = client()
        .get(format!("{}/v1/models", s.url()))
        .send()
        .await
        .unwrap();
    let v = json(resp).await;
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for m in [
        "gpt-4o-mini",
        "gpt-4o",
        "gpt-4.1-mini",
        "text-embedding-3-small",
    ] {
        assert!(ids.contains(&m), "{m}");
    }
    let one = client()
        .get(format!("{}/v1/models/gpt-4o", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(json(one).await["id"], "gpt-4o");
}

#[tokio::test]
async fn unknown_model_and_url_are_404() {
    let s = start(MockConfig::default()).await;
    let mut body = user("hi");
    body["model"] = json!("nonexistent-model");
    let resp = post(&s, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        json(resp).await,
        json!({"error": {"message": "The model `nonexistent-model` does not exist or you do not have access to it.",
                         "type": "invalid_request_error", "param": null, "code": "model_not_found"}})
    );
    let resp = post(&s, "/v1/nothing", json!({})).await;
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn context_length_and_bad_json_are_400() {
    let s = start(MockConfig::default()).await;
    let mut body = user(&"word ".repeat(6000));
    body["model"] = json!("any-ctx4k-model");
    let resp = post(&s, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 400);
    let v = json(resp).await;
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    assert!(v["error"]["message"].as_str().unwrap().starts_with("This model's maximum context length is 4096 tokens. However, your messages resulted in 7506 tokens."));
    let big = post(&s, "/v1/chat/completions", user(&"x".repeat(4 * 130_000))).await;
    assert_eq!(big.status(), 400);

    let resp = client()
        .post(format!("{}/v1/chat/completions", s.url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(json(resp).await["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn embeddings_are_normalised_and_sized() {
    let s = start(MockConfig::default()).await;
    let v = json(
        post(
            &s,
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": ["cat", "dog"]}),
        )
        .await,
    )
    .await;
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let e: Vec<f64> = data[1]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(e.len(), 1536);
    let norm: f64 = e.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(v["usage"]["prompt_tokens"], 2);

    let v = json(
        post(
            &s,
            "/v1/embeddings",
            json!({"model": "m", "input": "cat", "dimensions": 256}),
        )
        .await,
    )
    .await;
    let again = json(
        post(
            &s,
            "/v1/embeddings",
            json!({"model": "m", "input": "cat", "dimensions": 256}),
        )
        .await,
    )
    .await;
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 256);
    assert_eq!(v["data"][0]["embedding"], again["data"][0]["embedding"]);
}

#[tokio::test]
async fn legacy_completions_echo_the_prompt() {
    let s = start(MockConfig::default()).await;
    let v = json(
        post(
            &s,
            "/v1/completions",
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": "say this", "max_tokens": 1}),
        )
        .await,
    )
    .await;
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "say");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let resp = post(
        &s,
        "/v1/completions",
        json!({"model": "m", "prompt": "a b", "stream": true}),
    )
    .await;
    let events = crate::sse(resp).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| c["choices"][0]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, "a b");
}

#[tokio::test]
async fn azure_deployment_paths_and_api_key_header() {
    let s = start(MockConfig {
        api_key: Some("azure-key-123456".into()),
        ..MockConfig::default()
    })
    .await;
    let resp = client()
        .post(format!(
            "{}/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21",
            s.url()
        ))
        .header("api-key", "azure-key-123456")
        .json(&json!({"messages": [{"role": "user", "content": "hi azure"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v = json(resp).await;
    assert_eq!(v["model"], "my-gpt");
    assert_eq!(v["choices"][0]["message"]["content"], "hi azure");
    let log = s.requests();
    assert_eq!(log[0]["query"], "api-version=2024-10-21");
    assert_eq!(log[0]["headers"]["api-key"], "...3456");
}

#[tokio::test]
async fn wrong_or_missing_key_is_401() {
    let s = start(MockConfig {
        api_key: Some("sk-right-key-0000".into()),
        ..MockConfig::default()
    })
    .await;
    let url = format!("{}/v1/chat/completions", s.url());
    let wrong = client()
        .post(&url)
        .bearer_auth("sk-wrong-key-9999")
        .json(&user("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let v = json(wrong).await;
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Incorrect API key provided: sk-...9999."),
        "{msg}"
    );
    let missing = client().post(&url).json(&user("x")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let ok = client()
        .post(&url)
        .bearer_auth("sk-right-key-0000")
        .json(&user("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(s.request_count(), 3);
}

/// The configured latency holds the reply back. Asserted without measuring time: with an
/// hour's latency the request reaches the server and no reply comes while the test looks
/// (however slow the machine, the server cannot answer early), and a short latency still
/// answers, saying it in `openai-processing-ms`.
#[tokio::test]
async fn latency_delays_the_first_byte() {
    let held = start(MockConfig {
        latency_ms: 3_600_000,
        ..MockConfig::default()
    })
    .await;
    let url = format!("{}/v1/chat/completions", held.url());
    let pending = tokio::spawn(async move { client().post(url).json(&user("x")).send().await });
    for _ in 0..600 {
        if held.request_count() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(held.request_count(), 1, "the request reached the server");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!pending.is_finished(), "answered before its latency");
    assert!(held.requests().is_empty(), "nothing answered yet");
    pending.abort();

    let s = start(MockConfig {
        latency_ms: 20,
        ..MockConfig::default()
    })
    .await;
    let resp = post(&s, "/v1/chat/completions", user("x")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["openai-processing-ms"], "20");
}

#[tokio::test]
async fn log_file_gets_one_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let s = start(MockConfig {
        log: Some(path.clone()),
        ..MockConfig::default()
    })
    .await;
    let resp = client()
        .post(format!("{}/v1/chat/completions", s.url()))
        .bearer_auth("sk-some-secret-abcd")
        .header("x-mock-fault", "500")
        .json(&user("logged"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let resp = post(&s, "/v1/chat/completions", user("second")).await;
    assert_eq!(resp.status(), 200);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let first = &lines[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/v1/chat/completions");
    assert_eq!(first["status"], 500);
    assert_eq!(first["fault"], "500");
    assert_eq!(first["headers"]["authorization"], "Bearer ...abcd");
    assert_eq!(first["headers"]["content-type"], "application/json");
    assert_eq!(first["body"]["messages"][0]["content"], "logged");
    assert!(first["ts"].as_f64().unwrap() > 1.6e9);
    assert_eq!(lines[1]["fault"], Value::Null);
    assert_eq!(s.requests(), lines);
}

#[tokio::test]
async fn files_and_batches_round_trip() {
    let s = start(MockConfig {
        batch_delay_ms: 300,
        ..MockConfig::default()
    })
    .await;
    let lines = [
        json!({"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
               "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "first"}]}}),
        json!({"custom_id": "r2", "method": "POST", "url": "/v1/chat/completions",
               "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "MOCK_REPLY: second"}]}}),
    ]
    .map(|l| l.to_string())
    .join("\n");
    let form = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"batch.jsonl\"\r\n\
         Content-Type: application/jsonl\r\n\r\n{lines}\n\r\n--XyZ--\r\n"
    );
    let resp = client()
        .post(format!("{}/v1/files", s.url()))
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let file = json(resp).await;
    assert_eq!(file["object"], "file");
    assert_eq!(file["purpose"], "batch");
    assert_eq!(file["filename"], "batch.jsonl");

    let batch = json(
        post(
            &s,
            "/v1/batches",
            json!({"input_file_id": file["id"],
        "endpoint": "/v1/chat/completions", "completion_window": "24h"}),
        )
        .await,
    )
    .await;
    assert_eq!(batch["status"], "validating");
    let url = format!("{}/v1/batches/{}", s.url(), batch["id"].as_str().unwrap());
    let get = || async { json(client().get(&url).send().await.unwrap()).await };
    assert_eq!(get().await["status"], "in_progress");
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    let done = get().await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["request_counts"]["completed"], 2);
    let out = client()
        .get(format!(
            "{}/v1/files/{}/content",
            s.url(),
            done["output_file_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answers: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers[1]["custom_id"], "r2");
    assert_eq!(answers[1]["response"]["status_code"], 200);
    assert_eq!(
        answers[1]["response"]["body"]["choices"][0]["message"]["content"],
        "second"
    );
}
