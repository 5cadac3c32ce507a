//! `TaskError`: everything a task can fail with, each with a user-facing hint.

use std::path::PathBuf;

use llmkit_client::ClientError;

/// A task failure. [`TaskError::hint`] gives the line the CLI prints after `hint:`;
/// [`TaskError::is_usage`] tells bad input (exit code 2) from run-time failures.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The input had no text left after preprocessing.
    #[error("the input is empty")]
    EmptyInput,

    /// No template by that name, built in or in the user directory.
    #[error("unknown template `{name}`")]
    UnknownTemplate { name: String, known: Vec<String> },

    /// A template failed to parse or render.
    #[error("template `{name}`: {message}")]
    Template { name: String, message: String },

    /// A template needs variables that were not given.
    #[error("template `{name}` needs {}", missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "))]
    MissingVariables { name: String, missing: Vec<String> },

    /// A template file could not be read or written.
    #[error("cannot access template file {}: {message}", path.display())]
    TemplateFile { path: PathBuf, message: String },

    /// The user's JSON Schema is not a usable schema.
    #[error("invalid JSON Schema: {0}")]
    InvalidSchema(String),

    /// `classify` was given no labels.
    #[error("the label list is empty")]
    EmptyLabels,

    /// A glossary file could not be parsed.
    #[error("invalid glossary: {0}")]
    Glossary(String),

    /// Glossary terms whose target is missing from the translation (with `--strict`).
    #[error("the translation does not use the glossary for {}", missing.iter().map(|(s, t)| format!("`{s}` → `{t}`")).collect::<Vec<_>>().join(", "))]
    GlossaryViolation { missing: Vec<(String, String)> },

    /// The model's answer stayed invalid after every repair attempt.
    #[error("the model's answer is not valid {what} after {attempts} attempt(s): {error}")]
    InvalidOutput {
        what: String,
        attempts: u32,
        error: String,
    },

    /// The context window cannot hold even the instructions and the output budget.
    #[error(
        "the context window ({window} tokens) is too small: the instructions and output need {needed}"
    )]
    WindowTooSmall { window: usize, needed: usize },

    /// The request failed (network, server, local model, budget).
    #[error(transparent)]
    Client(Box<ClientError>),

    /// The caller's [`crate::ChatStep`] failed (a tool loop that stopped), with its hint.
    #[error("{message}")]
    Step {
        message: String,
        hint: Option<String>,
    },
}

impl From<ClientError> for TaskError {
    fn from(e: ClientError) -> Self {
        Self::Client(Box::new(e))
    }
}

impl TaskError {
    /// A one-line suggestion for the user.
    pub fn hint(&self) -> Option<String> {
        let text = match self {
            Self::EmptyInput => "pass text as arguments, files or directories, or pipe it on stdin".to_string(),
            Self::UnknownTemplate { known, .. } => format!("templates: {}", known.join(", ")),
            Self::Template { .. } => "check the template with `llmkit templates show NAME`".to_string(),
            Self::MissingVariables { missing, .. } => format!(
                "pass {}",
                missing.iter().map(|m| format!("--var {m}=...")).collect::<Vec<_>>().join(" ")
            ),
            Self::TemplateFile { .. } => "check the path and its permissions".to_string(),
            Self::InvalidSchema(_) => {
                "a schema file holds a JSON Schema object such as {\"type\": \"object\", \"properties\": {...}}".to_string()
            }
            Self::EmptyLabels => "pass --labels a,b,c".to_string(),
            Self::Glossary(_) => {
                "a glossary is TSV/CSV lines `source<TAB>target` or a JSON object {\"source\": \"target\"}".to_string()
            }
            Self::GlossaryViolation { .. } => {
                "drop --strict to accept the translation anyway, or try another model".to_string()
            }
            Self::InvalidOutput { .. } => {
                "raise --repair-attempts, lower --temperature, or use a stronger model".to_string()
            }
            Self::WindowTooSmall { .. } => {
                "raise --context-window, lower --max-tokens, or use a model with a larger window".to_string()
            }
            Self::Client(e) => return e.hint(),
            Self::Step { hint, .. } => return hint.clone(),
        };
        Some(text)
    }

    /// True for errors caused by the user's input or flags (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::EmptyInput
                | Self::UnknownTemplate { .. }
                | Self::MissingVariables { .. }
                | Self::TemplateFile { .. }
                | Self::InvalidSchema(_)
                | Self::EmptyLabels
                | Self::Glossary(_)
                | Self::WindowTooSmall { .. }
        )
    }
}
