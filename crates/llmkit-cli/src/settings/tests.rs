//! Unit tests of settings resolution: precedence, profiles, the local-model fallback.

use super::*;
use crate::cli::GlobalArgs;

fn args() -> GlobalArgs {
    GlobalArgs {
        profile: None,
        base_url: None,
        // No --config (which must name an existing file): with an empty environment the
        // default path is a relative one that does not exist, so the file is empty.
        config: None,
        max_retries: None,
        timeout: None,
        stall_timeout: None,
        redact: false,
        redact_kinds: Vec::new(),
        show_redactions: false,
        max_cost: None,
        allow_unpriced: false,
        no_cache: false,
        cache: None,
        api: None,
        store: false,
        show_reasoning: false,
    }
}

#[test]
fn local_threads_come_from_the_environment() {
    let s = Settings::resolve(&args(), &Env::default(), false).unwrap();
    assert_eq!(s.local.threads, None);
    let env = Env {
        llmkit_threads: Some("3".into()),
        ..Env::default()
    };
    let s = Settings::resolve(&args(), &env, false).unwrap();
    assert_eq!(s.local.threads, Some(3));
    for bad in ["0", "two", "-1"] {
        let env = Env {
            llmkit_threads: Some(bad.into()),
            ..Env::default()
        };
        assert!(Settings::resolve(&args(), &env, false).is_err(), "{bad}");
    }
}

#[test]
fn no_key_means_local_model() {
    let s = Settings::resolve(&args(), &Env::default(), false).unwrap();
    let (choice, fallback) = s.choose_model(None);
    assert!(matches!(choice, ModelChoice::Local(_)));
    assert!(fallback);
    let env = Env {
        openai_api_key: Some("sk-test".into()),
        ..Env::default()
    };
    let s = Settings::resolve(&args(), &env, false).unwrap();
    assert_eq!(
        s.choose_model(None),
        (ModelChoice::Remote(DEFAULT_API_MODEL.into()), false)
    );
    assert_eq!(
        s.choose_model(Some("local:/x.gguf")).0,
        ModelChoice::Local("/x.gguf".into())
    );
}

#[test]
fn flags_beat_env_beat_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "base_url = \"http://file/v1\"\nmodel = \"file-model\"\n[profiles.p]\nmodel = \"profile-model\"\n",
    )
    .unwrap();
    let mut a = args();
    a.config = Some(path);
    let env = Env {
        openai_base_url: Some("http://env/v1".into()),
        ..Env::default()
    };
    let s = Settings::resolve(&a, &env, false).unwrap();
    assert_eq!(s.client.base_url.value, "http://env/v1");
    assert_eq!(s.models.chat.as_ref().unwrap().value, "file-model");
    a.base_url = Some("http://flag/v1".into());
    a.profile = Some("p".into());
    let s = Settings::resolve(&a, &env, false).unwrap();
    assert_eq!(s.client.base_url.value, "http://flag/v1");
    assert_eq!(s.models.chat.as_ref().unwrap().value, "profile-model");
    a.profile = Some("missing".into());
    assert!(Settings::resolve(&a, &env, false).is_err());
}

#[test]
fn the_kv_cache_cap_comes_from_env_then_file_then_the_default() {
    let s = Settings::resolve(&args(), &Env::default(), false).unwrap();
    assert_eq!(s.local.kv_cache_mb, local::DEFAULT_KV_CACHE_MB);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "kv_cache_mb = 64\n[profiles.off]\nkv_cache_mb = 0\n").unwrap();
    let mut a = args();
    a.config = Some(path.clone());
    assert_eq!(
        Settings::resolve(&a, &Env::default(), false)
            .unwrap()
            .local
            .kv_cache_mb,
        64
    );
    let env = Env {
        llmkit_kv_cache_mb: Some("512".into()),
        ..Env::default()
    };
    assert_eq!(
        Settings::resolve(&a, &env, false)
            .unwrap()
            .local
            .kv_cache_mb,
        512
    );
    a.profile = Some("off".into());
    assert_eq!(
        Settings::resolve(&a, &Env::default(), false)
            .unwrap()
            .local
            .kv_cache_mb,
        0
    );
    for bad in ["-1", "lots", "1.5", "1048577"] {
        let env = Env {
            llmkit_kv_cache_mb: Some(bad.into()),
            ..Env::default()
        };
        let err = Settings::resolve(&args(), &env, false).unwrap_err();
        assert!(
            err.to_string().contains("LLMKIT_KV_CACHE_MB"),
            "{bad}: {err}"
        );
    }
    std::fs::write(&path, "kv_cache_mb = 2000000\n").unwrap();
    let mut a = args();
    a.config = Some(path);
    assert!(Settings::resolve(&a, &Env::default(), false).is_err());
}

#[test]
fn the_master_key_comes_from_the_named_variable_else_llmkit_master_key() {
    use secrecy::{ExposeSecret, SecretString};
    let long = |s: &str| SecretString::from(format!("{s}-0123456789abcdef"));
    let env = Env {
        llmkit_master_key: Some(long("default")),
        all: [("MY_MASTER".to_string(), long("named"))]
            .into_iter()
            .collect(),
        ..Env::default()
    };
    let resolved = |flag: Option<&str>, file_var: Option<&str>, env: &Env| {
        let mut g = GatewaySettings {
            master_key_env: file_var.map(str::to_string),
            ..GatewaySettings::default()
        };
        g.resolve_master_key(flag, env)
            .map(|()| g.master_key.map(|k| k.expose_secret().to_string()))
    };
    let named = Some("named-0123456789abcdef".to_string());
    assert_eq!(resolved(Some("MY_MASTER"), None, &env).unwrap(), named);
    assert_eq!(resolved(None, Some("MY_MASTER"), &env).unwrap(), named);
    // The flag wins over the file.
    assert_eq!(
        resolved(Some("MY_MASTER"), Some("OTHER"), &env).unwrap(),
        named
    );
    assert_eq!(
        resolved(None, None, &env).unwrap().as_deref(),
        Some("default-0123456789abcdef")
    );
    assert_eq!(resolved(None, None, &Env::default()).unwrap(), None);
    // A named variable that is unset, or a short key, is refused.
    assert!(resolved(Some("UNSET_VAR"), None, &env).is_err());
    let short = Env {
        llmkit_master_key: Some(SecretString::from("short")),
        ..Env::default()
    };
    assert!(resolved(None, None, &short).is_err());
}
