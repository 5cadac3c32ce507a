//! The official OpenAI SDKs for Python and Node, installed from their registries, run
//! unchanged against `llmkit serve` (`tests/sdk/run.sh`: chat, streamed chat, embeddings,
//! models, and the SDKs' own error classes for 401, 429 and 400).
//!
//! Without python3, node or npm the test skips with a `SKIP` line, and fails instead under
//! `LLMKIT_REQUIRE_TOOLS=1` (`.ci/run` installs them and sets it); the same holds when the
//! SDKs cannot be installed (no registry).
// The helpers below are test code too; clippy.toml exempts only `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use llmkit_testkit::fixtures::{REQUIRE_TOOLS_VAR, require_tool, skip_or_fail};

use crate::support::Mock;

/// The first run installs both SDKs (a minute or two); later runs reuse the cache.
const LIMIT: Duration = Duration::from_secs(600);

/// `run.sh`'s exit status when an SDK could not be installed.
const INSTALL_FAILED: i32 = 3;

#[test]
fn official_sdks_work_unchanged() {
    for tool in ["python3", "node", "npm"] {
        if require_tool(&[tool]).is_none() {
            return;
        }
    }
    let mock = Mock::default();
    let bin = Path::new(env!("CARGO_BIN_EXE_llmkit"));
    // target/release/llmkit → target/sdk: the cache lives beside the build.
    let cache = bin.parent().and_then(Path::parent).map_or_else(
        || std::env::temp_dir().join("llmkit-sdk"),
        |t| t.join("sdk"),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/run.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .env("LLMKIT_BIN", bin)
        .env("LLMKIT_MOCK_URL", mock.server.url())
        .env("LLMKIT_SDK_CACHE", &cache)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both pipes are drained on threads, so a chatty install cannot block the script.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("the SDK checks did not finish in {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    if status.code() == Some(INSTALL_FAILED) {
        skip_or_fail(
            REQUIRE_TOOLS_VAR,
            &format!("the OpenAI SDKs could not be installed: {}", err.trim()),
        );
        return;
    }
    assert!(status.success(), "run.sh failed ({status}):\n{out}\n{err}");
    for sdk in ["python", "node"] {
        assert!(
            out.contains(&format!("{sdk} sdk: all checks passed")),
            "{sdk}: {out}\n{err}"
        );
    }
    // Each SDK said which version it is, so the log shows what was tested.
    assert!(out.contains("python sdk: openai ") && out.contains("node sdk: openai "));
}
