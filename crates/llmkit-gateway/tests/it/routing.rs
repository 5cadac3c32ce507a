//! Routing: a model's own upstreams, balanced by the power of two choices, with fallback
//! to the next one before any byte has gone back to the caller.

use std::time::Duration;

use futures::StreamExt;
use llmkit_client::{ClientConfig, Timeouts};
use llmkit_gateway::Route;
use llmkit_testkit::{Fault, MockConfig, MockServer};
use serde_json::{Value, json};

use crate::{Harness, UPSTREAM_KEY, chat_body, client, post};

/// An upstream's client as a profile would give it: no retries of its own, so a failure
/// moves to the next upstream at once, and short timeouts for the mock's stalls.
pub(crate) fn upstream(mock: &MockServer) -> ClientConfig {
    ClientConfig::new(format!("{}/v1", mock.url()))
        .api_key(UPSTREAM_KEY)
        .max_retries(0)
        .timeouts(Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(2),
            stall: Duration::from_millis(300),
        })
}

pub(crate) fn route(model: &str, mocks: &[(&str, &MockServer)]) -> Route {
    Route::new(
        model,
        mocks
            .iter()
            .map(|(name, m)| (name.to_string(), upstream(m).into()))
            .collect(),
    )
}

/// Chat requests the mock answered (its log also holds other paths).
pub(crate) fn chats(mock: &MockServer) -> usize {
    mock.requests()
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/chat/completions"))
        })
        .count()
}

/// A streamed chat: (status, the text of its content deltas, whether it ended with
/// `[DONE]` and no error event).
pub(crate) async fn stream(h: &Harness, key: &str, model: &str, text: &str) -> (u16, String, bool) {
    let mut body = chat_body(model, text);
    body["stream"] = json!(true);
    let resp = client()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let mut raw = Vec::new();
    let mut bytes = resp.bytes_stream();
    while let Some(b) = bytes.next().await {
        raw.extend_from_slice(&b.unwrap());
    }
    let raw = String::from_utf8(raw).unwrap();
    let mut content = String::new();
    let mut clean = raw.trim_end().ends_with("data: [DONE]");
    for data in raw.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        if v.get("error").is_some() {
            clean = false;
        }
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(t);
        }
    }
    (status, content, clean)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_upstream_falls_back_to_the_other() {
    // Every request to `broken` fails, with every fault the mock has: 500, 503, 429, a reset
    // connection, a stall, a truncated body and garbled JSON.
    let broken = MockServer::start(MockConfig {
        fault_rate: 1.0,
        faults: Fault::ALL.to_vec(),
        seed: 7,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let healthy = MockServer::start(MockConfig::default()).await.unwrap();
    let r = route("gpt-4o-mini", &[("broken", &broken), ("healthy", &healthy)]);
    let mut h = Harness::start_with(|cfg| cfg.routes = vec![r]).await;
    let (_, key) = h.any_key();
    let n = 24;
    for i in 0..n {
        let text = format!("fallback number {i}");
        if i % 3 == 0 {
            let (status, content, clean) = stream(&h, &key, "gpt-4o-mini", &text).await;
            assert_eq!(status, 200, "stream {i}");
            assert!(clean, "stream {i} ended with an error event");
            assert!(content.contains(&text), "stream {i}: {content}");
        } else {
            let (status, _, body) = post(
                &h,
                "/v1/chat/completions",
                Some(&key),
                &chat_body("gpt-4o-mini", &text),
            )
            .await;
            assert_eq!(status, 200, "request {i}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
            assert!(answer.contains(&text), "{answer}");
        }
    }
    // Every request was answered by the healthy upstream; the broken one was tried first
    // for some of them (the pick is random among the idle), and the default upstream of
    // unrouted models saw none.
    assert_eq!(chats(&healthy), n);
    let tried = chats(&broken);
    assert!(
        tried >= 1 && tried < n,
        "broken upstream tried {tried} times"
    );
    assert_eq!(chats(&h.mock), 0);
    // A model without a route still goes to the default upstream.
    let (status, _, _) = post(
        &h,
        "/v1/chat/completions",
        Some(&key),
        &chat_body("gpt-4o", "not routed"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(chats(&h.mock), 1);
    assert_eq!(chats(&healthy), n);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_upstream_fails_the_last_failure_is_answered() {
    let fail = |seed| MockConfig {
        fault_rate: 1.0,
        faults: vec![Fault::S503],
        seed,
        ..MockConfig::default()
    };
    let a = MockServer::start(fail(1)).await.unwrap();
    let b = MockServer::start(fail(2)).await.unwrap();
    let r = route("gpt-4o-mini", &[("a", &a), ("b", &b)]);
    let mut h = Harness::start_with(|cfg| cfg.routes = vec![r]).await;
    let (_, key) = h.any_key();
    let (status, _, body) = post(
        &h,
        "/v1/chat/completions",
        Some(&key),
        &chat_body("gpt-4o-mini", "nobody home"),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(crate::error_of(&body)["code"], "upstream_error");
    // Each upstream was tried exactly once.
    assert_eq!((chats(&a), chats(&b)), (1, 1));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_healthy_upstreams_share_the_load() {
    // A little latency, so that concurrent requests overlap and in-flight counts differ.
    let slow = || MockConfig {
        latency_ms: 5,
        ..MockConfig::default()
    };
    let a = MockServer::start(slow()).await.unwrap();
    let b = MockServer::start(slow()).await.unwrap();
    let r = route("team-model", &[("a", &a), ("b", &b)]);
    let mut h = Harness::start_with(|cfg| cfg.routes = vec![r]).await;
    let (_, key) = h.any_key();
    let n = 200;
    let h_ref = &h;
    let key_ref = key.as_str();
    let statuses: Vec<u16> = futures::stream::iter(0..n)
        .map(|i| async move {
            let body = chat_body("team-model", &format!("share {i}"));
            post(h_ref, "/v1/chat/completions", Some(key_ref), &body)
                .await
                .0
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let (na, nb) = (chats(&a), chats(&b));
    assert_eq!(na + nb, n);
    // Roughly even: each between 35% and 65% (a fair coin leaves that band with a
    // probability below 1e-4 over 200 requests; the in-flight counts only tighten it).
    assert!((70..=130).contains(&na), "a served {na}, b served {nb}");
    // The routed model is listed, though the upstreams do not know it.
    let v: Value = client()
        .get(h.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "team-model"),
        "{v}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_without_upstreams_is_refused_at_start() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(llmkit_store::Store::open(&dir.path().join("s.db")).unwrap());
    let mut cfg = llmkit_gateway::GatewayConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        upstream(&mock),
        store,
        llmkit_accounting::AccountingConfig::new(llmkit_client::ModelCatalog::builtin()),
    );
    cfg.routes = vec![Route::new("empty", Vec::new())];
    let Err(err) = llmkit_gateway::Gateway::bind(cfg).await else {
        panic!("a route without upstreams was accepted");
    };
    assert!(matches!(err, llmkit_gateway::GatewayError::EmptyRoute(ref m) if m == "empty"));
    assert!(err.is_usage());
}
