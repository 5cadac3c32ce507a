//! Two gateway replicas on one PostgreSQL and one Redis (`scripts/services.sh`): one budget
//! across both under 32 concurrent clients, one ledger equal to what the upstream served,
//! and a key revoked on one side refused by the other within a second, with and without
//! the pub/sub message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmkit_accounting::{AccountingConfig, Estimate, estimate_cost};
use llmkit_client::{ClientConfig, ModelCatalog};
use llmkit_cluster::{Periods, PgOptions, PgStore, UsageQuery};
use llmkit_gateway::{ClusterAdmin, ClusterSettings, Gateway, GatewayConfig, NewKey};
use llmkit_store::Store;
use llmkit_testkit::fixtures::require_service;
use llmkit_testkit::{MockConfig, MockServer};
use llmkit_types::{ChatCompletionRequest, ChatMessage};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::budget::usage_in;
use crate::{UPSTREAM_KEY, client, error_of};

struct Replica {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    async fn start(
        mock: &MockServer,
        dir: &std::path::Path,
        name: &str,
        shared: ClusterSettings,
    ) -> Self {
        Self::start_with_master(mock, dir, name, shared, None).await
    }

    async fn start_with_master(
        mock: &MockServer,
        dir: &std::path::Path,
        name: &str,
        shared: ClusterSettings,
        master: Option<&str>,
    ) -> Self {
        let store = Arc::new(Store::open(&dir.join(format!("{name}.db"))).unwrap());
        let upstream = ClientConfig::new(format!("{}/v1", mock.url()))
            .api_key(UPSTREAM_KEY)
            .max_retries(0);
        let mut cfg = GatewayConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            upstream,
            store,
            AccountingConfig::new(ModelCatalog::builtin()),
        );
        cfg.cluster = Some(shared);
        cfg.master_key = master.map(|m| SecretString::from(m.to_string()));
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
        Self { addr, stop, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops it; the ledger writer is flushed first.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

fn settings(
    pg: &str,
    redis: Option<&str>,
    spool: std::path::PathBuf,
    ttl: Duration,
) -> ClusterSettings {
    let mut s = ClusterSettings::new(SecretString::from(pg.to_string()), spool);
    s.redis_url = redis.map(|r| SecretString::from(r.to_string()));
    s.key_cache_ttl = ttl;
    s
}

async fn chat(url: String, key: &str, body: &Value) -> (u16, String) {
    let r = client()
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_hold_one_budget_and_write_one_ledger() {
    let Some(pg) = require_service("LLMKIT_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(redis) = require_service("LLMKIT_TEST_REDIS_URL") else {
        return;
    };
    // Every request is in flight at once: the upstream takes half a second.
    let mock = MockServer::start(MockConfig {
        latency_ms: 500,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let a = Replica::start(
        &mock,
        dir.path(),
        "a",
        settings(&pg, Some(&redis), dir.path().join("a.spool"), ttl),
    )
    .await;
    let b = Replica::start(
        &mock,
        dir.path(),
        "b",
        settings(&pg, Some(&redis), dir.path().join("b.spool"), ttl),
    )
    .await;
    let admin = ClusterAdmin::connect(&settings(&pg, Some(&redis), dir.path().join("x"), ttl))
        .await
        .unwrap();

    let text = "count the sheep in the field";
    let max_tokens = 40;
    let req = ChatCompletionRequest::new("gpt-4o-mini", vec![ChatMessage::user(text)])
        .max_tokens(max_tokens);
    let Estimate::Usd(worst) = estimate_cost(&ModelCatalog::builtin(), &req, 1024) else {
        panic!("gpt-4o-mini is priced");
    };
    // Room for six requests' worst case, not seven, over both replicas together.
    let budget = worst * 6.5;
    let (key, secret) = admin
        .create(&NewKey {
            name: "shared".into(),
            budget_daily_usd: Some(budget),
            ..NewKey::default()
        })
        .await
        .unwrap();
    let secret = secret.expose_secret().to_string();
    let body = json!({"model": "gpt-4o-mini", "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}]});
    let mut tasks = Vec::new();
    for i in 0..32 {
        let mut b_ = body.clone();
        if i % 2 == 1 {
            b_["stream"] = json!(true);
            b_["stream_options"] = json!({"include_usage": true});
        }
        let url = if i % 4 < 2 {
            a.url("/v1/chat/completions")
        } else {
            b.url("/v1/chat/completions")
        };
        let secret = secret.clone();
        tasks.push(tokio::spawn(async move { chat(url, &secret, &b_).await }));
    }
    let (mut ok, mut served) = (0, 0u64);
    for t in tasks {
        let (status, text) = t.await.unwrap();
        match status {
            200 => {
                ok += 1;
                served += usage_in(&text);
            }
            429 => assert_eq!(error_of(&text)["code"], "insufficient_quota", "{text}"),
            other => panic!("unexpected {other}: {text}"),
        }
    }
    assert!(ok >= 6, "six requests fit the budget, {ok} passed");
    assert!(ok < 32, "the budget refused nothing");
    a.stop().await;
    b.stop().await;

    let store = PgStore::connect(&pg, &PgOptions::default()).await.unwrap();
    let [(spent, reserved), _] = store
        .spend(&key.id, &Periods::utc(llmkit_store::now_secs()))
        .await
        .unwrap();
    assert!(
        spent <= budget,
        "spent {spent} of {budget} over two replicas"
    );
    assert!(
        reserved.abs() < 1e-9,
        "every reservation settled: {reserved} left"
    );
    let usage = store
        .usage(&UsageQuery {
            scope: Some(key.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let u = &usage[0];
    assert_eq!(u.requests, ok, "one ledger row per answered request");
    assert_eq!(
        u.prompt_tokens + u.completion_tokens,
        served,
        "the ledger equals what was served"
    );
    let upstream_calls = mock
        .requests()
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or("")
                .ends_with("/chat/completions")
        })
        .count() as u64;
    assert_eq!(
        upstream_calls, ok,
        "refused requests never reached the upstream"
    );
}

/// Polls `url` with `key` until it gets a 401; returns how long that took.
async fn until_refused(url: &str, key: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    let body = crate::chat_body("gpt-4o-mini", "hi");
    loop {
        let (status, text) = chat(url.to_string(), key, &body).await;
        if status == 401 {
            assert_eq!(error_of(&text)["code"], "invalid_api_key");
            return start.elapsed();
        }
        assert_eq!(status, 200, "{text}");
        assert!(
            start.elapsed() < limit,
            "still accepted after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_revoked_through_one_replica_is_refused_by_the_other_within_a_second() {
    let Some(pg) = require_service("LLMKIT_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(redis) = require_service("LLMKIT_TEST_REDIS_URL") else {
        return;
    };
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A long TTL: only the pub/sub message can make B notice in time.
    let long = Duration::from_secs(60);
    let b = Replica::start(
        &mock,
        dir.path(),
        "b",
        settings(&pg, Some(&redis), dir.path().join("b.spool"), long),
    )
    .await;
    let admin = ClusterAdmin::connect(&settings(&pg, Some(&redis), dir.path().join("x"), long))
        .await
        .unwrap();
    let (key, secret) = admin
        .create(&NewKey {
            name: "revoked".into(),
            ..NewKey::default()
        })
        .await
        .unwrap();
    let secret = secret.expose_secret().to_string();
    let url = b.url("/v1/chat/completions");
    // B has read and cached the key.
    assert_eq!(
        chat(url.clone(), &secret, &crate::chat_body("gpt-4o-mini", "hi"))
            .await
            .0,
        200
    );
    let start = Instant::now();
    admin.revoke(&key.id).await.unwrap();
    let took = until_refused(&url, &secret, Duration::from_secs(1)).await;
    eprintln!(
        "revocation seen by the other replica after {:?} (pub/sub)",
        start.elapsed().max(took)
    );

    // The same with the message lost (no Redis): the key cache's TTL bounds it.
    let short = Duration::from_millis(500);
    let c = Replica::start(
        &mock,
        dir.path(),
        "c",
        settings(&pg, None, dir.path().join("c.spool"), short),
    )
    .await;
    let quiet = ClusterAdmin::connect(&settings(&pg, None, dir.path().join("y"), short))
        .await
        .unwrap();
    let (key2, secret2) = quiet
        .create(&NewKey {
            name: "revoked-quietly".into(),
            ..NewKey::default()
        })
        .await
        .unwrap();
    let secret2 = secret2.expose_secret().to_string();
    let url_c = c.url("/v1/chat/completions");
    assert_eq!(
        chat(
            url_c.clone(),
            &secret2,
            &crate::chat_body("gpt-4o-mini", "hi")
        )
        .await
        .0,
        200
    );
    quiet.revoke(&key2.id).await.unwrap();
    let took = until_refused(&url_c, &secret2, Duration::from_secs(1)).await;
    eprintln!("revocation seen without a message after {took:?} (TTL 500 ms)");
    b.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_each_shared_service() {
    let Some(pg) = require_service("LLMKIT_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(redis) = require_service("LLMKIT_TEST_REDIS_URL") else {
        return;
    };
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::start(
        &mock,
        dir.path(),
        "r",
        settings(
            &pg,
            Some(&redis),
            dir.path().join("r.spool"),
            Duration::from_secs(5),
        ),
    )
    .await;
    let resp = client().get(r.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(
        (v["postgres"].as_str(), v["redis"].as_str()),
        (Some("ok"), Some("ok")),
        "{v}"
    );
    assert_eq!(v["ledger_spooled"], 0);
    // No URL (which may hold a password) in the answer.
    assert!(!v.to_string().contains("postgres://") && !v.to_string().contains("redis://"));
    r.stop().await;
}

#[tokio::test]
async fn a_single_threaded_runtime_is_refused_with_a_hint() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
    let mut cfg = GatewayConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        ClientConfig::new(format!("{}/v1", mock.url())).api_key(UPSTREAM_KEY),
        store,
        AccountingConfig::new(ModelCatalog::builtin()),
    );
    cfg.cluster = Some(settings(
        "postgres://llmkit@127.0.0.1:1/llmkit",
        None,
        dir.path().join("s"),
        Duration::from_secs(1),
    ));
    let Err(err) = Gateway::bind(cfg).await else {
        panic!("bound on a current-thread runtime")
    };
    assert!(err.hint().unwrap().contains("multi_thread"), "{err}");
}

async fn readyz(r: &Replica) -> (u16, Value) {
    let resp = client().get(r.url("/readyz")).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// `n` concurrent chat requests with distinct prompts; the statuses and the tokens served.
async fn burst(r: &Replica, key: &str, n: usize, tag: &str) -> (Vec<u16>, u64) {
    let mut tasks = Vec::new();
    for i in 0..n {
        // temperature 0 makes the answer cacheable, so the Redis cache is on the path.
        let body = json!({"model": "gpt-4o-mini", "max_tokens": 20, "temperature": 0,
            "messages": [{"role": "user", "content": format!("{tag} request {i} with {}", &key[..15])}]});
        let url = r.url("/v1/chat/completions");
        let key = key.to_string();
        tasks.push(tokio::spawn(async move { chat(url, &key, &body).await }));
    }
    let (mut statuses, mut served) = (Vec::new(), 0);
    for t in tasks {
        let (status, text) = t.await.unwrap();
        if status == 200 {
            served += usage_in(&text);
        }
        statuses.push(status);
    }
    (statuses, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_then_postgres_down_loses_no_row_and_charges_none_twice() {
    let Some(pg) = require_service("LLMKIT_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(redis) = require_service("LLMKIT_TEST_REDIS_URL") else {
        return;
    };
    let pg_proxy = llmkit_testkit::TcpProxy::start(llmkit_testkit::host_port(&pg).unwrap())
        .await
        .unwrap();
    let redis_proxy = llmkit_testkit::TcpProxy::start(llmkit_testkit::host_port(&redis).unwrap())
        .await
        .unwrap();
    let mock = MockServer::start(MockConfig {
        latency_ms: 20,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("r.spool");
    let r = Replica::start(
        &mock,
        dir.path(),
        "r",
        settings(
            &pg_proxy.via(&pg),
            Some(&redis_proxy.via(&redis)),
            spool.clone(),
            Duration::from_secs(60),
        ),
    )
    .await;
    let admin = ClusterAdmin::connect(&settings(
        &pg,
        Some(&redis),
        dir.path().join("x"),
        Duration::from_secs(60),
    ))
    .await
    .unwrap();
    let new_key = |name: &str, budget: Option<f64>| NewKey {
        name: name.into(),
        budget_daily_usd: budget,
        ..NewKey::default()
    };
    let (free, free_secret) = admin.create(&new_key("free", None)).await.unwrap();
    let (capped, capped_secret) = admin.create(&new_key("capped", Some(100.0))).await.unwrap();
    let (free_secret, capped_secret) = (
        free_secret.expose_secret().to_string(),
        capped_secret.expose_secret().to_string(),
    );
    let mut answered = [0u64; 2];
    let mut served = [0u64; 2];
    // All up; the shared cache answers a repeated request.
    let same = json!({"model": "gpt-4o-mini", "max_tokens": 20, "temperature": 0,
        "messages": [{"role": "user", "content": format!("cache me {}", free.id)}]});
    for expected in ["miss", "hit"] {
        let resp = client()
            .post(r.url("/v1/chat/completions"))
            .bearer_auth(&free_secret)
            .json(&same)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-llmkit-cache"], expected);
        if expected == "miss" {
            served[0] += usage_in(&resp.text().await.unwrap());
        }
    }
    // Two ledger rows (the hit's with no tokens), one upstream call.
    answered[0] += 2;
    let hits = 1;
    let mut tally = |i: usize, (statuses, tokens): (Vec<u16>, u64)| {
        answered[i] += statuses.iter().filter(|s| **s == 200).count() as u64;
        served[i] += tokens;
        statuses
    };

    // All up.
    assert!(
        tally(0, burst(&r, &free_secret, 8, "up").await)
            .iter()
            .all(|s| *s == 200)
    );
    assert!(
        tally(1, burst(&r, &capped_secret, 8, "up").await)
            .iter()
            .all(|s| *s == 200)
    );

    // Redis down: the cache is bypassed, every request still answered.
    redis_proxy.cut().await;
    assert!(
        tally(0, burst(&r, &free_secret, 8, "noredis").await)
            .iter()
            .all(|s| *s == 200)
    );
    assert!(
        tally(1, burst(&r, &capped_secret, 8, "noredis").await)
            .iter()
            .all(|s| *s == 200)
    );
    let (status, v) = readyz(&r).await;
    assert_eq!(
        (status, v["status"].as_str(), v["cache"].as_str()),
        (200, Some("degraded"), Some("bypassed")),
        "{v}"
    );
    redis_proxy.restore().await;

    // PostgreSQL down: no reservation, so the budgeted key gets 503 and nothing is sent;
    // the other key's requests are answered and their rows spooled.
    pg_proxy.cut().await;
    let before = mock.requests().len();
    let refused = tally(1, burst(&r, &capped_secret, 8, "nopg").await);
    assert!(refused.iter().all(|s| *s == 503), "{refused:?}");
    assert_eq!(
        mock.requests().len(),
        before,
        "a refused request reached the upstream"
    );
    assert!(
        tally(0, burst(&r, &free_secret, 8, "nopg").await)
            .iter()
            .all(|s| *s == 200)
    );
    let (status, v) = readyz(&r).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (503, Some("unavailable")),
        "{v}"
    );
    let start = Instant::now();
    // Those 8 rows, and any earlier ones still queued when it went down.
    while readyz(&r).await.1["ledger_spooled"].as_u64() < Some(8) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "rows were not spooled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Back: the spool is replayed once.
    pg_proxy.restore().await;
    let start = Instant::now();
    loop {
        let (status, v) = readyz(&r).await;
        if status == 200 && v["ledger_spooled"] == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "not replayed: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        tally(1, burst(&r, &capped_secret, 4, "back").await)
            .iter()
            .all(|s| *s == 200)
    );
    r.stop().await;

    let store = PgStore::connect(&pg, &PgOptions::default()).await.unwrap();
    for (i, id) in [&free.id, &capped.id].into_iter().enumerate() {
        let u = store
            .usage(&UsageQuery {
                scope: Some(id.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            u[0].requests, answered[i],
            "key {i}: one row per answer, none lost or doubled"
        );
        assert_eq!(
            u[0].prompt_tokens + u[0].completion_tokens,
            served[i],
            "key {i}"
        );
    }
    let upstream = mock
        .requests()
        .iter()
        .filter(|q| {
            q["path"]
                .as_str()
                .unwrap_or("")
                .ends_with("/chat/completions")
        })
        .count() as u64;
    assert_eq!(
        upstream + hits,
        answered[0] + answered[1],
        "the ledger equals the upstream's count"
    );
    assert!(!spool.exists());
}

/// `n` requests alternating between `replicas`, `concurrent` at a time; the statuses.
async fn spread(replicas: &[&Replica], key: &str, n: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let url = replicas[i % replicas.len()].url("/v1/chat/completions");
        let key = key.to_string();
        tasks.push(tokio::spawn(async move {
            chat(url, &key, &crate::chat_body("gpt-4o-mini", "hi")).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        let (status, text) = t.await.unwrap();
        if status == 429 {
            assert_eq!(error_of(&text)["code"], "rate_limit_exceeded", "{text}");
        }
        out.push(status);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keys_rpm_holds_across_replicas_and_falls_back_per_replica() {
    let Some(pg) = require_service("LLMKIT_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(redis) = require_service("LLMKIT_TEST_REDIS_URL") else {
        return;
    };
    let redis_proxy = llmkit_testkit::TcpProxy::start(llmkit_testkit::host_port(&redis).unwrap())
        .await
        .unwrap();
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shared = |name: &str| {
        let mut s = settings(
            &pg,
            Some(&redis_proxy.via(&redis)),
            dir.path().join(format!("{name}.spool")),
            Duration::from_secs(60),
        );
        s.limits_fallback = llmkit_gateway::LimitsFallback::PerReplica { replicas: 2 };
        s
    };
    let a = Replica::start(&mock, dir.path(), "a", shared("a")).await;
    let b = Replica::start(&mock, dir.path(), "b", shared("b")).await;
    let admin = ClusterAdmin::connect(&settings(
        &pg,
        Some(&redis),
        dir.path().join("x"),
        Duration::from_secs(60),
    ))
    .await
    .unwrap();
    let (_, secret) = admin
        .create(&NewKey {
            name: "limited".into(),
            rpm: Some(10),
            ..NewKey::default()
        })
        .await
        .unwrap();
    let secret = secret.expose_secret().to_string();
    let statuses = spread(&[&a, &b], &secret, 30).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        ok, 10,
        "10 RPM over two replicas together, not 20: {statuses:?}"
    );

    // Redis down: each replica enforces half the limit in its own memory.
    redis_proxy.cut().await;
    let statuses = spread(&[&a], &secret, 12).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        ok, 5,
        "half of 10 RPM on one replica without Redis: {statuses:?}"
    );
    a.stop().await;
    b.stop().await;
}

/// `method path` of a replica's admin API with the master key: the status and JSON body.
async fn admin(
    r: &Replica,
    method: &str,
    path: &str,
    master: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, text) = crate::send_to(r.url(path), method, Some(master), body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_api_works_across_replicas_on_postgres() {
    let Some(pg) = require_service("LLMKIT_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(redis) = require_service("LLMKIT_TEST_REDIS_URL") else {
        return;
    };
    let master = "replica-admin-master-key-0123456789";
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(60);
    let start = |name: &'static str| {
        let shared = settings(
            &pg,
            Some(&redis),
            dir.path().join(format!("{name}.spool")),
            ttl,
        );
        let (mock, dir) = (&mock, dir.path());
        async move { Replica::start_with_master(mock, dir, name, shared, Some(master)).await }
    };
    let a = start("admin-a").await;
    let b = start("admin-b").await;
    // A key made through A's admin API works on B (one PostgreSQL).
    let name = format!("pg-admin-{}", std::process::id());
    let (status, made) = admin(
        &a,
        "POST",
        "/admin/keys",
        master,
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let secret = made["secret"].as_str().unwrap().to_string();
    let body = crate::chat_body("gpt-4o-mini", "through b");
    assert_eq!(
        chat(b.url("/v1/chat/completions"), &secret, &body).await.0,
        200
    );
    // B's request shows in A's spend and the key in A's list, without its secret.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, spend) = admin(&a, "GET", "/admin/spend?days=1", master, None).await;
        assert_eq!(status, 200, "{spend}");
        let row = spend["by_key"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == id.as_str())
            .cloned();
        if let Some(row) = row {
            assert_eq!(row["requests"], 1, "{row}");
            assert!(row["total_tokens"].as_u64().unwrap() > 0, "{row}");
            assert!(!spend.to_string().contains(&secret));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B's row never reached A's spend: {spend}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, list) = admin(&a, "GET", "/admin/keys", master, None).await;
    assert_eq!(status, 200);
    assert!(list.to_string().contains(&id) && !list.to_string().contains(&secret));
    let (status, errors) = admin(&a, "GET", "/admin/errors?limit=5", master, None).await;
    assert_eq!(status, 200, "{errors}");
    // Revoked through A's admin API, the key is refused by B within a second (pub/sub).
    let (status, revoked) = admin(
        &a,
        "POST",
        &format!("/admin/keys/{id}/revoke"),
        master,
        None,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    until_refused(
        &b.url("/v1/chat/completions"),
        &secret,
        Duration::from_secs(1),
    )
    .await;
    a.stop().await;
    b.stop().await;
}
