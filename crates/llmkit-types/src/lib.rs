//! OpenAI wire types (chat, the Responses API, legacy completions, embeddings, models,
//! errors, files, batches, fine-tuning jobs, the organisation usage and cost reports):
//! serde only, no IO.
//!
//! Decoding is lenient: enum-like strings that a compatible server invents decode into an
//! `Other(String)` variant, and missing optional fields default. Request types keep unknown
//! fields in `extra`, so a request passes through llmkit untouched.

mod chat;
#[macro_use]
mod common;
mod completions;
mod embeddings;
mod error;
mod jobs;
mod models;
mod organization;
mod response;
mod responses;
mod responses_convert;
mod responses_object;
mod responses_stream;

pub use chat::{
    ChatCompletionRequest, ChatMessage, ContentPart, FileInput, FunctionCall, FunctionDef,
    ImageDetail, ImageUrl, InputAudio, JsonSchemaFormat, MessageContent, NamedFunction,
    NamedToolChoice, ResponseFormat, Stop, StreamOptions, Tool, ToolCall, ToolChoice,
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
pub use organization::{
    CostAmount, CostsResult, DAY_SECS, UsageBucket, UsageCompletionsResult, UsagePage, UsageQuery,
};
pub use response::{
    ChatCompletionChunk, ChatCompletionResponse, Choice, ChunkAccumulator, ChunkChoice, Delta,
    FunctionCallDelta, ResponseMessage, ToolCallDelta,
};
pub use responses::{
    ContentItem, CreateResponseRequest, FunctionCallItem, FunctionCallOutputItem, FunctionTool,
    INCLUDE_REASONING_ENCRYPTED, ItemContent, MessageItem, NamedFunctionChoice, ReasoningConfig,
    ReasoningItem, ResponseInput, ResponseItem, ResponseTool, ResponseToolChoice, SummaryPart,
    TextConfig, TextFormat,
};
pub use responses_convert::{
    ChunkTranslator, MIN_OUTPUT_TOKENS, REASONING_FIELD, REASONING_ITEMS_FIELD, chat_to_responses,
    response_to_chat, unsupported_chat_options,
};
pub use responses_object::{
    DeletedResponse, IncompleteDetails, InputTokenCount, InputTokensDetails, OutputTokensDetails,
    ResponseError, ResponseObject, ResponseStatus, ResponseUsage,
};
pub use responses_stream::{ResponseAccumulator, ResponseStreamEvent};
