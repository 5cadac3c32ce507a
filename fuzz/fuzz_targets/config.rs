//! The config file: any bytes in `config.toml` give a `FileConfig` or an error with a line
//! and column, never a panic; and `config set` on a file that loads keeps it loadable.
//!
//! The parser lives in the binary crate `llmkit-cli`, which has no library target. Giving it
//! one would mean moving its modules behind a `lib.rs` façade for the fuzzer's sake, so this
//! target compiles the binary's own `config_file.rs` in place (`#[path]`), unchanged, against
//! the two small items of the binary it names: `CliError`'s constructors and the KV cache
//! cap. The settings resolution after it (timeouts, TTLs, budgets) needs the whole binary;
//! its numeric checks are covered by the CLI's own tests.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Stand-ins for the binary's items that `config_file.rs` uses.
mod error {
    #[derive(Debug)]
    pub(crate) struct CliError {
        pub(crate) message: String,
        pub(crate) hint: String,
    }

    impl CliError {
        pub(crate) fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
            Self {
                message: message.into(),
                hint: hint.into(),
            }
        }

        pub(crate) fn config(message: impl Into<String>, hint: impl Into<String>) -> Self {
            Self::usage(message, hint)
        }
    }
}

mod settings {
    /// The same cap as `llmkit-cli/src/settings/local.rs`.
    pub(crate) const MAX_KV_CACHE_MB: u64 = 1 << 20;
}

#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/llmkit-cli/src/config_file.rs"]
mod config_file;

/// Keys and values `config set` is given, a few of each kind.
const SETS: &[(&str, &str)] = &[
    ("model", "gpt-4o-mini"),
    ("max_retries", "3"),
    ("timeout", "30"),
    ("kv_cache_mb", "64"),
    ("cache_ttl", "7d"),
    ("default_profile", "work"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let path = llmkit_fuzz::scratch_file("config.toml", body);
    match config_file::load(&path) {
        Ok(file) => {
            let _ = format!("{file:?}");
            let (key, value) = SETS[usize::from(mode) % SETS.len()];
            let profile = (mode & 0x80 != 0).then_some("work");
            if config_file::set_value(&path, profile, key, value).is_ok()
                && let Err(e) = config_file::load(&path)
            {
                panic!("`config set {key}` made a loadable file unloadable: {e:?}");
            }
        }
        Err(e) => {
            assert!(!e.message.is_empty() && !e.hint.is_empty());
        }
    }
});
