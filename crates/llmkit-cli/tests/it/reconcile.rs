//! `llmkit usage reconcile` against the mock, whose organisation reports are built from what
//! it served: matching traffic reconciles (exit 0), a planted 5% cost drift and a planted
//! model the ledger never saw (and the price list lacks) are found (exit 3), and a missing
//! or refused admin key is a clear error.

use llmkit_testkit::{MockConfig, OrgConfig};
use serde_json::Value;

use crate::support::{Llmkit, Mock, assert_clear_error, stderr, stdout};

const ADMIN: &str = "sk-admin-test-key-9999";
const DAY: u64 = 86_400;

fn mock(org: OrgConfig) -> Mock {
    Mock::start(MockConfig {
        org: OrgConfig {
            admin_key: Some(ADMIN.into()),
            ..org
        },
        ..MockConfig::default()
    })
}

/// Fills one ledger with a few asks and an embedding; returns the invocation whose home
/// holds it.
fn fill_ledger(mock: &Mock) -> Llmkit {
    let k = Llmkit::against(mock);
    for (model, prompt) in [
        ("gpt-4o-mini", "hello there"),
        ("gpt-4o-mini", "what is the capital of France?"),
        ("gpt-4o", "say something short"),
    ] {
        let o = Llmkit::against(mock)
            .env_home(k.home.path())
            .args(["ask", "-m", model, prompt])
            .run();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = Llmkit::against(mock)
        .env_home(k.home.path())
        .args([
            "embed",
            "-m",
            "text-embedding-3-small",
            "some text to embed",
        ])
        .run();
    assert!(o.status.success(), "{}", stderr(&o));
    k
}

fn reconcile(mock: &Mock, home: &Llmkit, args: &[&str]) -> std::process::Output {
    let mut k = Llmkit::against(mock);
    k.env_home(home.home.path())
        .args(["usage", "reconcile"])
        .args(args);
    k.cmd.env("OPENAI_ADMIN_KEY", ADMIN).env("COLUMNS", "100");
    k.run()
}

/// The table with the dates of this run replaced, so that the snapshot holds every day.
fn dated(text: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let day = |secs: u64| llmkit_accounting::utc_day(secs as i64);
    let today = now / DAY * DAY;
    text.replace(&day(today), "TODAY-DATE")
        .replace(&day(today - 6 * DAY), "SINCE-DATE")
        .replace(&day(today + DAY), "UNTIL-DATE")
}

#[test]
fn matching_data_reconciles_with_no_findings() {
    let mock = mock(OrgConfig::default());
    let home = fill_ledger(&mock);
    let o = reconcile(&mock, &home, &[]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    insta::assert_snapshot!("reconcile_matching", dated(&stdout(&o)));

    let o = reconcile(&mock, &home, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["matches"], true, "{v:#}");
    assert_eq!(v["findings"], serde_json::json!([]));
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v:#}");
    assert!(rows.iter().all(|r| r["status"] == "ok"), "{v:#}");
    let mini = rows.iter().find(|r| r["model"] == "gpt-4o-mini").unwrap();
    assert_eq!(mini["ledger"]["requests"], 2);
    assert_eq!(mini["org"]["requests"], 2);
    assert_eq!(mini["ledger"]["input_tokens"], mini["org"]["input_tokens"]);
    // The embedding is billed but not in the completions usage: only its cost compares.
    let embed = rows
        .iter()
        .find(|r| r["model"] == "text-embedding-3-small")
        .unwrap();
    assert_eq!(embed["org"]["has_usage"], false);
    // Only the admin key went to the reports; the API key never did.
    for r in mock.requests_to("/organization/costs") {
        assert_eq!(r["headers"]["authorization"], "Bearer ...9999", "{r}");
    }
}

#[test]
fn a_planted_drift_and_an_unknown_model_are_found() {
    let mock = mock(OrgConfig {
        cost_drift: 0.05,
        extra_model: Some("gpt-9-preview".into()),
        ..OrgConfig::default()
    });
    let home = fill_ledger(&mock);
    let o = reconcile(&mock, &home, &[]);
    assert_eq!(o.status.code(), Some(3), "{}\n{}", stdout(&o), stderr(&o));
    assert_clear_error(&o, "the ledger and the organisation's reports disagree");
    insta::assert_snapshot!("reconcile_drift", dated(&stdout(&o)));

    let o = reconcile(&mock, &home, &["--json"]);
    assert_eq!(o.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["matches"], false);
    let findings = v["findings"].as_array().unwrap();
    let kinds =
        |kind: &str| -> Vec<&Value> { findings.iter().filter(|f| f["kind"] == kind).collect() };
    // Every priced model drifted by the planted 5%.
    let drifts = kinds("cost_drift");
    assert_eq!(drifts.len(), 3, "{v:#}");
    for d in drifts {
        let drift = d["drift"].as_f64().unwrap();
        assert!((drift - 0.05).abs() < 1e-6, "{d}");
    }
    let unseen = kinds("not_in_ledger");
    assert_eq!(unseen.len(), 1, "{v:#}");
    assert_eq!(unseen[0]["model"], "gpt-9-preview");
    assert_eq!(unseen[0]["input_tokens"], 1000);
    let unpriced = kinds("unpriced");
    assert_eq!(unpriced.len(), 1, "{v:#}");
    assert_eq!(unpriced[0]["model"], "gpt-9-preview");
    assert!(kinds("token_drift").is_empty(), "{v:#}");

    // A threshold above the drift lets the costs pass; the unknown model is still found.
    let o = reconcile(&mock, &home, &["--json", "--threshold", "6"]);
    assert_eq!(o.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["not_in_ledger", "unpriced"], "{v:#}");
}

#[test]
fn a_missing_or_refused_admin_key_is_a_clear_error() {
    let mock = mock(OrgConfig::default());
    let o = Llmkit::against(&mock).args(["usage", "reconcile"]).run();
    assert_clear_error(&o, "no admin key");
    assert!(stderr(&o).contains("OPENAI_ADMIN_KEY"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(1));
    assert!(mock.requests_to("/organization/costs").is_empty());

    // The API key is not an admin key: 401, with the admin-key hint and no key shown.
    let mut k = Llmkit::against(&mock);
    k.cmd.env("OPENAI_ADMIN_KEY", "sk-test-key-000000000000");
    let o = k.args(["usage", "reconcile"]).run();
    assert_clear_error(&o, "API error 401");
    assert!(stderr(&o).contains("OPENAI_ADMIN_KEY"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("sk-test-key-000000000000"));
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn bad_dates_and_thresholds_are_usage_errors() {
    let mock = mock(OrgConfig::default());
    let home = Llmkit::against(&mock);
    for (args, needle) in [
        (&["--since", "last week"][..], "is not a date"),
        (&["--until", "2025-02-30"][..], "is not a date"),
        (
            &["--since", "2025-03-02", "--until", "2025-03-01"][..],
            "the range is empty",
        ),
        (&["--threshold", "101"][..], "not a percentage"),
    ] {
        let o = reconcile(&mock, &home, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    assert!(mock.requests_to("/organization/costs").is_empty());
    let o = reconcile(&mock, &home, &["--help"]);
    assert!(o.status.success());
    insta::assert_snapshot!("help_usage_reconcile", stdout(&o));
}
