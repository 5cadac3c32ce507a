//! The admin API behind the master key and the dashboard's page: off without a master key,
//! 401/403 for the wrong credentials, the key round trip, spend equal to the ledger's, and
//! no secret in any answer.

use std::collections::BTreeMap;

use llmkit_client::ClientConfig;
use llmkit_gateway::{NewKey, Route};
use llmkit_store::UsageFilter;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::{Harness, chat_body, client, error_of, post};

const MASTER: &str = "master-key-for-tests-0123456789";

async fn with_master() -> Harness {
    Harness::start_with(|cfg| {
        cfg.master_key = Some(SecretString::from(MASTER));
        // A model whose only upstream refuses connections: its requests fail with 502.
        cfg.routes.push(Route::new(
            "broken",
            vec![(
                "nowhere".into(),
                ClientConfig::new("http://127.0.0.1:1/v1")
                    .api_key(crate::UPSTREAM_KEY)
                    .max_retries(0)
                    .into(),
            )],
        ));
    })
    .await
}

/// Sends an admin request; returns (status, body text).
async fn admin(
    h: &Harness,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    crate::send_to(h.url(path), method, key, body).await
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Every admin endpoint, with a body where it needs one.
fn endpoints(id: &str) -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        ("GET", "/admin/keys".into(), None),
        ("POST", "/admin/keys".into(), Some(json!({"name": "x"}))),
        ("POST", format!("/admin/keys/{id}/revoke"), None),
        ("POST", format!("/admin/keys/{id}/rotate"), None),
        ("GET", "/admin/spend?days=7".into(), None),
        ("GET", "/admin/errors?limit=5".into(), None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_dashboard_are_off_without_a_master_key() {
    let mut h = Harness::start().await;
    let (id, secret) = h.any_key();
    for (method, path, body) in endpoints(&id) {
        for key in [None, Some(MASTER), Some(secret.as_str())] {
            let (s, b) = admin(&h, method, &path, key, body.clone()).await;
            assert_eq!(s, 404, "{method} {path}: {b}");
            assert_eq!(error_of(&b)["code"], "unknown_url");
        }
    }
    for path in ["/ui", "/ui/app.js"] {
        let r = client().get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    // Nothing was changed: the key still works.
    let (s, _, _) = post(
        &h,
        "/v1/chat/completions",
        Some(&secret),
        &chat_body("gpt-4o-mini", "hi"),
    )
    .await;
    assert_eq!(s, 200);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_needs_the_master_key_and_refuses_virtual_keys() {
    let mut h = with_master().await;
    let (id, secret) = h.any_key();
    let wrong = format!("{MASTER}x");
    for (method, path, body) in endpoints(&id) {
        let (s, b) = admin(&h, method, &path, None, body.clone()).await;
        assert_eq!(s, 401, "{method} {path} without a key: {b}");
        error_of(&b);
        for bad in [wrong.as_str(), "lk-garbage", &MASTER[..MASTER.len() - 1]] {
            let (s, b) = admin(&h, method, &path, Some(bad), body.clone()).await;
            assert_eq!(s, 401, "{method} {path} with {bad}: {b}");
            assert_eq!(error_of(&b)["code"], "invalid_api_key");
        }
        let (s, b) = admin(&h, method, &path, Some(&secret), body.clone()).await;
        assert_eq!(s, 403, "{method} {path} with a virtual key: {b}");
        assert_eq!(error_of(&b)["code"], "admin_only");
        assert!(!b.contains(&secret));
    }
    // None of those changed anything.
    let keys = h.store.key_list().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].revoked.is_none());
    let (s, _, _) = post(
        &h,
        "/v1/chat/completions",
        Some(&secret),
        &chat_body("gpt-4o-mini", "hi"),
    )
    .await;
    assert_eq!(s, 200);
    // The master key is not a virtual key either.
    let (s, _, _) = post(
        &h,
        "/v1/chat/completions",
        Some(MASTER),
        &chat_body("gpt-4o-mini", "hi"),
    )
    .await;
    assert_eq!(s, 401);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_listed_rotated_and_revoked() {
    let mut h = with_master().await;
    let body = chat_body("gpt-4o-mini", "hello");
    let (s, b) = admin(
        &h,
        "POST",
        "/admin/keys",
        Some(MASTER),
        Some(json!({
            "name": "notebook",
            "models": ["gpt-4o-mini"],
            "rpm": 60,
            "tpm": 40000,
            "max_concurrent": 4,
            "budget_daily_usd": 2.5,
            "expires": "30d",
        })),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let created = json_of(&b);
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with(&format!("lk-{id}-")), "{secret}");
    assert_eq!(created["status"], "active");
    assert_eq!(created["rpm"], 60);
    assert_eq!(created["max_concurrent"], 4);
    let expires = created["expires"].as_f64().unwrap() - created["created"].as_f64().unwrap();
    assert!((expires - 30.0 * 86_400.0).abs() < 1.0, "{expires}");
    // The store holds what was asked for.
    let stored = h.store.key_get(&id).unwrap().unwrap().0;
    assert_eq!(stored.models, ["gpt-4o-mini"]);
    assert_eq!(stored.tpm, Some(40_000));
    assert_eq!(stored.budget_daily_usd, Some(2.5));
    let (s, _, _) = post(&h, "/v1/chat/completions", Some(&secret), &body).await;
    assert_eq!(s, 200);

    // Listed, without its secret or hash.
    let (s, b) = admin(&h, "GET", "/admin/keys", Some(MASTER), None).await;
    assert_eq!(s, 200, "{b}");
    assert!(!b.contains(&secret) && !b.contains("secret") && !b.contains("sha256"));
    let list = json_of(&b);
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["name"], "notebook");

    // Rotated: the old secret stops at once, the new one works.
    let (s, b) = admin(
        &h,
        "POST",
        &format!("/admin/keys/{id}/rotate"),
        Some(MASTER),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let rotated = json_of(&b)["secret"].as_str().unwrap().to_string();
    assert_ne!(rotated, secret);
    let (s, _, _) = post(&h, "/v1/chat/completions", Some(&secret), &body).await;
    assert_eq!(s, 401);
    let (s, _, _) = post(&h, "/v1/chat/completions", Some(&rotated), &body).await;
    assert_eq!(s, 200);

    // Revoked: its very next request is refused.
    let (s, b) = admin(
        &h,
        "POST",
        &format!("/admin/keys/{id}/revoke"),
        Some(MASTER),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _, b) = post(&h, "/v1/chat/completions", Some(&rotated), &body).await;
    assert_eq!(s, 401, "{b}");
    assert!(
        error_of(&b)["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let (_, b) = admin(&h, "GET", "/admin/keys", Some(MASTER), None).await;
    assert_eq!(json_of(&b)["data"][0]["status"], "revoked");
    // A revoked key cannot be rotated back to life; unknown ids are 404 (and not echoed).
    for path in [
        format!("/admin/keys/{id}/rotate"),
        format!("/admin/keys/{secret}/revoke"),
        "/admin/keys/000000000000/revoke".to_string(),
    ] {
        let (s, b) = admin(&h, "POST", &path, Some(MASTER), None).await;
        assert_eq!(s, 404, "{path}: {b}");
        assert_eq!(error_of(&b)["code"], "key_not_found");
        assert!(!b.contains(&secret));
    }

    // Bad settings are 400s with OpenAI bodies, and create nothing.
    for bad in [
        json!({"name": ""}),
        json!({"name": "x", "rpm": 0}),
        json!({"name": "x", "budget_daily_usd": -1}),
        json!({"name": "x", "expires": "soon"}),
        json!({"name": "x", "expires": -5}),
        json!({"name": "x", "colour": "red"}),
        json!({"models": ["a"]}),
    ] {
        let (s, b) = admin(&h, "POST", "/admin/keys", Some(MASTER), Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {b}");
        error_of(&b);
    }
    assert_eq!(h.store.key_list().unwrap().len(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_is_the_ledgers_and_errors_are_its_failures() {
    let mut h = with_master().await;
    let (a, secret_a) = h.key(NewKey {
        name: "app-a".into(),
        ..NewKey::default()
    });
    let (b, secret_b) = h.key(NewKey {
        name: "app-b".into(),
        ..NewKey::default()
    });
    for (secret, model, n) in [
        (&secret_a, "gpt-4o-mini", 3),
        (&secret_a, "gpt-4o", 1),
        (&secret_b, "gpt-4o-mini", 2),
    ] {
        for i in 0..n {
            let body = chat_body(model, &format!("request {i} for {model}"));
            let (s, _, text) = post(&h, "/v1/chat/completions", Some(secret), &body).await;
            assert_eq!(s, 200, "{text}");
        }
    }
    // An upstream that cannot be reached.
    let (s, _, _) = post(
        &h,
        "/v1/chat/completions",
        Some(&secret_b),
        &chat_body("broken", "hi"),
    )
    .await;
    assert_eq!(s, 502);

    let (s, body) = admin(&h, "GET", "/admin/spend?days=1", Some(MASTER), None).await;
    assert_eq!(s, 200, "{body}");
    let spend = json_of(&body);
    assert_eq!(spend["days"], 1);
    // The ledger's own sums, per key and per model.
    let rows = h.store.ledger_rows(&UsageFilter::default()).unwrap();
    assert!(rows.len() >= 7, "{rows:?}");
    let mut per_key: BTreeMap<String, (u64, u64, f64)> = BTreeMap::new();
    let mut per_model: BTreeMap<String, (u64, u64, f64)> = BTreeMap::new();
    let mut per_upstream: BTreeMap<String, (u64, u64, f64)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.command == "serve") {
        let upstream = r.upstream.clone().unwrap_or_else(|| "-".into());
        for (map, k) in [
            (&mut per_key, r.profile.clone().unwrap()),
            (&mut per_model, r.model.clone()),
            (&mut per_upstream, upstream),
        ] {
            let e = map.entry(k).or_default();
            e.0 += 1;
            e.1 += r.prompt_tokens + r.completion_tokens;
            e.2 += r.cost_usd;
        }
    }
    let check = |list: &Value, field: &str, want: &BTreeMap<String, (u64, u64, f64)>| {
        let got: BTreeMap<String, (u64, u64, f64)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r[field].as_str().unwrap().to_string(),
                    (
                        r["requests"].as_u64().unwrap(),
                        r["total_tokens"].as_u64().unwrap(),
                        r["cost_usd"].as_f64().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (k, w) in want {
            let g = got[k];
            assert_eq!((g.0, g.1), (w.0, w.1), "{field} {k}");
            assert!((g.2 - w.2).abs() < 1e-12, "{field} {k}: {} vs {}", g.2, w.2);
        }
    };
    check(&spend["by_key"], "key", &per_key);
    check(&spend["by_model"], "model", &per_model);
    check(&spend["by_upstream"], "upstream", &per_upstream);
    // Every row names its upstream: the default one, or the route's (which failed).
    assert!(per_upstream.contains_key("default"), "{per_upstream:?}");
    assert_eq!(per_upstream["nowhere"].0, 1, "{per_upstream:?}");
    assert_eq!(per_key[&a].0, 4);
    assert!(per_key[&a].2 > 0.0, "priced models cost something");
    let names: BTreeMap<&str, &str> = spend["by_key"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names[a.as_str()], "app-a");
    assert_eq!(names[b.as_str()], "app-b");
    let total: u64 = per_key.values().map(|v| v.0).sum();
    assert_eq!(spend["total"]["requests"].as_u64().unwrap(), total);
    let by_day: u64 = spend["by_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(by_day, total);

    // The failure is listed, newest first, with its key's name.
    let (s, errors) = admin(&h, "GET", "/admin/errors?limit=10", Some(MASTER), None).await;
    assert_eq!(s, 200, "{errors}");
    let list = json_of(&errors)["data"].as_array().unwrap().clone();
    assert!(!list.is_empty(), "{errors}");
    let failed = h.store.recent_failures(Some("serve"), 10).unwrap();
    assert_eq!(list.len(), failed.len());
    assert_eq!(list[0]["status"], failed[0].status);
    assert_eq!(list[0]["model"], "broken");
    assert_eq!(list[0]["key"], b.as_str());
    assert_eq!(list[0]["key_name"], "app-b");
    assert!(
        list.iter()
            .all(|r| matches!(r["status"].as_u64().unwrap(), 0 | 400..)),
        "{errors}"
    );

    // Bad query values are 400s.
    for path in [
        "/admin/spend?days=0",
        "/admin/spend?days=9999",
        "/admin/spend?days=x",
        "/admin/errors?limit=0",
        "/admin/errors?limit=-1",
    ] {
        let (s, b) = admin(&h, "GET", path, Some(MASTER), None).await;
        assert_eq!(s, 400, "{path}: {b}");
        error_of(&b);
    }
    // No secret (nor the master key) in any of those answers.
    let (_, keys) = admin(&h, "GET", "/admin/keys", Some(MASTER), None).await;
    for text in [&body, &errors, &keys] {
        for s in [&secret_a, &secret_b, &MASTER.to_string()] {
            assert!(!text.contains(s.as_str()));
        }
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_embedded_under_a_strict_csp() {
    let mut h = with_master().await;
    for (path, kind) in [
        ("/ui", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        // The page itself needs no key: it holds no data and asks for the master key.
        let r = client().get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let headers = r.headers().clone();
        let ct = headers["content-type"].to_str().unwrap();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let text = r.text().await.unwrap();
        // Nothing is loaded from elsewhere.
        for far in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "fetch('http",
            "//cdn",
        ] {
            assert!(!text.contains(far), "{path} has {far}");
        }
        if path == "/ui" {
            assert!(text.contains("/ui/app.js") && !text.contains("<script>"));
            assert!(!text.contains(" style="), "no inline style under the CSP");
        }
    }
    h.stop().await;
}
