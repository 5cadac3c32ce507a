//! Broken, foreign and missing model files give typed errors with hints, never a panic.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use llmkit_local::{LoadOptions, LocalError, LocalModel, resolve_model_path};

use crate::support::default_model_path;

fn load(path: &Path) -> Result<LocalModel, LocalError> {
    LocalModel::load(path, &LoadOptions::default())
}

/// Writes a GGUF with the given metadata and no tensors.
fn write_gguf(path: &Path, metadata: &[(&str, Value)]) {
    let refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &refs, &[]).unwrap();
}

#[test]
fn missing_default_model_hints_at_fetch_script() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap_err();
    assert!(matches!(err, LocalError::ModelNotFound { .. }), "{err:?}");
    assert!(err.hint().unwrap().contains("scripts/fetch-models.sh"));

    let err = resolve_model_path("smollm2-135m", dir.path()).unwrap_err();
    assert!(err.hint().unwrap().contains("scripts/fetch-models.sh"));
}

#[test]
fn text_file_is_not_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, "<html>404 Not Found</html>\n").unwrap();
    let err = load(&path).unwrap_err();
    assert!(matches!(err, LocalError::NotGguf { .. }), "{err:?}");
    assert!(err.to_string().contains("text file"), "{err}");
    assert!(err.hint().is_some());
}

#[test]
fn empty_file_and_directory_are_not_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.gguf");
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(load(&path), Err(LocalError::NotGguf { .. })));
    assert!(matches!(load(dir.path()), Err(LocalError::NotGguf { .. })));
}

#[test]
fn unsupported_architecture_names_the_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mamba.gguf");
    write_gguf(
        &path,
        &[("general.architecture", Value::String("mamba".into()))],
    );
    let err = load(&path).unwrap_err();
    match &err {
        LocalError::UnsupportedArchitecture { architecture, .. } => {
            assert_eq!(architecture, "mamba")
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    for arch in ["llama", "qwen2", "qwen3", "phi3", "gemma3"] {
        assert!(text.contains(arch), "{text}");
    }
}

#[test]
fn gguf_without_weights_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hollow.gguf");
    write_gguf(
        &path,
        &[
            ("general.architecture", Value::String("llama".into())),
            ("llama.attention.head_count", Value::U32(4)),
        ],
    );
    let err = load(&path).unwrap_err();
    assert!(
        matches!(
            err,
            LocalError::InvalidModel { .. } | LocalError::Tokenizer(_)
        ),
        "{err:?}"
    );

    let path = dir.path().join("nameless.gguf");
    write_gguf(&path, &[("general.name", Value::String("x".into()))]);
    assert!(matches!(load(&path), Err(LocalError::InvalidModel { .. })));
}

#[test]
fn garbage_after_magic_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.gguf");
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8));
    std::fs::write(&path, bytes).unwrap();
    let err = load(&path).unwrap_err();
    assert!(
        matches!(
            err,
            LocalError::Truncated { .. } | LocalError::InvalidModel { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_model_is_reported_as_truncated() {
    let Some(model) = default_model_path() else {
        return;
    };
    let bytes = std::fs::read(&model).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for keep in [bytes.len() / 2, 1000] {
        let path = dir.path().join(format!("cut{keep}.gguf"));
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let err = load(&path).unwrap_err();
        assert!(
            matches!(err, LocalError::Truncated { .. }),
            "{keep}: {err:?}"
        );
        assert!(err.hint().unwrap().contains("fetch-models.sh"));
    }
}

#[test]
fn patched_architecture_is_unsupported() {
    let Some(model) = default_model_path() else {
        return;
    };
    let mut bytes = std::fs::read(&model).unwrap();
    // The key, its type (8 = string), the value's length (5) and the value "llama".
    let mut needle = b"general.architecture".to_vec();
    needle.extend_from_slice(&8u32.to_le_bytes());
    needle.extend_from_slice(&5u64.to_le_bytes());
    needle.extend_from_slice(b"llama");
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("architecture entry found");
    let value_at = at + needle.len() - 5;
    bytes[value_at..value_at + 5].copy_from_slice(b"lamma");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patched.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let err = load(&path).unwrap_err();
    assert!(
        matches!(&err, LocalError::UnsupportedArchitecture { architecture, .. } if architecture == "lamma"),
        "{err:?}"
    );
    // Nothing was converted for a model that cannot run.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
