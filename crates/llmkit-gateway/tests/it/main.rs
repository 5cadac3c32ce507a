//! Integration tests of the gateway: `llmkit-mock` in-process as the upstream, the gateway
//! on 127.0.0.1:0, driven over HTTP with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod api;
mod budget;
mod completions;
mod leak;
mod limits;
mod replicas;
mod routing;
mod stream_cut;
mod upstreams;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use llmkit_accounting::AccountingConfig;
use llmkit_client::{ClientConfig, ModelCatalog};
use llmkit_gateway::{Gateway, GatewayConfig, NewKey};
use llmkit_store::Store;
use llmkit_testkit::{MockConfig, MockServer};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// A mock upstream, a store and a running gateway.
pub struct Harness {
    pub mock: MockServer,
    pub store: Arc<Store>,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The upstream's own key (the virtual keys never reach it).
pub const UPSTREAM_KEY: &str = "sk-upstream-test-0000000000";

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::start_full(MockConfig::default(), tune).await
    }

    pub async fn start_full(mock: MockConfig, tune: impl FnOnce(&mut GatewayConfig)) -> Self {
        let mock = MockServer::start(mock).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store.db")).unwrap());
        let upstream = ClientConfig::new(format!("{}/v1", mock.url()))
            .api_key(UPSTREAM_KEY)
            .max_retries(0);
        let mut cfg = GatewayConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            upstream,
            Arc::clone(&store),
            AccountingConfig::new(ModelCatalog::builtin()),
        );
        tune(&mut cfg);
        let gateway = Gateway::bind(cfg).await.unwrap();
        let addr = gateway.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            gateway
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            mock,
            store,
            dir,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Creates a key and returns (id, secret).
    pub fn key(&self, spec: NewKey) -> (String, String) {
        let (key, secret) = llmkit_gateway::create_key(&self.store, &spec).unwrap();
        (key.id, secret.expose_secret().to_string())
    }

    pub fn any_key(&self) -> (String, String) {
        self.key(NewKey {
            name: "test".into(),
            ..NewKey::default()
        })
    }

    /// Stops the gateway and waits for it (in-flight requests finish first).
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), t)
                .await
                .unwrap()
                .unwrap();
        }
    }
}

/// `GET` or `POST` `url` with an optional bearer key and JSON body: the status and body.
pub async fn send_to(
    url: String,
    method: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = match method {
        "GET" => client().get(url),
        _ => client().post(url),
    };
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The gateway's `/metrics` text.
pub async fn metrics(h: &Harness) -> String {
    send_to(h.url("/metrics"), "GET", None, None).await.1
}

pub fn client() -> reqwest::Client {
    // The workspace's reqwest has no default TLS provider; another test may have installed it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn chat_body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 20})
}

/// POSTs JSON with a bearer key; returns (status, headers, body text).
pub async fn post(
    h: &Harness,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = client().post(h.url(path)).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

/// Asserts an OpenAI error body and returns its `error` object.
pub fn error_of(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let err = v["error"].clone();
    assert!(err["message"].is_string(), "{body}");
    assert!(err["type"].is_string(), "{body}");
    assert!(
        err.get("param").is_some() && err.get("code").is_some(),
        "{body}"
    );
    err
}
