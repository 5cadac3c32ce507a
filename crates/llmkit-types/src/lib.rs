//! OpenAI wire types (chat, legacy completions, embeddings, models, errors, files, batches,
//! fine-tuning jobs): serde only, no IO.
//!
//! Decoding is lenient: enum-like strings that a compatible server invents decode into an
//! `Other(String)` variant, and missing optional fields default. Request types keep unknown
//! fields in `extra`, so a request passes through llmkit untouched.

mod chat;
mod common;
mod completions;
mod embeddings;
mod error;
mod jobs;
mod models;
mod response;

pub use chat::{
    ChatCompletionRequest, ChatMessage, ContentPart, FunctionCall, FunctionDef, ImageDetail,
    ImageUrl, InputAudio, JsonSchemaFormat, MessageContent, NamedFunction, NamedToolChoice,
    ResponseFormat, Stop, StreamOptions, Tool, ToolCall, ToolChoice,
};
pub use common::{
    CompletionTokensDetails, FinishReason, PromptTokensDetails, Role, ServiceTier, Usage,
};
pub use completions::{CompletionChoice, CompletionRequest, CompletionResponse, Prompt};
pub use embeddings::{
    Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector,
};
pub use error::{ApiErrorBody, ErrorResponse};
pub use jobs::{
    Batch, BatchErrorItem, BatchErrors, BatchRequestCounts, CreateBatchRequest,
    CreateFineTuningJobRequest, FileObject, FineTuningCheckpoint, FineTuningEvent, FineTuningJob,
    FineTuningJobError, Hyperparameters, ListPage,
};
pub use models::{Model, ModelList};
pub use response::{
    ChatCompletionChunk, ChatCompletionResponse, Choice, ChunkAccumulator, ChunkChoice, Delta,
    FunctionCallDelta, ResponseMessage, ToolCallDelta,
};
