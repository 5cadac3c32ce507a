//! `config show|set|path` and profiles.

use serde_json::Value;

use crate::support::{Llmkit, Mock, stderr, stdout};

#[test]
fn config_set_show_and_profiles() {
    let mock = Mock::default();
    let mut k = Llmkit::bare();
    let home = k.home.path().to_path_buf();
    let path = k.config_path();
    let o = k.args(["config", "path"]).run();
    assert_eq!(stdout(&o).trim(), path.display().to_string());

    let set = |args: &[&str]| {
        let mut k = Llmkit::bare();
        k.cmd
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("config"));
        let o = k.args(args).run();
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    let o = set(&["config", "set", "api_key", "sk-secretsecret1234"]);
    assert!(!stdout(&o).contains("secretsecret"));
    set(&[
        "--profile",
        "mock",
        "config",
        "set",
        "base_url",
        &mock.base_url(),
    ]);
    set(&["--profile", "mock", "config", "set", "model", "mock-model"]);

    let o = set(&["--profile", "mock", "config", "show", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["api_key"], "sk-…1234");
    assert_eq!(v["base_url"], mock.base_url());
    assert_eq!(v["model"], "mock-model");
    assert!(!stdout(&o).contains("secretsecret"));

    // The profile's settings reach the server.
    let o = set(&["--profile", "mock", "ask", "via profile"]);
    assert_eq!(stdout(&o), "via profile\n");
    let req = mock.server.requests().last().cloned().unwrap();
    assert_eq!(req["body"]["model"], "mock-model");

    // LLMKIT_PROFILE selects it too, and flags win over it.
    let mut k = Llmkit::bare();
    k.cmd
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("LLMKIT_PROFILE", "mock");
    let o = k.args(["ask", "-m", "flag-model", "hi"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let req = mock.server.requests().last().cloned().unwrap();
    assert_eq!(req["body"]["model"], "flag-model");
}

#[test]
fn config_show_never_prints_the_key() {
    let mut k = Llmkit::bare();
    k.cmd.env("OPENAI_API_KEY", "sk-proj-verysecretvalue9876");
    let o = k.args(["config", "show"]).run();
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("sk-…9876"), "{out}");
    assert!(!out.contains("verysecret"));
}
