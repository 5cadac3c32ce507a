//! The endpoints, authentication and the error shapes.

use llmkit_gateway::NewKey;
use serde_json::{Value, json};

use crate::{Harness, chat_body, client, error_of, post};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_need_no_key() {
    let mut h = Harness::start().await;
    for path in ["/healthz", "/readyz"] {
        let r = client().get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = client().get(h.url("/v1/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_of(&r.text().await.unwrap())["code"], "unknown_url");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked() {
    let mut h = Harness::start().await;
    let (_, good) = h.any_key();
    let body = chat_body("gpt-4o-mini", "hello");
    let (s, _, b) = post(&h, "/v1/chat/completions", None, &body).await;
    assert_eq!(s, 401);
    error_of(&b);
    let wrong = format!("{}0", &good[..good.len() - 1]);
    let wrong = if wrong == good {
        format!("{}1", &good[..good.len() - 1])
    } else {
        wrong
    };
    for k in [wrong.as_str(), "lk-garbage", "sk-not-ours"] {
        let (s, _, b) = post(&h, "/v1/chat/completions", Some(k), &body).await;
        assert_eq!(s, 401, "{k}");
        assert_eq!(error_of(&b)["code"], "invalid_api_key");
    }
    // Expired.
    let (_, expired) = h.key(NewKey {
        name: "old".into(),
        expires_in_secs: Some(0.0),
        ..NewKey::default()
    });
    let (s, _, b) = post(&h, "/v1/chat/completions", Some(&expired), &body).await;
    assert_eq!(s, 401);
    assert!(
        error_of(&b)["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // Revoked: the very next request fails.
    let (id, revoked) = h.any_key();
    let (s, _, _) = post(&h, "/v1/chat/completions", Some(&revoked), &body).await;
    assert_eq!(s, 200);
    llmkit_gateway::revoke_key(&h.store, &id).unwrap();
    let (s, _, b) = post(&h, "/v1/chat/completions", Some(&revoked), &body).await;
    assert_eq!(s, 401);
    assert!(
        error_of(&b)["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    // Rotated: the old secret stops working, the new one works.
    let (id, old) = h.any_key();
    let new = llmkit_gateway::rotate_key(&h.store, &id).unwrap();
    let (s, _, _) = post(&h, "/v1/chat/completions", Some(&old), &body).await;
    assert_eq!(s, 401);
    use secrecy::ExposeSecret;
    let (s, _, _) = post(&h, "/v1/chat/completions", Some(new.expose_secret()), &body).await;
    assert_eq!(s, 200);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_outside_the_keys_scope_are_refused() {
    let mut h = Harness::start().await;
    let (_, k) = h.key(NewKey {
        name: "scoped".into(),
        models: vec!["gpt-4o".into(), "text-embedding-3-small".into()],
        ..NewKey::default()
    });
    let (s, _, b) = post(
        &h,
        "/v1/chat/completions",
        Some(&k),
        &chat_body("gpt-4o-mini", "x"),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(error_of(&b)["code"], "model_not_allowed");
    let text = client()
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("reason=\"scope\"} 1"), "{text}");
    let (s, _, _) = post(
        &h,
        "/v1/chat/completions",
        Some(&k),
        &chat_body("gpt-4o", "x"),
    )
    .await;
    assert_eq!(s, 200);
    let r = client()
        .get(h.url("/v1/models"))
        .bearer_auth(&k)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o", "text-embedding-3-small"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streamed_and_not_agree_and_reach_the_ledger() {
    let mut h = Harness::start().await;
    let (id, k) = h.any_key();
    let body = chat_body("gpt-4o-mini", "tell me something");
    let (s, headers, text) = post(&h, "/v1/chat/completions", Some(&k), &body).await;
    assert_eq!(s, 200, "{text}");
    assert!(headers.contains_key("x-llmkit-overhead-ms"));
    let whole: Value = serde_json::from_str(&text).unwrap();
    let content = whole["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!content.is_empty());

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let (s, headers, text) = post(&h, "/v1/chat/completions", Some(&k), &streamed).await;
    assert_eq!(s, 200);
    assert!(
        headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let mut joined = String::new();
    for e in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        // The caller did not ask for usage, so no usage-only chunk is passed on.
        assert!(!v["choices"].as_array().unwrap().is_empty(), "{e}");
        joined.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert_eq!(joined, content);

    // Asking for usage gets the usage chunk.
    streamed["stream_options"] = json!({"include_usage": true});
    let (_, _, text) = post(&h, "/v1/chat/completions", Some(&k), &streamed).await;
    assert!(text.contains("\"usage\""), "{text}");

    h.store.flush().unwrap();
    let rows = h.store.ledger_rows(&Default::default()).unwrap();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_eq!(r.profile.as_deref(), Some(id.as_str()));
        assert_eq!(r.command, "serve");
        assert_eq!(r.status, 200);
        assert!(r.completion_tokens > 0 && r.cost_usd > 0.0, "{r:?}");
    }
    // The metrics count the same requests and the ledger's tokens.
    let text = client()
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!(
        "llmkit_gateway_requests_total{{key=\"{id}\",model=\"gpt-4o-mini\",status=\"200\"}} 3"
    );
    assert!(text.contains(&series), "{text}");
    let completion: u64 = rows.iter().map(|r| r.completion_tokens).sum();
    let series = format!(
        "llmkit_gateway_tokens_total{{key=\"{id}\",model=\"gpt-4o-mini\",kind=\"completion\"}} {completion}"
    );
    assert!(text.contains(&series), "{text}");
    assert!(text.contains("llmkit_gateway_request_duration_seconds_bucket"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_pass_through() {
    let mut h = Harness::start().await;
    let (_, k) = h.any_key();
    let body = json!({"model": "text-embedding-3-small", "input": ["a", "b"]});
    let (s, _, text) = post(&h, "/v1/embeddings", Some(&k), &body).await;
    assert_eq!(s, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_openai_errors() {
    let mut h = Harness::start_with(|c| c.body_limit = 16 * 1024).await;
    let (_, k) = h.any_key();
    let url = h.url("/v1/chat/completions");
    let send = |body: Vec<u8>, ctype: &'static str| {
        let url = url.clone();
        let k = k.clone();
        async move {
            let r = client()
                .post(url)
                .bearer_auth(k)
                .header("content-type", ctype)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, b) = send(b"{not json".to_vec(), "application/json").await;
    assert_eq!(s, 400);
    assert_eq!(error_of(&b)["type"], "invalid_request_error");
    let (s, b) = send(b"{\"model\": 3}".to_vec(), "application/json").await;
    assert_eq!(s, 400);
    error_of(&b);
    let ok = serde_json::to_vec(&chat_body("gpt-4o-mini", "x")).unwrap();
    let (s, b) = send(ok, "text/plain").await;
    assert_eq!(s, 400);
    assert!(
        error_of(&b)["message"]
            .as_str()
            .unwrap()
            .contains("Content-Type")
    );
    let big = serde_json::to_vec(&chat_body("gpt-4o-mini", &"word ".repeat(13_000))).unwrap();
    let (s, b) = send(big, "application/json").await;
    assert_eq!(s, 413);
    assert_eq!(error_of(&b)["code"], "request_too_large");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut h =
        Harness::start_with(|c| c.header_timeout = std::time::Duration::from_millis(300)).await;
    let mut conn = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The gateway closes the connection (possibly after a 408) instead of waiting forever.
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.read_to_end(&mut buf),
    )
    .await;
    assert!(read.is_ok(), "the connection was still open after 5 s");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_become_502_and_429() {
    use llmkit_testkit::{Fault, MockConfig};
    for (fault, status) in [(Fault::S500, 502), (Fault::S429, 429), (Fault::Reset, 502)] {
        let mock = MockConfig {
            fault_rate: 1.0,
            faults: vec![fault],
            ..MockConfig::default()
        };
        let mut h = Harness::start_full(mock, |_| {}).await;
        let (_, k) = h.any_key();
        let (s, headers, b) = post(
            &h,
            "/v1/chat/completions",
            Some(&k),
            &chat_body("gpt-4o-mini", "x"),
        )
        .await;
        assert_eq!(s, status, "{fault:?}: {b}");
        error_of(&b);
        if status == 429 {
            assert!(headers.contains_key("retry-after"), "{headers:?}");
        }
        h.store.flush().unwrap();
        let rows = h.store.ledger_rows(&Default::default()).unwrap();
        assert_eq!(rows.len(), 1, "a failed request still has its ledger row");
        h.stop().await;
    }
}
