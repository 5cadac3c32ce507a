//! `llmkit keys create/list/revoke/rotate` and `llmkit serve` on `--port 0`, driven over raw
//! HTTP/1.1 on 127.0.0.1.
// The helpers below are test code too; clippy.toml exempts only `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::{Llmkit, Mock, assert_clear_error, stdout};

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
    let mut child = serve
        .cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("llmkit gateway listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();

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
