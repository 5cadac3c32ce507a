//! The config file (`$XDG_CONFIG_HOME/llmkit/config.toml`): its path, typed reading, and `config set` edits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::CliError;

/// Settings one profile (or the file's top level) may hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileConfig {
    pub api_key: Option<String>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub embedding_model: Option<String>,
    pub organization: Option<String>,
    pub project: Option<String>,
    pub azure_api_version: Option<String>,
    pub azure_deployment: Option<String>,
    pub max_retries: Option<u32>,
    pub timeout: Option<f64>,
    pub connect_timeout: Option<f64>,
    pub stall_timeout: Option<f64>,
    pub models_dir: Option<PathBuf>,
    /// The embedded model's KV prefix cache cap in MiB (0 turns reuse off).
    pub kv_cache_mb: Option<u64>,
    /// The SQLite store (sessions, ledger, cache); default `$XDG_DATA_HOME/llmkit/llmkit.db`.
    pub store: Option<PathBuf>,
    /// Daily spending limit in USD (local calendar day).
    pub budget_daily_usd: Option<f64>,
    /// Monthly spending limit in USD (local calendar month).
    pub budget_monthly_usd: Option<f64>,
    /// How long cached responses stay valid: `7d`, `12h`, `30m` or seconds.
    pub cache_ttl: Option<String>,
    /// What to do when a conversation outgrows the context window: `drop` or `summarize`.
    pub context_strategy: Option<String>,
    /// Redact personal data by default (as `--redact`).
    pub redact: Option<bool>,
    /// The kinds to redact by default (all when absent); `--redact-kinds` overrides.
    pub redact_kinds: Option<Vec<String>>,
    /// Terms always redacted (case-insensitive, whole word) as `<DENY_N>`.
    pub redact_deny: Option<Vec<String>>,
    /// Extra patterns, label to regex, redacted as `<CUSTOM_N>`.
    pub redact_patterns: Option<BTreeMap<String, String>>,
}

/// A user override of the model catalogue (`[models."NAME"]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelOverride {
    pub context_window: Option<u32>,
    pub max_output: Option<u32>,
    pub input_per_mtok: Option<f64>,
    pub cached_input_per_mtok: Option<f64>,
    pub output_per_mtok: Option<f64>,
    /// Multiplier of the price in the Batch API (0.5 = half price).
    pub batch_multiplier: Option<f64>,
    /// Multiplier of the price on the Flex tier.
    pub flex_multiplier: Option<f64>,
    /// Multiplier of the price on the Priority tier.
    pub priority_multiplier: Option<f64>,
    /// Served only on the Responses API.
    pub responses_only: Option<bool>,
    /// What the model reads: `text`, `image`, `audio` (attachments are checked against it).
    pub input_modalities: Option<Vec<llmkit_client::Modality>>,
}

/// The `[gateway]` table: shared state for `llmkit serve` replicas.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GatewayFileConfig {
    /// `postgres://...`
    pub store: Option<String>,
    /// `redis://...`
    pub redis: Option<String>,
    pub spool: Option<PathBuf>,
    pub key_cache_ttl_secs: Option<f64>,
    /// `closed` or `per-replica`.
    pub limits_when_redis_down: Option<String>,
    pub replicas: Option<u32>,
    /// The environment variable that holds the admin API's master key (never the key).
    pub master_key_env: Option<String>,
    /// `[gateway.routes]`: model name to the upstreams that serve it (profile names or
    /// `local:MODEL`), in fallback order.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteFileConfig>,
}

/// One `[gateway.routes]` entry: `"MODEL" = ["PROFILE", ...]`, or a table
/// `[gateway.routes."MODEL"]` with `upstreams = [...]` and `balance = "p2c" | "ewma"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RouteFileConfig {
    Upstreams(Vec<String>),
    Table(RouteTable),
}

/// The table form of a route.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteTable {
    pub upstreams: Vec<String>,
    /// `p2c` (the default) or `ewma`.
    pub balance: Option<String>,
}

impl RouteFileConfig {
    pub(crate) fn upstreams(&self) -> &[String] {
        match self {
            Self::Upstreams(u) => u,
            Self::Table(t) => &t.upstreams,
        }
    }

    pub(crate) fn balance(&self) -> Option<&str> {
        match self {
            Self::Upstreams(_) => None,
            Self::Table(t) => t.balance.as_deref(),
        }
    }
}

impl std::fmt::Debug for GatewayFileConfig {
    // The URLs may hold passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayFileConfig")
            .field("store", &self.store.as_ref().map(|_| "[set]"))
            .field("redis", &self.redis.as_ref().map(|_| "[set]"))
            .field("spool", &self.spool)
            .field("key_cache_ttl_secs", &self.key_cache_ttl_secs)
            .field("limits_when_redis_down", &self.limits_when_redis_down)
            .field("replicas", &self.replicas)
            .field("master_key_env", &self.master_key_env)
            .field("routes", &self.routes)
            .finish()
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub default_profile: Option<String>,
    #[serde(flatten)]
    pub top: ProfileConfig,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileConfig>,
    #[serde(default)]
    pub models: BTreeMap<String, ModelOverride>,
    #[serde(default)]
    pub gateway: GatewayFileConfig,
    /// `[mcp.NAME]`: MCP servers that `--mcp NAME` names.
    #[serde(default)]
    pub mcp: BTreeMap<String, McpFileConfig>,
}

/// One `[mcp.NAME]` table: a stdio server (`command`, `args`) or a streamable HTTP one
/// (`url`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct McpFileConfig {
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    pub url: Option<String>,
}

/// Keys `config set` accepts, in the order `config show` prints them.
pub(crate) const SETTABLE_KEYS: &[&str] = &[
    "api_key",
    "base_url",
    "model",
    "embedding_model",
    "organization",
    "project",
    "azure_api_version",
    "azure_deployment",
    "max_retries",
    "timeout",
    "connect_timeout",
    "stall_timeout",
    "models_dir",
    "kv_cache_mb",
    "store",
    "budget_daily_usd",
    "budget_monthly_usd",
    "cache_ttl",
    "context_strategy",
    "default_profile",
];

/// The default config path: `$XDG_CONFIG_HOME/llmkit/config.toml`, else `~/.config/...`.
pub(crate) fn default_path(xdg_config_home: Option<&str>, home: Option<&str>) -> PathBuf {
    let base = match (xdg_config_home, home) {
        (Some(x), _) if !x.is_empty() => PathBuf::from(x),
        (_, Some(h)) => Path::new(h).join(".config"),
        _ => PathBuf::from(".config"),
    };
    base.join("llmkit").join("config.toml")
}

/// Reads the file; a missing file is an empty config, a malformed one an error naming the
/// path and line.
pub(crate) fn load(path: &Path) -> Result<FileConfig, CliError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => {
            return Err(CliError::config(
                format!("cannot read config file {}: {e}", path.display()),
                "check the file's permissions, or pass --config FILE",
            ));
        }
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        CliError::config(
            format!(
                "config file {} is not valid UTF-8 (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
            "TOML files are UTF-8: convert it, e.g. `iconv -f latin1 -t utf-8 FILE`",
        )
    })?;
    parse(&text).map_err(|(line, col, msg)| {
        CliError::config(
            format!(
                "malformed config file {}:{line}:{col}: {msg}",
                path.display()
            ),
            format!(
                "fix line {line} of {} (TOML syntax; see `llmkit config --help`)",
                path.display()
            ),
        )
    })
}

/// The warning for a config file that holds an API key and that group or others can read,
/// as ssh gives for a private key; `None` when the file holds no key or is private.
#[cfg(unix)]
pub(crate) fn exposed_key_warning(path: &Path, file: &FileConfig) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let holds_key =
        file.top.api_key.is_some() || file.profiles.values().any(|p| p.api_key.is_some());
    if !holds_key {
        return None;
    }
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o044 != 0).then(|| {
        let shown = path.display();
        format!(
            "warning: {shown} holds an API key and is readable by others (mode {mode:04o}); \
             run chmod 600 {shown}"
        )
    })
}

/// On systems without Unix permissions there is nothing to check.
#[cfg(not(unix))]
pub fn exposed_key_warning(_path: &Path, _file: &FileConfig) -> Option<String> {
    None
}

/// Parses TOML text, returning (line, column, message) on error.
fn parse(text: &str) -> Result<FileConfig, (usize, usize, String)> {
    toml::from_str::<FileConfig>(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        // `#[serde(flatten)]` loses the span of an unknown key: find the key's line instead.
        let (line, col) = unknown_key_line(text, &msg)
            .or_else(|| e.span().map(|s| line_col(text, s.start)))
            .unwrap_or((1, 1));
        (line, col, msg)
    })
}

fn unknown_key_line(text: &str, msg: &str) -> Option<(usize, usize)> {
    let key = msg.strip_prefix("unknown field `")?.split('`').next()?;
    text.lines().enumerate().find_map(|(i, l)| {
        let t = l.trim_start();
        let rest = t.strip_prefix(key)?;
        rest.trim_start()
            .starts_with('=')
            .then(|| (i + 1, l.len() - t.len() + 1))
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Sets `key = value` at the top level or in `[profiles.NAME]`, keeping the rest of the file
/// (comments included) as it was. Writes atomically.
pub(crate) fn set_value(
    path: &Path,
    profile: Option<&str>,
    key: &str,
    value: &str,
) -> Result<(), CliError> {
    if !SETTABLE_KEYS.contains(&key) {
        return Err(CliError::usage(
            format!("unknown config key `{key}`"),
            format!("valid keys: {}", SETTABLE_KEYS.join(", ")),
        ));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(CliError::config(
                format!("cannot read config file {}: {e}", path.display()),
                "check the file's permissions",
            ));
        }
    };
    // Refuse to edit a file we could not read back afterwards.
    load(path)?;
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        CliError::config(
            format!("malformed config file {}: {e}", path.display()),
            "fix the file by hand first",
        )
    })?;
    let item = typed_value(key, value)?;
    match profile {
        Some(p) if key != "default_profile" => {
            let profiles = doc
                .entry("profiles")
                .or_insert_with(|| {
                    let mut t = toml_edit::Table::new();
                    t.set_implicit(true);
                    toml_edit::Item::Table(t)
                })
                .as_table_mut()
                .ok_or_else(|| {
                    CliError::config(
                        "`profiles` in the config file is not a table",
                        "fix the file by hand",
                    )
                })?;
            let section = profiles
                .entry(p)
                .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
                .as_table_mut()
                .ok_or_else(|| {
                    CliError::config(
                        format!("`profiles.{p}` is not a table"),
                        "fix the file by hand",
                    )
                })?;
            section.insert(key, item);
        }
        _ => {
            doc.insert(key, item);
        }
    }
    write_atomically(path, doc.to_string().as_bytes())
}

fn typed_value(key: &str, value: &str) -> Result<toml_edit::Item, CliError> {
    let bad = |what: &str| {
        CliError::usage(
            format!("`{key}` needs {what}, got `{value}`"),
            format!("for example: llmkit config set {key} {}", example_for(key)),
        )
    };
    Ok(match key {
        "max_retries" => {
            let v: i64 = value.parse().map_err(|_| bad("a whole number"))?;
            if v < 0 {
                return Err(bad("a whole number ≥ 0"));
            }
            toml_edit::value(v)
        }
        "kv_cache_mb" => {
            let v: i64 = value.parse().map_err(|_| bad("a whole number of MiB"))?;
            if !(0..=crate::settings::MAX_KV_CACHE_MB as i64).contains(&v) {
                return Err(bad(&format!(
                    "a whole number of MiB from 0 to {}",
                    crate::settings::MAX_KV_CACHE_MB
                )));
            }
            toml_edit::value(v)
        }
        "budget_daily_usd" | "budget_monthly_usd" => {
            let v: f64 = value.parse().map_err(|_| bad("an amount in USD"))?;
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad("an amount in USD ≥ 0"));
            }
            toml_edit::value(v)
        }
        "cache_ttl" => {
            if parse_ttl(value).is_none() {
                return Err(bad("a duration such as 7d, 12h, 30m or 3600"));
            }
            toml_edit::value(value)
        }
        "context_strategy" if !matches!(value, "drop" | "summarize") => {
            return Err(bad("`drop` or `summarize`"));
        }
        "timeout" | "connect_timeout" | "stall_timeout" => {
            let v: f64 = value.parse().map_err(|_| bad("a number of seconds"))?;
            if !(v.is_finite() && v > 0.0) {
                return Err(bad("a number of seconds > 0"));
            }
            toml_edit::value(v)
        }
        _ => toml_edit::value(value),
    })
}

/// A TTL: a number of seconds, or a number with `s`, `m`, `h` or `d`.
pub(crate) fn parse_ttl(text: &str) -> Option<f64> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let n: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let mult = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        _ => return None,
    };
    Some(n * mult)
}

fn example_for(key: &str) -> &'static str {
    match key {
        "max_retries" => "4",
        "kv_cache_mb" => "256",
        "budget_daily_usd" | "budget_monthly_usd" => "5.00",
        "cache_ttl" => "7d",
        "context_strategy" => "drop",
        _ => "30",
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let fail = |e: std::io::Error| {
        CliError::config(
            format!("cannot write config file {}: {e}", path.display()),
            "check that the directory is writable, or pass --config FILE",
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, bytes).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The file may hold an API key: keep it private to the user.
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profiles_and_overrides() {
        let c = parse(
            r#"
default_profile = "vllm"
model = "gpt-4o-mini"
[profiles.vllm]
base_url = "http://localhost:8000/v1"
model = "qwen"
[models."my-model"]
context_window = 32000
"#,
        )
        .unwrap();
        assert_eq!(c.default_profile.as_deref(), Some("vllm"));
        assert_eq!(c.top.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(c.profiles["vllm"].model.as_deref(), Some("qwen"));
        assert_eq!(c.models["my-model"].context_window, Some(32000));
    }

    #[test]
    fn errors_name_the_line() {
        let (line, _, msg) = parse("model = \"a\"\n\nbase_url = \n").unwrap_err();
        assert_eq!(line, 3, "{msg}");
        let (line, _, msg) = parse("model = \"a\"\nmodle = \"b\"\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.contains("modle"), "{msg}");
    }

    #[test]
    fn set_writes_the_kv_cache_cap_as_a_number_and_refuses_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        set_value(&path, None, "kv_cache_mb", "64").unwrap();
        assert_eq!(load(&path).unwrap().top.kv_cache_mb, Some(64));
        set_value(&path, None, "kv_cache_mb", "0").unwrap();
        assert_eq!(load(&path).unwrap().top.kv_cache_mb, Some(0));
        for bad in ["-1", "lots", "2.5", "1048577"] {
            let err = set_value(&path, None, "kv_cache_mb", bad).unwrap_err();
            assert!(err.to_string().contains("kv_cache_mb"), "{bad}: {err}");
        }
        assert_eq!(load(&path).unwrap().top.kv_cache_mb, Some(0));
    }

    #[test]
    fn set_keeps_comments_and_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# my settings\nmodel = \"gpt-4o\"\n").unwrap();
        set_value(&path, None, "max_retries", "5").unwrap();
        set_value(&path, Some("local"), "base_url", "http://x/v1").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# my settings"));
        let c = load(&path).unwrap();
        assert_eq!(c.top.max_retries, Some(5));
        assert_eq!(c.profiles["local"].base_url.as_deref(), Some("http://x/v1"));
        assert!(set_value(&path, None, "max_retries", "-1").is_err());
        assert!(set_value(&path, None, "nope", "1").is_err());
    }
}
