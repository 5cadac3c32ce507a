//! Test helpers: a mock server on its own runtime, and a `llmkit` command with a clean,
//! hermetic environment (no real keys, a private config directory).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) use llmkit_testkit::fixtures::models_dir;
use llmkit_testkit::fixtures::require_model;
use llmkit_testkit::{MockConfig, MockServer};

/// A running mock server (kept alive with its runtime).
pub(crate) struct Mock {
    pub server: MockServer,
    _rt: tokio::runtime::Runtime,
}

impl Mock {
    pub(crate) fn start(cfg: MockConfig) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(MockServer::start(cfg)).unwrap();
        Self { server, _rt: rt }
    }

    pub(crate) fn default() -> Self {
        Self::start(MockConfig::default())
    }

    /// The logged requests whose path ends with `suffix` (`/chat/completions`, ...).
    pub(crate) fn requests_to(&self, suffix: &str) -> Vec<serde_json::Value> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
            .collect()
    }

    pub(crate) fn base_url(&self) -> String {
        format!("{}/v1", self.server.url())
    }
}

/// A `llmkit` invocation with a hermetic environment.
pub(crate) struct Llmkit {
    pub cmd: Command,
    pub home: tempfile::TempDir,
}

impl Llmkit {
    /// `llmkit` aimed at `mock` with a test key.
    pub(crate) fn against(mock: &Mock) -> Self {
        let mut k = Self::bare();
        k.cmd
            .env("OPENAI_BASE_URL", mock.base_url())
            .env("OPENAI_API_KEY", "sk-test-key-000000000000");
        k
    }

    /// `llmkit` with no key and no base URL (so the embedded model is the default).
    pub(crate) fn bare() -> Self {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_llmkit"));
        for var in [
            "OPENAI_API_KEY",
            "OPENAI_ADMIN_KEY",
            "OPENAI_BASE_URL",
            "OPENAI_ORG_ID",
            "OPENAI_PROJECT_ID",
            "LLMKIT_MODEL",
            "LLMKIT_PROFILE",
            "LLMKIT_CONFIG",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("LLMKIT_MODELS_DIR", models_dir());
        Self { cmd, home }
    }

    pub(crate) fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Uses another invocation's home (config, store) instead of this one's.
    pub(crate) fn env_home(&mut self, home: &Path) -> &mut Self {
        self.cmd
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"));
        self
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.home.path().join("config/llmkit/config.toml")
    }

    pub(crate) fn run(&mut self) -> Output {
        self.cmd.output().unwrap()
    }

    /// Runs with `input` on stdin.
    pub(crate) fn run_with_stdin(&mut self, input: &str) -> Output {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_string();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }
}

/// The generation model's file in the models directory, as `scripts/fetch-models.sh` installs it.
pub(crate) const CHAT_MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The embedding model's weights in the models directory.
pub(crate) const EMBED_MODEL: &str = "all-MiniLM-L6-v2/model.safetensors";

/// Whether the local models `names` are there; when one is not, the calling test says `SKIP`
/// and returns (or fails, under `LLMKIT_REQUIRE_MODELS=1`).
#[track_caller]
pub(crate) fn have_models(names: &[&str]) -> bool {
    names.iter().all(|name| require_model(name).is_some())
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failed run: non-zero exit, an `error:` line and a `hint:` line, no panic.
pub(crate) fn assert_clear_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {err}");
    assert!(
        err.lines().any(|l| l.starts_with("error: ")),
        "stderr: {err}"
    );
    assert!(err.contains("\nhint: "), "no hint line: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "backtrace: {err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "stderr lacks `{needle}`: {err}"
    );
}

/// The npm packages pinned by `tests/NAME/package{,-lock}.json`, installed once with `npm ci`
/// into `target/NAME` and reinstalled only when the lock changes; the `node_modules`
/// directory once `probe` (a path inside it) exists, or `None` (SKIP, or a failure under
/// CI) when the install fails.
pub(crate) fn npm_installed(name: &str, probe: &str) -> Option<PathBuf> {
    use llmkit_testkit::fixtures::{REQUIRE_TOOLS_VAR, skip_or_fail};
    let here = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name);
    let cache = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(name);
    let lock = std::fs::read(here.join("package-lock.json")).unwrap();
    let stamp = format!("{:x}", fnv1a(&lock));
    let modules = cache.join("node_modules");
    if std::fs::read_to_string(cache.join(".stamp"))
        .ok()
        .as_deref()
        != Some(stamp.as_str())
        || !modules.join(probe).exists()
    {
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::create_dir_all(&cache).unwrap();
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(here.join(f), cache.join(f)).unwrap();
        }
        let ok = Command::new("npm")
            .args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--loglevel=error",
            ])
            .current_dir(&cache)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            skip_or_fail(
                REQUIRE_TOOLS_VAR,
                &format!("npm ci in target/{name} failed"),
            );
            return None;
        }
        std::fs::write(cache.join(".stamp"), &stamp).unwrap();
    }
    Some(modules)
}

/// A cheap content stamp (FNV-1a): an npm cache is reinstalled when its lock changes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Starts `k`, an `llmkit serve --port 0 ...` invocation, and reads the address it listens
/// on from its first line: the child, the address and the rest of its stdout. With
/// `capture_stderr`, stderr is piped and shown when the first line is not the address.
pub(crate) fn start_serve(
    k: &mut Llmkit,
    capture_stderr: bool,
) -> (
    std::process::Child,
    String,
    std::io::BufReader<std::process::ChildStdout>,
) {
    use std::io::{BufRead, Read};
    use std::process::Stdio;
    let mut child = k
        .cmd
        .stdout(Stdio::piped())
        .stderr(if capture_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let Some(addr) = first
        .trim()
        .strip_prefix("llmkit gateway listening on http://")
        .map(str::to_string)
    else {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        panic!("unexpected first line: {first} {err}");
    };
    (child, addr, lines)
}
