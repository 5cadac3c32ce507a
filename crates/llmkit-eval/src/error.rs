//! The evaluation error type, with user-facing hints.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid eval spec {path}: {message}")]
    Spec { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Dataset {
        path: String,
        line: usize,
        message: String,
    },
    #[error("invalid gate `{0}`: expected METRIC>=VALUE (also <=, >, <)")]
    Gate(String),
    #[error("unknown metric `{0}`")]
    UnknownMetric(String),
    #[error("invalid run record: {0}")]
    Record(String),
    /// Exporting a run's passed items as training data cannot proceed.
    #[error("{0}")]
    Export(String),
    /// The batch engine running the eval failed.
    #[error("{message}")]
    Job {
        message: String,
        hint: Option<String>,
    },
}

impl EvalError {
    /// A line telling the user what to do, where there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Read { .. } => Some(
                "check the path and its permissions (a spec's `dataset` is relative to the \
                 spec file)"
                    .to_string(),
            ),
            Self::Record(_) => Some(
                "`llmkit eval list` shows the saved runs; pass an id from it or a run JSON file"
                    .to_string(),
            ),
            Self::Spec { .. } => {
                Some("see `examples/eval/sentiment.toml` for a complete spec".to_string())
            }
            Self::Dataset { .. } => Some(
                "the dataset is JSONL: one JSON object per line with the input fields and the \
                 expected output"
                    .to_string(),
            ),
            Self::UnknownMetric(_) | Self::Gate(_) => Some(format!(
                "known metrics: {}",
                crate::metrics::Metric::ALL
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Self::Job { hint, .. } => hint.clone(),
            Self::Export(_) => Some(
                "`llmkit eval list` shows saved runs; `--json` on a run shows its variants and \
                 per-item scores"
                    .to_string(),
            ),
        }
    }
}
