//! `llmkit models --prices`: the built-in price list, offline and without a key, with the
//! config file's per-model overrides.

use crate::support::{Llmkit, stderr, stdout};

#[test]
fn prices_work_offline_without_a_key_and_show_date_and_source() {
    // `bare` sets no key and no base URL: nothing may be fetched.
    let o = Llmkit::bare().args(["models", "--prices"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let header = out.lines().next().unwrap();
    assert!(header.contains("checked 20"), "{header}");
    assert!(header.contains("pricing"), "{header}");
    let row = |id: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row for {id}: {out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("gpt-4o-mini")[1..7],
        ["128000", "16384", "0.150", "0.075", "0.600", "0.50x"]
    );
    assert!(row("gpt-5-pro").join(" ").contains("responses only"));
    assert!(row("gpt-5.1-mini").join(" ").contains("unpriced"));
}

#[test]
fn prices_as_json_carry_every_field() {
    let o = Llmkit::bare().args(["models", "--prices", "--json"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["checked"].as_str().unwrap().starts_with("20"));
    assert!(v["source"].as_str().unwrap().contains("pricing"));
    let models = v["models"].as_array().unwrap();
    let get = |id: &str| models.iter().find(|m| m["id"] == id).unwrap();
    let gpt5 = get("gpt-5");
    assert_eq!(gpt5["input_per_mtok"], 1.25);
    assert_eq!(gpt5["cached_input_per_mtok"], 0.125);
    assert_eq!(gpt5["batch_multiplier"], 0.5);
    assert_eq!(gpt5["flex_multiplier"], 0.5);
    assert_eq!(
        gpt5["input_modalities"],
        serde_json::json!(["text", "image"])
    );
    assert_eq!(get("o3-deep-research")["responses_only"], true);
    let audio = get("gpt-4o-audio-preview");
    assert_eq!(audio["priced"], false);
    assert!(audio["input_per_mtok"].is_null());
}

#[test]
fn config_overrides_change_and_add_prices() {
    let mut k = Llmkit::bare();
    let path = k.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        "[models.\"gpt-4o-mini\"]\ninput_per_mtok = 0.2\nresponses_only = true\n\
         [models.\"my-vllm\"]\ncontext_window = 32000\ninput_per_mtok = 0\noutput_per_mtok = 0\n\
         batch_multiplier = 1.0\n",
    )
    .unwrap();
    let o = k.args(["models", "--prices", "--json"]).run();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let models = v["models"].as_array().unwrap();
    let get = |id: &str| models.iter().find(|m| m["id"] == id).unwrap();
    let mini = get("gpt-4o-mini");
    assert_eq!(mini["input_per_mtok"], 0.2);
    assert_eq!(mini["output_per_mtok"], 0.6);
    assert_eq!(mini["responses_only"], true);
    let mine = get("my-vllm");
    assert_eq!(mine["context_window"], 32000);
    assert_eq!(mine["priced"], true);
    assert_eq!(mine["batch_multiplier"], 1.0);
}

#[test]
fn prices_take_no_subcommand() {
    let o = Llmkit::bare()
        .args(["models", "--prices", "list", "--local"])
        .run();
    crate::support::assert_clear_error(&o, "--prices");
}
