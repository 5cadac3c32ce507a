//! `BatchError`: why a batch job cannot start or continue, with a user-facing hint.

use std::path::PathBuf;

use llmkit_client::ClientError;
use llmkit_store::StoreError;

/// A failure of the job as a whole (a failing row is written as an error line instead).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The input file cannot be opened or read.
    #[error("cannot read the input {}: {source}", path.display())]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The output file cannot be created, repaired or appended to.
    #[error("cannot write the output {}: {source}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The options or the input's shape make the job impossible (no such CSV column...).
    #[error("{0}")]
    Invalid(String),

    /// The input holds a NUL byte near its start: a binary file, not JSONL or CSV.
    #[error("the input {} looks like a binary file (NUL byte at offset {offset})", path.display())]
    Binary { path: PathBuf, offset: usize },

    /// The input file is empty (or only blank lines).
    #[error("the input {} is empty", .0.display())]
    EmptyInput(PathBuf),

    /// The CSV input has no column of the text column's name.
    #[error("the CSV {} has no column `{column}` (columns: {columns})", path.display())]
    NoColumn {
        path: PathBuf,
        column: String,
        columns: String,
    },

    /// No stored job matches the given id.
    #[error("no batch job matches `{0}`")]
    UnknownJob(String),

    /// The checkpoint store failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A call that the whole job depends on failed (`--via openai-batch`).
    #[error(transparent)]
    Client(Box<ClientError>),

    /// The remote batch ended in a state we cannot merge.
    #[error("remote batch {id}: {message}")]
    Remote { id: String, message: String },
}

impl From<ClientError> for BatchError {
    fn from(e: ClientError) -> Self {
        Self::Client(Box::new(e))
    }
}

impl BatchError {
    /// A one-line suggestion for the user, when there is a useful one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Input { .. } => Some("check the path and its permissions".into()),
            Self::Output { .. } => {
                Some("choose an output path in an existing, writable directory (-o)".into())
            }
            Self::Binary { .. } => Some("pass a JSONL or CSV text file".into()),
            Self::EmptyInput(_) => Some(
                "the input needs rows: one JSON object per line (JSONL), or a header line and \
                 rows (CSV)"
                    .into(),
            ),
            Self::NoColumn { .. } => Some("name the text column with --text-column NAME".into()),
            Self::Invalid(_) => Some(
                "see `llmkit batch run --help` for the input formats (JSONL, CSV) and options"
                    .into(),
            ),
            Self::UnknownJob(_) => Some("`llmkit batch list` shows the known jobs".into()),
            Self::Client(e) => e.hint(),
            Self::Store(_) | Self::Remote { .. } => None,
        }
    }
}
