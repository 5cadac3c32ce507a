//! Where tests find the local model files and the tools they drive, and what a test does
//! without them: it skips with a `SKIP` line, or fails when the run asked for everything.
//!
//! A developer without the models (or tmux, or chromium) still gets a green suite, with the
//! skips said on stderr; CI cannot pass that way: `scripts/test.sh` exports
//! `LLMKIT_REQUIRE_MODELS=1` and `.ci/run` also exports `LLMKIT_REQUIRE_TOOLS=1` and
//! `LLMKIT_REQUIRE_SERVICES=1`, which turn each skip into a panic naming what is missing.

use std::ffi::OsStr;
use std::panic::Location;
use std::path::{Path, PathBuf};

/// Where the local model files are: a directory holding the files that
/// `scripts/fetch-models.sh` installs.
pub const MODELS_DIR_VAR: &str = "LLMKIT_MODELS_DIR";

/// Set to `1` to make a missing model file fail the test instead of skipping it.
pub const REQUIRE_MODELS_VAR: &str = "LLMKIT_REQUIRE_MODELS";

/// Set to `1` to make a missing external tool (tmux, chromium) fail the test instead of
/// skipping it.
pub const REQUIRE_TOOLS_VAR: &str = "LLMKIT_REQUIRE_TOOLS";

/// Set to `1` to make a missing service (PostgreSQL, Redis: `scripts/services.sh`) fail the
/// test instead of skipping it. `.ci/run` sets it.
pub const REQUIRE_SERVICES_VAR: &str = "LLMKIT_REQUIRE_SERVICES";

/// The URL of a test service from the env var `var` (`LLMKIT_TEST_POSTGRES_URL`,
/// `LLMKIT_TEST_REDIS_URL`, which `scripts/services.sh` prints). When it is unset: panics
/// if `LLMKIT_REQUIRE_SERVICES=1`, else prints a `SKIP` line and returns `None`.
#[track_caller]
pub fn require_service(var: &str) -> Option<String> {
    if let Some(url) = std::env::var(var).ok().filter(|u| !u.is_empty()) {
        return Some(url);
    }
    skip_or_fail(
        REQUIRE_SERVICES_VAR,
        &format!("{var} is not set (run: eval \"$(bash scripts/services.sh)\")"),
    );
    None
}

/// The models directory: `$LLMKIT_MODELS_DIR`, else `<workspace>/models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os(MODELS_DIR_VAR)
        .filter(|dir| !dir.is_empty())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"),
            PathBuf::from,
        )
}

/// Whether `var` asks for strict runs: set, and neither empty nor `0`.
pub fn required(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != OsStr::new("0"))
}

/// The model file or directory `name` (a path relative to [`models_dir`], such as
/// `SmolLM2-135M-Instruct.Q4_1.gguf` or `all-MiniLM-L6-v2/model.safetensors`) when it exists.
///
/// When it does not: panics if `LLMKIT_REQUIRE_MODELS=1`, else prints a `SKIP` line naming
/// the calling test's file and line and returns `None`, so the caller returns early.
#[track_caller]
pub fn require_model(name: &str) -> Option<PathBuf> {
    require_model_in(&models_dir(), name, required(REQUIRE_MODELS_VAR))
}

/// [`require_model`] with the directory and the strictness given rather than read from the
/// environment.
#[track_caller]
pub fn require_model_in(dir: &Path, name: &str, strict: bool) -> Option<PathBuf> {
    let path = dir.join(name);
    if path.exists() {
        return Some(path);
    }
    let reason = format!(
        "model file {} not found (run scripts/fetch-models.sh --dir {}, or set {MODELS_DIR_VAR})",
        path.display(),
        dir.display()
    );
    skip_or_fail_if(strict, REQUIRE_MODELS_VAR, &reason);
    None
}

/// The first of the programs `names` found on `PATH` (as a full path). When none is: panics
/// if `LLMKIT_REQUIRE_TOOLS=1`, else prints a `SKIP` line and returns `None`.
#[track_caller]
pub fn require_tool(names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = names.iter().find_map(|name| on_path(name)) {
        return Some(path);
    }
    skip_or_fail(
        REQUIRE_TOOLS_VAR,
        &format!(
            "{} is not installed (.ci/run installs it)",
            names.join(" or ")
        ),
    );
    None
}

/// The end of a test that cannot run here for `reason`: a panic when `var` is set (see
/// [`required`]), else a `SKIP` line on stderr naming the caller's file and line.
#[track_caller]
pub fn skip_or_fail(var: &str, reason: &str) {
    skip_or_fail_if(required(var), var, reason);
}

#[track_caller]
fn skip_or_fail_if(strict: bool, var: &str, reason: &str) {
    let at = Location::caller();
    if strict {
        panic!("{reason}; {var}=1, so this test fails instead of skipping ({at})");
    }
    eprintln!("SKIP {at}: {reason}");
}

/// `name`'s full path when an executable file of that name is in a `PATH` directory.
fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}
