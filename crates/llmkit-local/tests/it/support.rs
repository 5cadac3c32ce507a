//! Finds the test model and shares one loaded copy between tests.

use std::path::PathBuf;
use std::sync::OnceLock;

use llmkit_local::{DEFAULT_CHAT_MODEL, LoadOptions, LocalModel, find_known_model};

/// `LLMKIT_MODELS_DIR`, or the workspace's `models/` directory.
pub fn models_dir() -> PathBuf {
    std::env::var_os("LLMKIT_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

/// The default model's file, or `None` (after printing why) when it is not there.
pub fn default_model_path(test: &str) -> Option<PathBuf> {
    let known = find_known_model(DEFAULT_CHAT_MODEL).expect("default model is catalogued");
    let path = models_dir().join(known.local_name);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIP {test}: {} not found (run scripts/fetch-models.sh or set LLMKIT_MODELS_DIR)",
            path.display()
        );
        None
    }
}

/// The default model, loaded once for all tests of this binary.
pub fn shared_model(test: &str) -> Option<LocalModel> {
    static MODEL: OnceLock<Option<LocalModel>> = OnceLock::new();
    let model = MODEL.get_or_init(|| {
        let path = default_model_path("loading the shared model")?;
        Some(LocalModel::load(&path, &LoadOptions::default()).expect("the default model loads"))
    });
    if model.is_none() {
        eprintln!("SKIP {test}: the default model is not available");
    }
    model.clone()
}
