//! llmkit-tasks: the NLP tasks, prompts, chunking, structured output and privacy redaction.
//!
//! Every task takes a [`TaskRunner`]: the request pipeline (so redaction, cache, budgets and
//! the ledger apply), a prototype request carrying the model and sampling settings, the
//! context window and a token counter. The library never reads the environment, argv or
//! config files: the CLI passes in everything, including the user template directory.

pub mod attachment;
mod chunk;
pub mod conversation;
mod error;
mod postprocess;
mod preprocess;
pub mod redact;
mod runner;
mod structured;
mod tasks;
mod templates;

pub use attachment::{Attachment, AttachmentError};
pub use chunk::{TokenCounter, chunk_text};
pub use error::TaskError;
pub use postprocess::{OutputFormat, extract_json, format_value, strip_code_fences};
pub use preprocess::{html_to_text, looks_like_html, normalize, prepare};
pub use redact::{Detection, Kind, PlaceholderMap, RedactConfig, RedactError, Redactor};
pub use runner::{ChatStep, Progress, RunStats, StructuredMode, TaskRunner};
pub use structured::{check_schema, strict_schema, validate};
pub use tasks::classify::{
    Classification, ClassifyOptions, LabelScore, Sentiment, classify, sentiment, sentiment_schema,
};
pub use tasks::extract::extract;
pub use tasks::qa::{Answer, NOT_FOUND, answer_schema, qa};
pub use tasks::summarize::{Length, SummarizeOptions, SummaryFormat, summarize};
pub use tasks::translate::{Glossary, TranslateOptions, Translation, translate};
pub use tasks::write::write;
pub use templates::{TemplateInfo, TemplateSource, Templates, to_minijinja};
