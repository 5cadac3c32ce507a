//! User-facing errors: a one-line message, an optional `hint:` line, and an exit code.

use std::fmt;

/// Exit code for a failure at run time (network, server, model).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for bad usage: flags, input, or config.
pub const EXIT_USAGE: i32 = 2;

/// An error the CLI explains to the user itself.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    pub code: i32,
}

impl CliError {
    /// Bad flags, bad input or a bad config value (exit code 2).
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: Some(hint.into()),
            code: EXIT_USAGE,
        }
    }

    /// A problem with the config file (exit code 2).
    pub fn config(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::usage(message, hint)
    }

    /// A failure at run time (exit code 1).
    pub fn failure(message: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            message: message.into(),
            hint,
            code: EXIT_FAILURE,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// True when `err` (or its cause chain) is a closed pipe on our output.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
