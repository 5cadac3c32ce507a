//! User-facing errors: a one-line message, an optional `hint:` line, and an exit code.
//!
//! Every library error becomes a [`CliError`] through one `From` impl here, which picks the
//! exit code per variant: [`EXIT_USAGE`] only when the flags, arguments, spec, config or
//! input are wrong (running the same command again cannot succeed), [`EXIT_FAILURE`] for
//! failures at run time (network, server, model, store, disk).

use std::fmt;

use llmkit_batch::BatchError;
use llmkit_client::ClientError;
use llmkit_eval::EvalError;
use llmkit_gateway::GatewayError;
use llmkit_kb::KbError;
use llmkit_local::{EmbedError, LocalError};
use llmkit_store::StoreError;
use llmkit_tasks::{AttachmentError, RedactError, TaskError};
use llmkit_tools::ToolError;

/// Exit code for a failure at run time (network, server, model).
pub(crate) const EXIT_FAILURE: i32 = 1;
/// Exit code for bad usage: flags, input, or config.
pub(crate) const EXIT_USAGE: i32 = 2;
/// Exit code when the user interrupted the command (Ctrl-C: 128 + SIGINT).
pub(crate) const EXIT_INTERRUPTED: i32 = 130;

/// An error the CLI explains to the user itself.
#[derive(Debug)]
pub(crate) struct CliError {
    pub message: String,
    pub hint: Option<String>,
    pub code: i32,
}

impl CliError {
    /// Bad flags, bad input or a bad config value (exit code 2).
    pub(crate) fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: Some(hint.into()),
            code: EXIT_USAGE,
        }
    }

    /// A problem with the config file (exit code 2).
    pub(crate) fn config(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::usage(message, hint)
    }

    /// A failure at run time (exit code 1).
    pub(crate) fn failure(message: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            message: message.into(),
            hint,
            code: EXIT_FAILURE,
        }
    }

    /// A library error's message and hint with the given exit code.
    fn from_parts(message: String, hint: Option<String>, usage: bool) -> Self {
        Self {
            message,
            hint,
            code: if usage { EXIT_USAGE } else { EXIT_FAILURE },
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// `From<X>` for an owned library error, through its `From<&X>` below.
macro_rules! owned_from {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                Self::from(&e)
            }
        }
    )*};
}

owned_from!(
    ClientError,
    StoreError,
    TaskError,
    RedactError,
    BatchError,
    EvalError,
    KbError,
    LocalError,
    EmbedError,
    GatewayError,
    ToolError,
    AttachmentError
);

impl From<&ClientError> for CliError {
    fn from(e: &ClientError) -> Self {
        // The accounting step keeps the store's own error (and its hint) as the source.
        let hint = match e {
            ClientError::Accounting { source } => source
                .downcast_ref::<StoreError>()
                .and_then(StoreError::hint),
            _ => e.hint(),
        };
        // Options the chosen API does not have are a flag mistake.
        let usage = matches!(e, ClientError::Unsupported { options: true, .. });
        let mut out = Self::from_parts(e.to_string(), hint, usage);
        if matches!(e, ClientError::Interrupted { .. }) {
            out.code = EXIT_INTERRUPTED;
        }
        out
    }
}

impl From<&StoreError> for CliError {
    fn from(e: &StoreError) -> Self {
        let usage = matches!(e, StoreError::NoSession(_));
        Self::from_parts(e.to_string(), e.hint(), usage)
    }
}

impl From<&TaskError> for CliError {
    fn from(e: &TaskError) -> Self {
        match e {
            TaskError::Client(c) => Self::from(&**c),
            other => {
                let usage = other.is_usage();
                Self::from_parts(other.to_string(), other.hint(), usage)
            }
        }
    }
}

impl From<&AttachmentError> for CliError {
    fn from(e: &AttachmentError) -> Self {
        // Every refusal is about the file or the model the user picked.
        Self::from_parts(e.to_string(), e.hint(), true)
    }
}

impl From<&RedactError> for CliError {
    fn from(e: &RedactError) -> Self {
        // Unknown kinds, bad patterns and deny lists are all flag or config mistakes.
        Self::from_parts(e.to_string(), e.hint(), true)
    }
}

impl From<&BatchError> for CliError {
    fn from(e: &BatchError) -> Self {
        match e {
            BatchError::Client(c) => Self::from(&**c),
            BatchError::Store(s) => Self::from(s),
            other => {
                let usage = matches!(
                    other,
                    BatchError::Invalid(_)
                        | BatchError::NoColumn { .. }
                        | BatchError::Binary { .. }
                        | BatchError::EmptyInput(_)
                        | BatchError::UnknownJob(_)
                        | BatchError::Input { .. }
                );
                Self::from_parts(other.to_string(), other.hint(), usage)
            }
        }
    }
}

impl From<&EvalError> for CliError {
    fn from(e: &EvalError) -> Self {
        // The spec, its dataset, gates and metric names are the user's input; reading a
        // record, exporting and the job itself fail at run time.
        let usage = matches!(
            e,
            EvalError::Read { .. }
                | EvalError::Spec { .. }
                | EvalError::Dataset { .. }
                | EvalError::Gate(_)
                | EvalError::UnknownMetric(_)
        );
        Self::from_parts(e.to_string(), e.hint(), usage)
    }
}

impl From<&KbError> for CliError {
    fn from(e: &KbError) -> Self {
        let usage = matches!(
            e,
            KbError::NotFound(_)
                | KbError::Exists(_)
                | KbError::BadName(_)
                | KbError::Empty(_)
                | KbError::ModelMismatch { .. }
                | KbError::Read { .. }
                | KbError::UnknownFormat { .. }
                | KbError::BadInput { .. }
                | KbError::BadRules { .. }
        );
        Self::from_parts(e.to_string(), e.hint(), usage)
    }
}

impl From<&LocalError> for CliError {
    fn from(e: &LocalError) -> Self {
        let usage = matches!(e, LocalError::InvalidRequest(_));
        Self::from_parts(e.to_string(), e.hint(), usage)
    }
}

impl From<&EmbedError> for CliError {
    fn from(e: &EmbedError) -> Self {
        Self::from_parts(e.to_string(), e.hint(), false)
    }
}

impl From<&GatewayError> for CliError {
    fn from(e: &GatewayError) -> Self {
        match e {
            GatewayError::Client(c) => Self::from(&**c),
            GatewayError::Store(s) => Self::from(s),
            other => Self::from_parts(other.to_string(), other.hint(), other.is_usage()),
        }
    }
}

impl From<&ToolError> for CliError {
    fn from(e: &ToolError) -> Self {
        // A failed step keeps the pipeline's exit code and hint (a budget, the server);
        // the message says where in the loop it stopped.
        if let Some(c) = e.client_error() {
            let inner = Self::from(c);
            return Self {
                message: e.to_string(),
                ..inner
            };
        }
        // Definitions that do not parse and commands that do not exist are flag or file
        // mistakes; a server that fails, or a model that loops or keeps sending bad
        // arguments, is a failure at run time.
        let usage = matches!(
            e,
            ToolError::Spec { .. } | ToolError::Duplicate(_) | ToolError::Command { .. }
        );
        Self::from_parts(e.to_string(), e.hint(), usage)
    }
}

/// The first typed error in `err`'s chain, converted by its `From` impl above (its message
/// alone: `main` adds the context written above it).
///
/// This is the one place library errors become what the user sees: commands let them travel
/// through `anyhow` with `?` (adding context where it helps), and `main` calls this.
pub(crate) fn typed(err: &anyhow::Error) -> Option<CliError> {
    macro_rules! try_types {
        ($cause:expr, $($t:ty),*) => {$(
            if let Some(e) = $cause.downcast_ref::<$t>() {
                return Some(CliError::from(e));
            }
        )*};
    }
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return Some(CliError {
                message: e.message.clone(),
                hint: e.hint.clone(),
                code: e.code,
            });
        }
        try_types!(
            cause,
            ClientError,
            StoreError,
            TaskError,
            RedactError,
            BatchError,
            EvalError,
            KbError,
            LocalError,
            EmbedError,
            GatewayError,
            ToolError,
            AttachmentError
        );
    }
    None
}

/// True when `err` (or its cause chain) is a closed pipe on our output.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
