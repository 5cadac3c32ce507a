//! llmkit-client: the one place in llmkit that talks to model backends.
//!
//! - [`HttpClient`] speaks to OpenAI and compatible servers (vLLM, llama.cpp, Azure OpenAI):
//!   headers, timeouts, retries with backoff, `x-ratelimit-*` parsing, SSE streaming with a
//!   stall timeout and transparent retry before the first token.
//!   The Responses API (`create_response`, streamed, background, retrieve, cancel, ...) is
//!   on it too, and `ClientConfig::api` sends `chat`/`chat_stream` over it.
//! - [`Backend`] puts the embedded local model (feature `local`) behind the same methods, and
//!   [`Pool`] several upstreams of one model (balanced, with fallback before the first byte).
//! - [`count_tokens`] and [`count_chat_tokens`] count tokens with tiktoken; [`ModelCatalog`]
//!   knows context windows and prices.
//!
//! Libraries never read the environment or files: the CLI builds a [`ClientConfig`].

// `ClientError` keeps the OpenAI error body inline, as callers match on it; errors are rare
// and never on a hot path, so its size does not matter.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

mod answer;
mod backend;
mod capabilities;
mod catalog;
mod config;
mod download;
mod error;
mod gate;
mod http;
mod image_tokens;
mod jobs;
#[cfg(feature = "local")]
mod local;
#[cfg(feature = "local")]
mod local_tools;
mod organization;
mod pipeline;
mod pool;
mod ratelimit;
mod responses;
mod responses_stream;
mod retry;
pub mod sse;
mod stream;
mod tokens;

pub use backend::Backend;
pub use capabilities::{CapabilityMemory, Feature, Rejection, schema_instruction};
pub use catalog::{Modality, ModelCatalog, ModelInfo, training_price_per_mtok};
pub use config::{
    AzureConfig, ClientConfig, NoticeFn, ResponsesOptions, RetryPolicy, Timeouts, WireApi,
};
pub use download::download_file;
pub use error::{BoxError, ClientError};
pub use gate::{Attempt, Gate};
pub use http::{HttpClient, Response, ResponseMeta, USER_AGENT, install_crypto_provider};
pub use image_tokens::{data_uri_image_size, image_size, image_tokens};
#[cfg(feature = "local")]
pub use local::LocalBackend;
pub use pipeline::{
    Accounting, ChatResult, Outcome, Pipeline, PipelineStream, Redact, RequestInfo, Restore,
};
pub use pool::{Balance, FAILURE_PENALTY, Pool, PoolObserver};
pub use ratelimit::{RateLimitInfo, parse_duration};
pub use responses::is_missing_endpoint;
pub use responses_stream::ResponseStream;
pub use retry::MAX_SERVER_DELAY;
pub use stream::ChatStream;
pub use tokens::{Encoding, count_chat_tokens, count_tokens, encoding_for_model};

pub use secrecy::{ExposeSecret, SecretString};
