//! The gateway dashboard in Debian's headless Chromium, driven by `playwright-core`
//! (`tests/ui/check.cjs`, installed with `npm ci` from the pinned lock beside it into
//! target/ui): `llmkit serve` with a master key and traffic from two virtual keys, the page
//! shows the ledger's spend and tokens per key, and revoking a key in the page makes that
//! key's next request fail with 401.
//!
//! `LLMKIT_UI_SCREENSHOT=PATH` saves a screenshot of the page there (how
//! `docs/gateway-ui.png` is made). Without chromium, node or npm the test skips with a
//! `SKIP` line, and fails instead under `LLMKIT_REQUIRE_TOOLS=1`.
// The helpers below are test code too; clippy.toml exempts only `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use llmkit_testkit::MockConfig;
use llmkit_testkit::fixtures::require_tool;
use serde_json::{Value, json};

use crate::support::{Llmkit, Mock, stdout};

const MASTER: &str = "ui-test-master-key-0123456789abcdef";

/// Requests the mock answers in a minute: one more gets its 429 (an error row).
const MOCK_RPM: u32 = 6;

/// playwright-core, installed once with `npm ci` from the pinned lock into target/ui; the
/// `node_modules` directory, or `None` (SKIP, or a failure under CI).
fn playwright() -> Option<PathBuf> {
    require_tool(&["chromium"])?;
    require_tool(&["node"])?;
    require_tool(&["npm"])?;
    crate::support::npm_installed("ui", "playwright-core/package.json")
}

/// One chat request with a bearer key over raw HTTP/1.1; the status code.
fn chat(addr: &str, key: &str, model: &str, text: &str) -> u16 {
    let body = json!({"model": model, "messages": [{"role": "user", "content": text}],
                      "max_tokens": 20})
    .to_string();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn create_key(mock: &Mock, home: &Path, name: &str) -> (String, String) {
    let out = Llmkit::against(mock)
        .env_home(home)
        .env_store(home)
        .args(["keys", "create", "--name", name])
        .run();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let field = |f: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(f))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    (field("id:"), field("secret:"))
}

impl Llmkit {
    fn env_store(&mut self, home: &Path) -> &mut Self {
        self.cmd.env("LLMKIT_STORE", home.join("llmkit.db"));
        self
    }
}

/// Per key id: (requests, tokens, cost) of the gateway's ledger rows, once `want` rows are
/// there (the ledger is written in the background).
fn ledger_per_key(home: &Path, want: usize) -> BTreeMap<String, (u64, u64, f64)> {
    let started = Instant::now();
    loop {
        let store = llmkit_store::Store::open(&home.join("llmkit.db")).unwrap();
        let rows: Vec<_> = store
            .ledger_rows(&Default::default())
            .unwrap()
            .into_iter()
            .filter(|r| r.command == "serve")
            .collect();
        if rows.len() >= want {
            let mut out: BTreeMap<String, (u64, u64, f64)> = BTreeMap::new();
            for r in rows {
                let e = out.entry(r.profile.unwrap()).or_default();
                e.0 += 1;
                e.1 += r.prompt_tokens + r.completion_tokens;
                e.2 += r.cost_usd;
            }
            return out;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the ledger has {} of {want} rows",
            rows.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_dashboard_shows_the_ledger_and_revokes_keys_in_chromium() {
    let Some(modules) = playwright() else {
        return;
    };
    let mock = Mock::start(MockConfig {
        rpm: Some(MOCK_RPM),
        ..MockConfig::default()
    });
    let home = tempfile::tempdir().unwrap();
    let (web, web_secret) = create_key(&mock, home.path(), "web-app");
    let (nb, nb_secret) = create_key(&mock, home.path(), "notebook");

    let mut serve = Llmkit::against(&mock);
    serve.env_home(home.path()).env_store(home.path());
    serve.cmd.env("LLMKIT_UI_MASTER", MASTER);
    serve.args([
        "serve",
        "--port",
        "0",
        "--master-key-env",
        "LLMKIT_UI_MASTER",
        "--max-retries",
        "0",
    ]);
    let (mut child, addr, mut lines) = crate::support::start_serve(&mut serve, false);
    let mut second = String::new();
    lines.read_line(&mut second).unwrap();
    assert!(second.contains("/ui"), "{second}");

    // Traffic from both keys on two models, then one upstream 429.
    let mut sent = 0;
    for (secret, model, n) in [
        (&web_secret, "gpt-4o-mini", 3),
        (&web_secret, "gpt-4o", 1),
        (&nb_secret, "gpt-4o-mini", 2),
    ] {
        for i in 0..n {
            let s = chat(
                &addr,
                secret,
                model,
                &format!("summarise report {i} for {model}"),
            );
            assert_eq!(s, 200);
            sent += 1;
        }
    }
    assert_eq!(sent, MOCK_RPM);
    assert_eq!(chat(&addr, &nb_secret, "gpt-4o-mini", "one too many"), 429);
    let ledger = ledger_per_key(home.path(), sent as usize + 1);
    assert_eq!(ledger[&web].0, 4);
    assert_eq!(ledger[&nb].0, 3);
    let expect: Value = ledger
        .iter()
        .map(|(k, (requests, tokens, cost))| {
            (
                k.clone(),
                json!({"requests": requests, "tokens": tokens, "cost": cost}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/check.cjs");
    let mut node = Command::new("node");
    node.arg(&script)
        .env("LLMKIT_UI_MODULES", &modules)
        .env("LLMKIT_UI_URL", format!("http://{addr}"))
        .env("LLMKIT_UI_MASTER", MASTER)
        .env("LLMKIT_UI_EXPECT", expect.to_string())
        .env("LLMKIT_UI_REVOKE", &nb)
        .env_remove("LLMKIT_UI_SCREENSHOT");
    if let Some(shot) = std::env::var_os("LLMKIT_UI_SCREENSHOT") {
        node.env("LLMKIT_UI_SCREENSHOT", shot);
    }
    let out = node.output().unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "the page check failed:\n{o}\n{e}");
    let seen: Value = serde_json::from_str(o.lines().last().unwrap_or("")).unwrap();
    assert_eq!(seen["ok"], true, "{o}");
    // The page listed the upstream's 429 among the recent errors.
    assert_eq!(seen["errorRows"], json!(["429"]), "{o}");
    for secret in [&web_secret, &nb_secret] {
        assert!(!o.contains(secret.as_str()) && !e.contains(secret.as_str()));
    }

    // Revoked in the page: that key's next request is refused; the other key is not.
    assert_eq!(chat(&addr, &nb_secret, "gpt-4o-mini", "after revoke"), 401);
    assert_ne!(chat(&addr, &web_secret, "gpt-4o-mini", "still here"), 401);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
