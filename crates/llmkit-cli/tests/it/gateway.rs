//! `llmkit keys create/list/revoke/rotate` and `llmkit serve` on `--port 0`, driven over raw
//! HTTP/1.1 on 127.0.0.1.
// The helpers below are test code too; clippy.toml exempts only `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

use llmkit_testkit::MockConfig;
use serde_json::{Value, json};

use crate::support::{CHAT_MODEL, Llmkit, Mock, assert_clear_error, have_models, stdout};

/// `(id, secret)` from the output of `keys create` or `keys rotate`.
fn id_and_secret(out: &str) -> (String, String) {
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    (field("id:"), field("secret:"))
}

/// One GET with a bearer key; the status line and the body.
fn get(addr: &str, path: &str, key: &str) -> (String, String) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap_or("").to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// One POST of a JSON body with a bearer key; the status line and the body.
fn post(addr: &str, path: &str, key: &str, body: &Value) -> (String, String) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let body = body.to_string();
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap_or("").to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// Creates a key in `home`'s store; its secret.
fn key_in(mock: &Mock, home: &std::path::Path) -> String {
    let out = Llmkit::against(mock)
        .env_home(home)
        .args(["keys", "create", "--name", "routes"])
        .run();
    assert!(out.status.success(), "{out:?}");
    id_and_secret(&stdout(&out)).1
}

/// Starts `serve --port 0` with `home`'s config and store; the child and its address.
fn serve(mock: &Mock, home: &std::path::Path) -> (Child, String) {
    let mut serve = Llmkit::against(mock);
    serve.env_home(home).args(["serve", "--port", "0"]);
    let (child, addr, _) = crate::support::start_serve(&mut serve, true);
    (child, addr)
}

fn write_config(home: &std::path::Path, text: &str) {
    let path = home.join("config/llmkit/config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
}

fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "max_tokens": 8, "temperature": 0,
        "messages": [{"role": "user", "content": text}]})
}

/// Sends SIGTERM and waits for a clean exit.
fn terminate(child: &mut Child) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("serve did not stop on SIGTERM");
}

#[test]
fn keys_and_serve_work_together() {
    let mock = Mock::default();
    let mut create = Llmkit::against(&mock);
    let home = create.home.path().to_path_buf();
    let out = create
        .args([
            "keys",
            "create",
            "--name",
            "ci",
            "--models",
            "gpt-4o-mini",
            "--budget-daily",
            "2",
            "--expires",
            "30d",
            "--rpm",
            "60",
            "--max-concurrent",
            "4",
        ])
        .run();
    assert!(out.status.success(), "{out:?}");
    let (id, secret) = id_and_secret(&stdout(&out));
    assert!(secret.starts_with("lk-"), "{secret}");

    let out = Llmkit::against(&mock)
        .env_home(&home)
        .args(["keys", "list"])
        .run();
    let listed = stdout(&out);
    assert!(
        listed.contains(&id)
            && listed.contains("active")
            && listed.contains("$2.00")
            && listed.contains("60rpm 4conc"),
        "{listed}"
    );
    assert!(!listed.contains(&secret));
    let out = Llmkit::against(&mock)
        .env_home(&home)
        .args(["keys", "list", "--json"])
        .run();
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["models"][0], "gpt-4o-mini");
    assert_eq!(v[0]["rpm"], 60);
    assert_eq!(v[0]["max_concurrent"], 4);
    assert!(v[0]["tpm"].is_null());
    // A zero limit is a usage error, caught by the flag parser.
    let out = Llmkit::against(&mock)
        .env_home(&home)
        .args(["keys", "create", "--name", "z", "--tpm", "0"])
        .run();
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let mut serve = Llmkit::against(&mock);
    serve.env_home(&home).args(["serve", "--port", "0"]);
    let (mut child, addr, mut lines) = crate::support::start_serve(&mut serve, true);

    let (status, body) = get(&addr, "/v1/models", &secret);
    assert!(status.contains("200"), "{status} {body}");
    assert!(
        body.contains("gpt-4o-mini") && !body.contains("gpt-4.1"),
        "{body}"
    );
    let (status, _) = get(&addr, "/v1/models", "lk-000000000000-nope");
    assert!(status.contains("401"), "{status}");

    let out = Llmkit::against(&mock)
        .env_home(&home)
        .args(["keys", "revoke", &id])
        .run();
    assert!(out.status.success(), "{out:?}");
    let (status, body) = get(&addr, "/v1/models", &secret);
    assert!(
        status.contains("401") && body.contains("revoked"),
        "{status} {body}"
    );
    terminate(&mut child);

    let mut rest = String::new();
    lines.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let hex = secret.rsplit('-').next().unwrap();
    assert!(
        !rest.contains(hex) && !err.contains(hex),
        "serve printed the key"
    );
    // Nothing under the home (config, store, WAL) holds the secret.
    let mut dirs = vec![home.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(hex.len()).any(|w| w == hex.as_bytes()),
                    "{} holds the key",
                    p.display()
                );
            }
        }
    }
    assert_clear_error(
        &Llmkit::against(&mock)
            .env_home(&home)
            .args(["keys", "rotate", &id])
            .run(),
        "no live key",
    );
}

#[test]
fn serve_needs_an_upstream_key() {
    let out = Llmkit::bare().args(["serve", "--port", "0"]).run();
    assert_clear_error(&out, "upstream API key");
}

#[test]
fn routes_balance_by_ewma_and_learn_the_upstreams_limits() {
    // `tiny` allows one request a minute, `big` any number; the route balances by EWMA.
    let default = Mock::default();
    let tiny = Mock::start(MockConfig {
        rpm: Some(1),
        ..MockConfig::default()
    });
    let big = Mock::default();
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &format!(
            "[profiles.tiny]\nbase_url = \"{}\"\napi_key = \"sk-tiny-000000000000\"\nmax_retries = 0\n\
             [profiles.big]\nbase_url = \"{}\"\napi_key = \"sk-big-0000000000000\"\nmax_retries = 0\n\
             [gateway.routes.\"team-model\"]\nupstreams = [\"tiny\", \"big\"]\nbalance = \"ewma\"\n",
            tiny.base_url(),
            big.base_url()
        ),
    );
    let key = key_in(&default, home.path());
    let (mut child, addr) = serve(&default, home.path());
    for i in 0..12 {
        let (status, body) = post(
            &addr,
            "/v1/chat/completions",
            &key,
            &chat("team-model", &format!("route {i}")),
        );
        assert!(status.contains("200"), "request {i}: {status} {body}");
    }
    terminate(&mut child);
    // tiny answered once, said it had nothing left, and was skipped from then on.
    let (on_tiny, on_big) = (
        tiny.requests_to("/chat/completions").len(),
        big.requests_to("/chat/completions").len(),
    );
    assert!(on_tiny <= 1, "tiny served {on_tiny}");
    assert_eq!(on_tiny + on_big, 12);
    assert!(default.requests_to("/chat/completions").is_empty());
    // `llmkit usage --json` reads the same store: every row named its upstream.
    let rows = ledger_upstreams(home.path());
    assert_eq!(rows.len(), 12, "{rows:?}");
    assert!(rows.iter().all(|u| u == "tiny" || u == "big"), "{rows:?}");
}

/// The `upstream` column of the gateway's ledger rows in `home`'s store.
fn ledger_upstreams(home: &std::path::Path) -> Vec<String> {
    let path = home.join("data/llmkit/llmkit.db");
    let store = llmkit_store::Store::open(&path).unwrap();
    store
        .ledger_rows(&Default::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.command == "serve")
        .map(|r| r.upstream.unwrap_or_else(|| "-".into()))
        .collect()
}

#[test]
fn a_bad_route_is_a_config_error() {
    let mock = Mock::default();
    for (config, needle) in [
        (
            "[profiles.a]\nbase_url = \"http://127.0.0.1:1/v1\"\n[gateway.routes.\"m\"]\nupstreams = [\"a\"]\nbalance = \"fastest\"\n",
            "balance",
        ),
        ("[gateway.routes]\n\"m\" = [\"local:\"]\n", "local:"),
        (
            "[profiles.a]\nbase_url = \"http://127.0.0.1:1/v1\"\n[gateway.routes]\n\"m\" = [\"a\", \"a\"]\n",
            "twice",
        ),
    ] {
        let mut run = Llmkit::against(&mock);
        write_config(run.home.path(), config);
        let out = run.args(["serve", "--port", "0"]).run();
        assert_clear_error(&out, needle);
    }
}

#[test]
fn a_local_upstream_serves_a_route_in_process() {
    if !have_models(&[CHAT_MODEL]) {
        return;
    }
    // `broken` refuses connections, so every request falls back to the embedded model.
    let default = Mock::default();
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        "[profiles.broken]\nbase_url = \"http://127.0.0.1:1/v1\"\napi_key = \"sk-broken-00000000000\"\nmax_retries = 0\n\
         [gateway.routes]\n\"on-device\" = [\"local:smollm2-135m\"]\n\"with-fallback\" = [\"broken\", \"local:smollm2-135m\"]\n",
    );
    let key = key_in(&default, home.path());
    let (mut child, addr) = serve(&default, home.path());
    let (status, body) = post(
        &addr,
        "/v1/chat/completions",
        &key,
        &chat("on-device", "What is the capital of France?"),
    );
    assert!(status.contains("200"), "{status} {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["model"].as_str().unwrap_or("").contains("SmolLM2"), "{v}");
    assert!(
        !v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{v}"
    );
    // A stream, through the pool that falls back from the dead profile.
    // (Two prompts: the same one again would be a cache hit, which no upstream serves.)
    for text in ["Name a colour.", "Name an animal."] {
        let mut streamed = chat("with-fallback", text);
        streamed["stream"] = json!(true);
        let (status, body) = post(&addr, "/v1/chat/completions", &key, &streamed);
        assert!(status.contains("200"), "{status} {body}");
        assert!(body.contains("data: [DONE]"), "{body}");
    }
    terminate(&mut child);
    assert!(default.requests_to("/chat/completions").is_empty());
    let rows = ledger_upstreams(home.path());
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|u| u == "local:smollm2-135m"), "{rows:?}");
}
