//! The knowledge-base error type, each variant with a user-facing hint where one helps.

use std::path::PathBuf;

/// What can go wrong opening, filling or searching a knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("knowledge base `{0}` does not exist")]
    NotFound(String),
    #[error("knowledge base `{0}` already exists")]
    Exists(String),
    #[error("`{0}` is not a valid knowledge base name")]
    BadName(String),
    #[error("knowledge base `{0}` is empty")]
    Empty(String),
    #[error(
        "embedding dimension mismatch: the knowledge base holds {expected}-d vectors, got {got}-d"
    )]
    DimensionMismatch { expected: usize, got: usize },
    #[error("the knowledge base uses embedding model `{kb}`, not `{asked}`")]
    ModelMismatch { kb: String, asked: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unsupported file type")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: {message}")]
    BadInput { path: PathBuf, message: String },
    #[error("{path}: `pdftotext` is not installed")]
    NoPdfToText { path: PathBuf },
    #[error("{path}: invalid rule file: {message}")]
    BadRules { path: PathBuf, message: String },
    #[error("knowledge base storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("knowledge base IO: {0}")]
    Io(#[from] std::io::Error),
}

impl KbError {
    /// A line telling the user what to do next, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotFound(n) => Some(format!(
                "create it with `llmkit kb create {n}`; `llmkit kb list` shows the existing ones"
            )),
            Self::Exists(n) => Some(format!(
                "add documents with `llmkit kb add {n} PATH`, or remove it with `llmkit kb remove {n}`"
            )),
            Self::BadName(_) => {
                Some("use letters, digits, `-`, `_` and `.` (not first), 1 to 64 characters".into())
            }
            Self::Empty(n) => Some(format!("add documents first: `llmkit kb add {n} PATH...`")),
            Self::DimensionMismatch { .. } | Self::ModelMismatch { .. } => Some(
                "a knowledge base keeps the embedding model it was created with; create another \
                 one for a different model"
                    .into(),
            ),
            Self::UnknownFormat { .. } => Some(
                "supported: .txt .md .markdown .html .htm .pdf .csv .jsonl (csv/jsonl need \
                 --text-column)"
                    .into(),
            ),
            Self::NoPdfToText { .. } => {
                Some("install poppler-utils (e.g. `apt-get install poppler-utils`)".into())
            }
            Self::BadRules { .. } => Some(
                "a rule file is TOML: `must = [\"...\"]`, `forbidden = [\"topic\"]`, and a \
                 `[glossary]` table of `\"preferred\" = [\"avoided\", ...]`"
                    .into(),
            ),
            _ => None,
        }
    }
}
