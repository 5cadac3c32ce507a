//! The bad-input sweep: runs every row of `sweep.toml` (a bad input, its expected exit code)
//! and snapshots each one's `error:`, `hint:` (and `warning:`) lines in `snapshots/it__sweep__NAME.snap`.
//!
//! Each case must exit with its code, never panic, print an `error:` and a `hint:` line when
//! it fails (and nothing on stderr when stdout was closed early), and leave no partial output
//! file behind. After an intended change of a message, run
//! `INSTA_UPDATE=always cargo test --release -p llmkit-cli --test it sweep::` and review
//! `git diff crates/llmkit-cli/tests/it/snapshots/`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::{Output, Stdio};

use llmkit_testkit::MockConfig;
use serde::Deserialize;

use crate::support::{Llmkit, Mock, stderr};

#[derive(Debug, Deserialize)]
struct Table {
    case: Vec<Case>,
}

/// One row of `sweep.toml` (its header documents the fields).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    args: Vec<String>,
    exit: i32,
    #[serde(default)]
    server: Server,
    stdin: Option<String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    huge: BTreeMap<String, usize>,
    config: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    before: Vec<Vec<String>>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    closed_stdout: bool,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Server {
    #[default]
    Mock,
    Keyed,
    Closed,
    Tls,
    None,
}

/// The servers a case can be aimed at, shared by every case.
struct Servers {
    mock: Mock,
    keyed: Mock,
    /// A loopback port that was free a moment ago and has no listener.
    closed_port: u16,
}

impl Servers {
    fn start() -> Self {
        let closed_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        Self {
            mock: Mock::default(),
            keyed: Mock::start(MockConfig {
                api_key: Some("sk-the-right-key".into()),
                ..MockConfig::default()
            }),
            closed_port,
        }
    }

    /// The ports whose numbers change from run to run.
    fn ports(&self) -> [u16; 3] {
        [port_of(&self.mock), port_of(&self.keyed), self.closed_port]
    }

    fn command(&self, server: Server) -> Llmkit {
        let mut k = match server {
            Server::Mock | Server::Tls => Llmkit::against(&self.mock),
            Server::Keyed => Llmkit::against(&self.keyed),
            Server::Closed | Server::None => Llmkit::bare(),
        };
        match server {
            Server::Tls => {
                let https = self.mock.base_url().replacen("http://", "https://", 1);
                k.cmd.env("OPENAI_BASE_URL", https);
            }
            Server::Closed => {
                k.cmd
                    .env(
                        "OPENAI_BASE_URL",
                        format!("http://127.0.0.1:{}/v1", self.closed_port),
                    )
                    .env("OPENAI_API_KEY", "sk-test-key-000000000000");
            }
            Server::Mock | Server::Keyed | Server::None => {}
        }
        k
    }
}

fn port_of(mock: &Mock) -> u16 {
    mock.server
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap()
}

/// `text` with `{DIR}`, `{MOCK}` and `{MOCK_PORT}` filled in and `\xNN` turned into bytes.
fn expand(text: &str, dir: &Path, servers: &Servers) -> Vec<u8> {
    let text = text
        .replace("{DIR}", &dir.display().to_string())
        .replace("{MOCK_PORT}", &port_of(&servers.mock).to_string())
        .replace("{MOCK}", &servers.mock.base_url());
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') && i + 3 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Replaces the run-dependent parts of `text`: the scratch directory, the temporary
/// directory and the servers' ports.
fn normalise(text: &str, dir: &Path, servers: &Servers) -> String {
    let mut text = text.replace(&dir.display().to_string(), "[DIR]");
    if let Ok(canonical) = dir.canonicalize() {
        text = text.replace(&canonical.display().to_string(), "[DIR]");
    }
    text = text.replace(&std::env::temp_dir().display().to_string(), "[TMP]");
    for port in servers.ports() {
        for host in ["127.0.0.1", "localhost"] {
            text = text.replace(&format!("{host}:{port}"), &format!("{host}:[PORT]"));
        }
        text = text.replace(&format!("port {port}"), "port [PORT]");
    }
    text
}

/// Runs `k` with `stdin` (empty when `None`); with `closed_stdout`, the read end of its
/// stdout is closed at once, as `| head -0` would.
fn run(k: &mut Llmkit, stdin: Option<&[u8]>, closed_stdout: bool) -> Output {
    k.cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = k.cmd.spawn().unwrap();
    if closed_stdout {
        drop(child.stdout.take());
    }
    let writer = child.stdin.take().map(|mut pipe| {
        let input = stdin.unwrap_or_default().to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        })
    });
    let out = child.wait_with_output().unwrap();
    if let Some(w) = writer {
        w.join().unwrap();
    }
    out
}

/// Runs one case; returns its snapshot text, and pushes what went wrong onto `problems`.
fn run_case(case: &Case, servers: &Servers, problems: &mut Vec<String>) -> String {
    let mut k = servers.command(case.server);
    let home = k.home.path().to_path_buf();
    for (name, content) in &case.files {
        let path = home.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, expand(content, &home, servers)).unwrap();
    }
    for (name, mib) in &case.huge {
        let line = "the quick brown fox jumps over the lazy dog again and again\n";
        let text = line.repeat(mib * 1024 * 1024 / line.len() + 1);
        std::fs::write(home.join(name), text).unwrap();
    }
    if let Some(config) = &case.config {
        let path = k.config_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, expand(config, &home, servers)).unwrap();
    }
    for (var, value) in &case.env {
        k.cmd.env(var, value);
    }
    let stdin = case.stdin.as_deref().map(|s| match s.strip_prefix('@') {
        Some(file) => std::fs::read(home.join(file)).unwrap(),
        None => expand(s, &home, servers),
    });
    for step in &case.before {
        let mut b = servers.command(case.server);
        b.env_home(&home);
        for (var, value) in &case.env {
            b.cmd.env(var, value);
        }
        b.args(step.iter().map(|a| expand(a, &home, servers)).map(os));
        let o = run(&mut b, stdin.as_deref(), false);
        if !o.status.success() {
            problems.push(format!("{}: before {step:?}: {}", case.name, stderr(&o)));
        }
    }
    let args: Vec<OsString> = case
        .args
        .iter()
        .map(|a| os(expand(a, &home, servers)))
        .collect();
    k.args(&args);
    let o = run(&mut k, stdin.as_deref(), case.closed_stdout);
    let err = stderr(&o);
    let code = o.status.code();
    let mut wrong = |what: String| problems.push(format!("{}: {what}\n{err}", case.name));
    if code != Some(case.exit) {
        wrong(format!("exit {code:?}, want {}", case.exit));
    }
    if code == Some(101) || err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        wrong("panicked".into());
    }
    if case.exit == 0 {
        if case.closed_stdout && !err.trim().is_empty() {
            wrong("a closed stdout is not an error".into());
        }
    } else {
        if !err.lines().any(|l| l.starts_with("error: ")) {
            wrong("no `error:` line".into());
        }
        if !err.lines().any(|l| l.starts_with("hint: ")) {
            wrong("no `hint:` line".into());
        }
    }
    for name in &case.absent {
        if home.join(name).exists() {
            wrong(format!("{name} was left behind"));
        }
    }
    let shown: Vec<String> = case
        .args
        .iter()
        .map(|a| {
            normalise(
                &String::from_utf8_lossy(&expand(a, &home, servers)),
                &home,
                servers,
            )
        })
        .map(|a| {
            // A port given as an argument (`serve --port {MOCK_PORT}`).
            if servers.ports().iter().any(|p| a == p.to_string()) {
                "[PORT]".to_string()
            } else {
                a
            }
        })
        .collect();
    let mut snap = format!("$ llmkit {}\nexit: {}\n", shown.join(" "), case.exit);
    for line in err.lines() {
        if ["error: ", "hint: ", "warning: "]
            .iter()
            .any(|p| line.starts_with(p))
        {
            snap.push_str(&normalise(line, &home, servers));
            snap.push('\n');
        }
    }
    snap
}

fn os(bytes: Vec<u8>) -> OsString {
    OsString::from_vec(bytes)
}

fn table() -> Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sweep.toml");
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_bad_input_fails_cleanly_with_its_exit_code() {
    let table = table();
    // Optionally one case: LLMKIT_SWEEP=NAME.
    let only = std::env::var("LLMKIT_SWEEP").ok();
    let servers = Servers::start();
    let mut problems = Vec::new();
    let mut snapshots = Vec::new();
    for case in &table.case {
        if only.as_ref().is_some_and(|n| *n != case.name) {
            continue;
        }
        snapshots.push((case.name.clone(), run_case(case, &servers, &mut problems)));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n---\n"));
    for (name, snap) in snapshots {
        insta::assert_snapshot!(name, snap);
    }
}

#[test]
fn the_table_is_large_and_its_names_unique() {
    let table = table();
    assert!(table.case.len() >= 60, "{} cases", table.case.len());
    let mut names: Vec<&str> = table.case.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "duplicate case names");
    for c in &table.case {
        assert!(
            c.name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
            "{}",
            c.name
        );
    }
}
