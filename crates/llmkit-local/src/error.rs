//! The error type of the local model crate, with a user-facing hint per failure.

use std::path::PathBuf;

/// The hint shown when the default model file is missing or damaged.
pub(crate) const FETCH_HINT: &str =
    "run scripts/fetch-models.sh to download the default model into the models directory";

/// Everything that can go wrong while loading a local model or generating with it.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The model file (or a known model name's file) does not exist.
    #[error("model file not found: {}", path.display())]
    ModelNotFound {
        /// The path that was looked for.
        path: PathBuf,
        /// What the user can do about it.
        hint: Option<String>,
    },
    /// Reading a file failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file that could not be read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a GGUF file at all.
    #[error("{} is not a GGUF model file: {detail}", path.display())]
    NotGguf {
        /// The offending file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The file starts like a GGUF file but ends too early (an interrupted download).
    #[error("{} is truncated: {detail}", path.display())]
    Truncated {
        /// The offending file.
        path: PathBuf,
        /// Which part is missing.
        detail: String,
    },
    /// The GGUF file holds a model family this crate cannot run.
    #[error("unsupported model architecture `{architecture}` (supported: {})", supported.join(", "))]
    UnsupportedArchitecture {
        /// The value of `general.architecture`.
        architecture: String,
        /// The architectures this crate can run.
        supported: Vec<&'static str>,
    },
    /// The GGUF file is well formed but its contents do not make a usable model.
    #[error("invalid model {}: {detail}", path.display())]
    InvalidModel {
        /// The offending file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// No tokenizer could be built for the model.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    /// The chat template could not be rendered.
    #[error("chat template error: {0}")]
    Template(String),
    /// The request itself is invalid (for example a negative temperature).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The prompt does not fit in the model's context window.
    #[error(
        "the prompt has {prompt_tokens} tokens but the model's context window is {context_window} tokens"
    )]
    ContextOverflow {
        /// Tokens in the rendered prompt.
        prompt_tokens: usize,
        /// The model's context window.
        context_window: usize,
    },
    /// The forward pass failed.
    #[error("inference failed: {0}")]
    Inference(String),
}

impl LocalError {
    /// A line telling the user what to do next, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            LocalError::ModelNotFound { hint, .. } => hint.clone(),
            LocalError::NotGguf { .. } | LocalError::Truncated { .. } => Some(format!(
                "the file is damaged or not a model; download it again ({FETCH_HINT})"
            )),
            LocalError::UnsupportedArchitecture { .. } => Some(
                "use a GGUF of a supported family, e.g. `smollm2-135m` (the default)".to_string(),
            ),
            LocalError::ContextOverflow { .. } => Some(
                "shorten the prompt (or the conversation history), or use a model with a larger context window"
                    .to_string(),
            ),
            LocalError::Io { .. } => Some("check that the file exists and is readable".to_string()),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LocalError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The message of a candle error without the backtrace candle appends when `RUST_BACKTRACE` is
/// set.
pub(crate) fn candle_message(mut err: &candle_core::Error) -> String {
    // Formatting the backtrace would resolve its symbols: tens of MB and milliseconds for
    // every malformed file under RUST_BACKTRACE=1, for text that is thrown away below.
    while let candle_core::Error::WithBacktrace { inner, .. } = err {
        err = inner;
    }
    let text = err.to_string();
    let mut kept: Vec<&str> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let is_frame = trimmed
            .split_once(':')
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if is_frame && line.starts_with(' ') {
            break;
        }
        kept.push(line);
    }
    kept.join("\n").trim_end().to_string()
}

/// Runs `f`, turning a panic into an error message.
///
/// candle validates less than it could and panics on some malformed inputs; this is the last line
/// of defence so that a bad model file never takes the caller's process down.
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        format!("internal error while {what}: {message}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_message_names_both_numbers() {
        let err = LocalError::ContextOverflow {
            prompt_tokens: 9000,
            context_window: 4096,
        };
        let text = err.to_string();
        assert!(text.contains("9000") && text.contains("4096"), "{text}");
        assert!(err.hint().is_some());
    }

    #[test]
    fn candle_backtraces_are_dropped() {
        let err = candle_core::Error::Msg(
            "gguf: tensor_count 7 exceeds max\n   0: candle_core::error::Error::bt\n   1: x".into(),
        );
        assert_eq!(candle_message(&err), "gguf: tensor_count 7 exceeds max");
        let plain = candle_core::Error::Msg("two\nlines".into());
        assert_eq!(candle_message(&plain), "two\nlines");
    }

    #[test]
    fn guard_catches_panics() {
        let err = guard("testing", || -> u32 { panic!("boom") }).unwrap_err();
        assert!(err.contains("boom") && err.contains("testing"), "{err}");
        assert_eq!(guard("testing", || 7).unwrap(), 7);
    }

    #[test]
    fn unsupported_lists_supported() {
        let err = LocalError::UnsupportedArchitecture {
            architecture: "mamba".into(),
            supported: vec!["llama", "qwen2"],
        };
        assert!(err.to_string().contains("llama, qwen2"));
    }
}
