//! The one-time Q8_0 conversion: made once, cached beside the model, reused afterwards.

use std::sync::{Arc, Mutex};

use llmkit_local::{LoadOptions, LocalModel};

use crate::support::default_model_path;

fn collecting_options() -> (LoadOptions, Arc<Mutex<Vec<String>>>) {
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = notices.clone();
    let opts = LoadOptions {
        on_notice: Some(Arc::new(move |m: &str| {
            sink.lock().unwrap().push(m.to_string())
        })),
        ..Default::default()
    };
    (opts, notices)
}

#[test]
fn conversion_is_cached_once_and_reused() {
    let Some(source) = default_model_path("conversion_is_cached_once_and_reused") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::copy(&source, &model_path).unwrap();

    let (opts, notices) = collecting_options();
    let first = LocalModel::load(&model_path, &opts).unwrap();
    let converted: Vec<String> = notices.lock().unwrap().clone();
    assert!(
        converted
            .iter()
            .filter(|n| n.starts_with("converting"))
            .count()
            == 1,
        "{converted:?}"
    );
    let cached = dir
        .path()
        .join("SmolLM2-135M-Instruct.Q4_1.b179c9523d0e6a0f.q8_0.gguf");
    assert!(
        cached.is_file(),
        "{:?}",
        std::fs::read_dir(dir.path()).unwrap().collect::<Vec<_>>()
    );
    let modified = std::fs::metadata(&cached).unwrap().modified().unwrap();
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);

    let (opts, notices) = collecting_options();
    let second = LocalModel::load(&model_path, &opts).unwrap();
    assert!(
        notices.lock().unwrap().is_empty(),
        "{:?}",
        notices.lock().unwrap()
    );
    assert_eq!(
        std::fs::metadata(&cached).unwrap().modified().unwrap(),
        modified
    );

    // Both loads behave the same.
    assert_eq!(
        first.encode("Paris").unwrap(),
        second.encode("Paris").unwrap()
    );
}

#[test]
fn corrupt_cache_is_rebuilt() {
    let Some(source) = default_model_path("corrupt_cache_is_rebuilt") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::copy(&source, &model_path).unwrap();
    let cached = dir
        .path()
        .join("SmolLM2-135M-Instruct.Q4_1.b179c9523d0e6a0f.q8_0.gguf");
    std::fs::write(&cached, b"GGUF not really").unwrap();

    let (opts, notices) = collecting_options();
    LocalModel::load(&model_path, &opts).unwrap();
    assert!(
        notices
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.starts_with("converting"))
    );
    assert!(std::fs::metadata(&cached).unwrap().len() > 100_000_000);
}

#[test]
fn unconverted_load_writes_nothing() {
    let Some(source) = default_model_path("unconverted_load_writes_nothing") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.gguf");
    std::fs::copy(&source, &model_path).unwrap();
    let (opts, notices) = collecting_options();
    LocalModel::load_unconverted(&model_path, &opts).unwrap();
    assert!(notices.lock().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn unwritable_model_dir_falls_back_to_cache_dir_then_memory() {
    let Some(source) =
        default_model_path("unwritable_model_dir_falls_back_to_cache_dir_then_memory")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::copy(&source, &model_path).unwrap();
    let name = "SmolLM2-135M-Instruct.Q4_1.b179c9523d0e6a0f.q8_0.gguf";
    // A directory where the cache file should go makes the model directory unusable for the
    // cache (tests run as root here, so permissions cannot simulate a read-only directory).
    std::fs::create_dir(dir.path().join(name)).unwrap();

    // Without a cache directory the conversion is kept in memory, with a notice.
    let (opts, notices) = collecting_options();
    let model = LocalModel::load(&model_path, &opts).unwrap();
    assert!(
        notices
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.starts_with("cannot cache")),
        "{:?}",
        notices.lock().unwrap()
    );
    assert_eq!(model.encode("Paris").unwrap().len(), 1);

    // With one, the converted file lands there and is reused.
    let cache = tempfile::tempdir().unwrap();
    let (mut opts, notices) = collecting_options();
    opts.cache_dir = Some(cache.path().to_path_buf());
    LocalModel::load(&model_path, &opts).unwrap();
    assert!(cache.path().join(name).is_file());
    assert!(
        notices
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.starts_with("converting"))
    );
    let (mut opts, notices) = collecting_options();
    opts.cache_dir = Some(cache.path().to_path_buf());
    LocalModel::load(&model_path, &opts).unwrap();
    assert!(
        notices.lock().unwrap().is_empty(),
        "{:?}",
        notices.lock().unwrap()
    );
}
