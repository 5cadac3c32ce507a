//! A virtual key never appears in an answer, an error body, the upstream's requests or the
//! store's files.

use llmkit_gateway::NewKey;
use serde_json::json;

use crate::{Harness, chat_body, client, post};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_appears_nowhere() {
    let mut h = Harness::start().await;
    let (_, k) = h.key(NewKey {
        name: "leaky".into(),
        models: vec!["gpt-4o-mini".into(), "text-embedding-3-small".into()],
        budget_daily_usd: Some(1.0),
        ..NewKey::default()
    });
    let secret_part = k.rsplit('-').next().unwrap().to_string();
    let mut seen = String::new();
    let mut record = |s: u16, headers: &reqwest::header::HeaderMap, body: &str| {
        seen.push_str(&format!("{s} {headers:?} {body}\n"));
    };
    let mut stream = chat_body("gpt-4o-mini", "hi");
    stream["stream"] = json!(true);
    let bodies = [
        ("/v1/chat/completions", chat_body("gpt-4o-mini", "hi")),
        ("/v1/chat/completions", stream),
        ("/v1/chat/completions", chat_body("gpt-4o", "out of scope")),
        (
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": "x"}),
        ),
        ("/v1/chat/completions", json!({"bad": true})),
    ];
    for (path, body) in &bodies {
        let (s, hd, b) = post(&h, path, Some(&k), body).await;
        record(s, &hd, &b);
        // A near miss (the wrong secret) is refused without echoing it either.
        let near = format!("{}x", &k[..k.len() - 1]);
        let (s, hd, b) = post(&h, path, Some(&near), body).await;
        record(s, &hd, &b);
    }
    for path in ["/v1/models", "/metrics", "/healthz", "/readyz", "/nope"] {
        let r = client()
            .get(h.url(path))
            .bearer_auth(&k)
            .send()
            .await
            .unwrap();
        let (s, hd) = (r.status().as_u16(), r.headers().clone());
        record(s, &hd, &r.text().await.unwrap());
    }
    // Answers and error bodies alike were looked at.
    for status in ["200 ", "400 ", "401 ", "403 "] {
        assert!(
            seen.lines().any(|l| l.starts_with(status)),
            "no {status}: {seen}"
        );
    }
    assert!(!seen.contains(&secret_part), "a response carries the key");
    let upstream = serde_json::to_string(&h.mock.requests()).unwrap();
    assert!(!upstream.contains(&secret_part), "the upstream saw the key");
    h.store.flush().unwrap();
    h.stop().await;
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let found = bytes
            .windows(secret_part.len())
            .any(|w| w == secret_part.as_bytes());
        assert!(!found, "{} holds the key", path.display());
    }
}
