//! Integration tests for llmkit-eval: the shipped sample spec and dataset load and check.

// Test code: a failed unwrap is a failed test (clippy.toml exempts #[test] functions,
// not the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use llmkit_eval::{EvalSpec, Task, metrics::Metric};

#[test]
fn the_sample_spec_and_dataset_load() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/eval/sentiment.toml");
    let spec = EvalSpec::load(&path).unwrap_or_else(|e| panic!("{e}"));
    // A prompt task scored by label, so the small embedded model's free-text answers count.
    assert_eq!(spec.task, Task::Prompt);
    assert_eq!(spec.labels, ["positive", "negative", "neutral", "mixed"]);
    assert!(spec.variants.len() >= 2);
    assert!(spec.metrics.contains(&Metric::Accuracy));
    let data = spec.load_dataset().unwrap_or_else(|e| panic!("{e}"));
    assert!(data.items.len() >= 20, "{} items", data.items.len());
    let labels = ["positive", "negative", "neutral", "mixed"];
    for item in &data.items {
        let label = item.expected.as_str().unwrap_or_default();
        assert!(labels.contains(&label), "item {}: {label}", item.index);
        assert!(!item.input("text").is_empty());
    }
}
