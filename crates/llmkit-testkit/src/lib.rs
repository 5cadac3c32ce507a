//! llmkit-mock: a deterministic fake OpenAI-compatible server for llmkit's tests and benchmarks.
//!
//! It answers `/v1/chat/completions` and `/v1/responses` (streamed or not; stored responses
//! for `previous_response_id`, background mode, cancel, input items, `input_tokens`),
//! `/v1/completions`, `/v1/embeddings`,
//! `/v1/models`, `/v1/files`, `/v1/batches`, `/v1/fine_tuning/jobs`, and the organisation
//! reports `/v1/organization/costs` and `/v1/organization/usage/completions`, built from what
//! it served (with planted drift and an unknown model on request) (chat, completions and embeddings also under Azure
//! deployment paths) with replies derived only from the request: the last user message is echoed,
//! `MOCK_REPLY: text` scripts the reply, and `json_schema` requests get a schema-valid instance.
//! It can demand an API key, enforce RPM/TPM limits, add latency, pace streams, and inject seeded
//! faults (`x-mock-fault: KIND` forces one on a request), and behave like a compatible server
//! without the Responses API, `json_schema`, `stream_options` or `tools`.
//! It is a test tool, never a backend offered to users.
//!
//! Beside the server, the shared test support of the workspace: [`fixtures`] finds the local
//! model files (and fails instead of skipping when a run requires them), [`rng`] is the one
//! seeded generator for test data.

mod attachments;
mod batches;
mod capabilities;
mod chat;
mod completions;
mod config;
mod conn;
mod embeddings;
mod errors;
mod faults;
mod finetune;
pub mod fixtures;
mod log;
mod models;
mod multipart;
mod org;
mod prompt_cache;
mod proxy;
mod ratelimit;
mod reply;
mod response;
mod responses;
mod responses_reply;
pub mod rng;
mod schema_instance;
mod served;
mod server;
mod tokens;
mod tool_script;

pub use config::{Fault, FaultParseError, MockConfig, OrgConfig};
pub use embeddings::embed;
pub use models::MODELS;
pub use proxy::{TcpProxy, host_port};
pub use reply::MOCK_REPLY;
pub use responses_reply::MOCK_TURNS;
pub use schema_instance::schema_instance;
pub use server::{FORCE_FAULT_HEADER, MockServer};
pub use tool_script::MOCK_TOOLS;
