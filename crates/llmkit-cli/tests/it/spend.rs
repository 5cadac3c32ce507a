//! Spending fails closed: under `--max-cost` or a budget, a model without a known price is
//! refused before anything is sent (unless `--allow-unpriced`), and `usage` shows such rows
//! as unpriced rather than free. Also the hardening cases of the same sweep: non-UTF-8
//! arguments and a path that names no file.

use crate::support::{Llmkit, Mock, assert_clear_error, stderr, stdout};

#[test]
fn an_unpriced_model_is_refused_under_max_cost_before_sending() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask", "-m", "gpt-5.1-mini", "--max-cost", "0.01", "hi"])
        .run();
    assert_clear_error(&o, "`gpt-5.1-mini` has no known price");
    assert!(
        stderr(&o).contains("[models.\"gpt-5.1-mini\"]"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--allow-unpriced"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        mock.requests_to("/chat/completions").len(),
        0,
        "nothing is sent"
    );

    // The same request with --allow-unpriced goes through, and usage marks it.
    let mut k = Llmkit::against(&mock);
    let o = k
        .args([
            "ask",
            "-m",
            "gpt-5.1-mini",
            "--max-cost",
            "0.01",
            "--allow-unpriced",
            "hi",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mock.requests_to("/chat/completions").len(), 1);
    let home = k.home.path().to_path_buf();
    let o = Llmkit::against(&mock).args(["usage"]).env_home(&home).run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("+ 1 unpriced"), "{}", stdout(&o));
    let o = Llmkit::against(&mock)
        .args(["usage", "--json"])
        .env_home(&home)
        .run();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["total"]["unpriced"], 1, "{v}");
}

#[test]
fn a_daily_budget_also_refuses_unpriced_models_and_fine_tunes_of_new_bases() {
    let mock = Mock::default();
    let mut k = Llmkit::against(&mock);
    let path = k.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "budget_daily_usd = 5.0\n").unwrap();
    for model in ["gpt-5.3-chat-latest", "ft:gpt-5-mini:my-org:support:abc123"] {
        let o = Llmkit::against(&mock)
            .env_home(k.home.path())
            .args(["ask", "-m", model, "hi"])
            .run();
        assert_clear_error(&o, "has no known price");
    }
    assert_eq!(mock.requests_to("/chat/completions").len(), 0);
    // A price in the config makes it a known model.
    std::fs::write(
        &path,
        "budget_daily_usd = 5.0\n[models.\"gpt-5.3-chat-latest\"]\ninput_per_mtok = 1.25\noutput_per_mtok = 10.0\n",
    )
    .unwrap();
    let o = k.args(["ask", "-m", "gpt-5.3-chat-latest", "hi"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mock.requests_to("/chat/completions").len(), 1);
}

#[test]
fn without_a_limit_unpriced_models_are_sent() {
    let mock = Mock::default();
    let o = Llmkit::against(&mock)
        .args(["ask", "-m", "gpt-5.1-mini", "hi"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[cfg(unix)]
#[test]
fn a_non_utf8_argument_is_a_usage_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    let o = Llmkit::bare()
        .args([std::ffi::OsStr::new("sentiment"), bad])
        .run();
    assert_clear_error(&o, "utf-8");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_path_that_names_no_file_is_refused() {
    let mock = Mock::default();
    for arg in ["/no/such/file.txt", "notes.md", "./draft"] {
        let o = Llmkit::against(&mock).args(["summarize", arg]).run();
        assert_clear_error(&o, &format!("no such file or directory: {arg}"));
        assert_eq!(o.status.code(), Some(2));
    }
    assert_eq!(mock.requests_to("/chat/completions").len(), 0);
    // Words that merely contain a slash are text.
    let o = Llmkit::against(&mock)
        .args(["summarize", "and/or", "is", "fine"])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
}
