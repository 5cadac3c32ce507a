//! `llmkit serve` replicas over the shared PostgreSQL and Redis of the config's `[gateway]`
//! table (`scripts/services.sh` starts them): keys made by `llmkit keys` reach both
//! processes, and a revocation reaches the other process within a second.
// The helpers below are test code too; clippy.toml exempts only `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use llmkit_testkit::fixtures::require_service;

use crate::support::{Llmkit, Mock, assert_clear_error, stdout};

fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

fn status_of(addr: &str, path: &str, key: &str) -> String {
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
    text.lines().next().unwrap_or("").to_string()
}

fn serve(mock: &Mock, home: &std::path::Path) -> (Child, String) {
    let mut cmd = Llmkit::against(mock);
    cmd.env_home(home).args(["serve", "--port", "0"]);
    let mut child = cmd
        .cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("llmkit gateway listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    (child, addr)
}

fn stop(mut child: Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
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
fn two_serve_processes_share_keys_and_revocations() {
    let Some(pg) = require_service("LLMKIT_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(redis) = require_service("LLMKIT_TEST_REDIS_URL") else {
        return;
    };
    let mock = Mock::default();
    let setup = Llmkit::against(&mock);
    let home = setup.home.path().to_path_buf();
    let config = setup.config_path();
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    // A long key-cache TTL: only the Redis message can make the other process notice.
    std::fs::write(
        &config,
        format!("[gateway]\nstore = \"{pg}\"\nredis = \"{redis}\"\nkey_cache_ttl_secs = 60\n"),
    )
    .unwrap();
    let out = Llmkit::against(&mock)
        .env_home(&home)
        .args(["keys", "create", "--name", "replicas"])
        .run();
    assert!(out.status.success(), "{out:?}");
    let (id, secret) = (field(&stdout(&out), "id:"), field(&stdout(&out), "secret:"));
    let out = Llmkit::against(&mock)
        .env_home(&home)
        .args(["keys", "list", "--json"])
        .run();
    assert!(
        stdout(&out).contains(&id),
        "the key is in PostgreSQL: {out:?}"
    );

    let (a, addr_a) = serve(&mock, &home);
    let (b, addr_b) = serve(&mock, &home);
    for addr in [&addr_a, &addr_b] {
        let s = status_of(addr, "/v1/models", &secret);
        assert!(s.contains("200"), "{addr}: {s}");
    }
    let start = Instant::now();
    let out = Llmkit::against(&mock)
        .env_home(&home)
        .args(["keys", "revoke", &id])
        .run();
    assert!(out.status.success(), "{out:?}");
    loop {
        if status_of(&addr_b, "/v1/models", &secret).contains("401") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the other process still accepts a revoked key"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(status_of(&addr_a, "/v1/models", &secret).contains("401"));
    stop(a);
    stop(b);
}

#[test]
fn a_gateway_store_that_is_not_postgres_is_a_config_error() {
    let mock = Mock::default();
    let mut k = Llmkit::against(&mock);
    let config = k.config_path();
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "[gateway]\nstore = \"mysql://db/llmkit\"\n").unwrap();
    let out = k.args(["keys", "list"]).run();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_clear_error(&out, "not a PostgreSQL URL");
}
