//! The one-time Q8_0 conversion: made once, cached beside the model, reused afterwards.
//!
//! The shipped Q4_1 model runs as stored (the native llama engine has a Q4_1 kernel), so these
//! tests convert a Q5_0 copy of it, a type only the conversion makes fast.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use llmkit_local::{LoadOptions, LocalModel};

use crate::support::{default_model_path, write_q5_0_copy};

/// The Q5_0 copy of the default model, written into `dir` as `name`.
#[track_caller]
fn q5_0_model(dir: &Path, name: &str) -> Option<PathBuf> {
    let source = default_model_path()?;
    let path = dir.join(name);
    write_q5_0_copy(&source, &path);
    Some(path)
}

/// The one converted file in `dir`, if any.
fn cached_in(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".q8_0.gguf"))
}

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
    let dir = tempfile::tempdir().unwrap();
    let Some(model_path) = q5_0_model(dir.path(), "SmolLM2-135M-Instruct.Q5_0.gguf") else {
        return;
    };

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
    let cached = cached_in(dir.path()).expect("a converted file beside the model");
    let name = cached.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("SmolLM2-135M-Instruct.Q5_0.")
            && name.len() == "SmolLM2-135M-Instruct.Q5_0.".len() + 16 + ".q8_0.gguf".len(),
        "{name}"
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
    let dir = tempfile::tempdir().unwrap();
    let Some(model_path) = q5_0_model(dir.path(), "m.gguf") else {
        return;
    };
    // Learn the cache file's name from a first conversion, then damage it.
    LocalModel::load(&model_path, &LoadOptions::default()).unwrap();
    let cached = cached_in(dir.path()).unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let Some(model_path) = q5_0_model(dir.path(), "m.gguf") else {
        return;
    };
    let (opts, notices) = collecting_options();
    LocalModel::load_unconverted(&model_path, &opts).unwrap();
    assert!(notices.lock().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn unwritable_model_dir_falls_back_to_cache_dir_then_memory() {
    let dir = tempfile::tempdir().unwrap();
    let Some(model_path) = q5_0_model(dir.path(), "m.gguf") else {
        return;
    };
    // Learn the cache file's name from a conversion cached elsewhere.
    let probe = tempfile::tempdir().unwrap();
    let opts = LoadOptions {
        cache_dir: Some(probe.path().to_path_buf()),
        ..Default::default()
    };
    let probe_copy = probe.path().join("m.gguf");
    std::fs::copy(&model_path, &probe_copy).unwrap();
    LocalModel::load(&probe_copy, &opts).unwrap();
    let name = cached_in(probe.path()).unwrap();
    let name = name.file_name().unwrap().to_string_lossy().into_owned();
    let name = name.as_str();
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

#[test]
fn the_shipped_q4_1_model_runs_without_conversion() {
    let Some(source) = default_model_path() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::copy(&source, &model_path).unwrap();
    let (opts, notices) = collecting_options();
    LocalModel::load(&model_path, &opts).unwrap();
    assert!(
        notices.lock().unwrap().is_empty(),
        "{:?}",
        notices.lock().unwrap()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // An explicit conversion still makes the Q8_0 file, beside the model.
    let converted = llmkit_local::convert_to_q8_0(&model_path, &opts).unwrap();
    assert_eq!(
        converted.file_name().unwrap(),
        "SmolLM2-135M-Instruct.Q4_1.b179c9523d0e6a0f.q8_0.gguf"
    );
    assert_eq!(
        llmkit_local::convert_to_q8_0(&model_path, &opts).unwrap(),
        converted
    );
    // A file with nothing to convert is a typed error.
    assert!(llmkit_local::convert_to_q8_0(&converted, &opts).is_err());
}
