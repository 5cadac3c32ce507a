//! The embedded local model: GGUF chat models run on the CPU, with the model's own tokenizer and
//! chat template, by llmkit's own engine (`native/`, multiplying with the quantized kernels in
//! `kernels/`) or, for files it does not run, by candle's models; and MiniLM sentence embeddings
//! with candle (`embed.rs`). The only llmkit crate with ML dependencies; it never touches the
//! network.
//!
//! The only crate with `unsafe` code, each block with a `SAFETY` comment and each `unsafe fn`
//! with a `# Safety` section (both lints denied below): SIMD intrinsics in `kernels/` (`x86.rs`
//! and the calls into it from `kernels/mod.rs`), and memory maps in `gguf.rs` and `embed.rs`.
//!
//! ```no_run
//! use llmkit_local::{ChatTurn, GenerateRequest, LoadOptions, LocalModel};
//! # fn main() -> Result<(), llmkit_local::LocalError> {
//! let path = llmkit_local::resolve_model_path("smollm2-135m", "models".as_ref())?;
//! let model = LocalModel::load(&path, &LoadOptions::default())?;
//! let req = GenerateRequest {
//!     messages: vec![ChatTurn::user("What is the capital of France?")],
//!     temperature: Some(0.0),
//!     ..Default::default()
//! };
//! let out = model.generate(&req, &mut |piece| {
//!     print!("{piece}");
//!     true
//! })?;
//! println!("\n[{} + {} tokens]", out.prompt_tokens, out.completion_tokens);
//! # Ok(())
//! # }
//! ```

#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod batcher;
mod catalog;
mod constrain;
pub mod embed;
mod error;
mod generate;
mod gguf;
mod kernels;
mod model;
mod native;
mod prefix_cache;
mod requant;
mod sampler;
mod template;
mod tokenizer;

pub use batcher::{BatchStats, KvCache};
pub use catalog::{
    DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL, HubFile, KNOWN_MODELS, KnownModel, ModelKind,
    ModelSource, find_known_model, resolve_model_path,
};
pub use constrain::JsonConstraint;
pub use embed::{EmbedError, Embedder, Embeddings, cosine};
pub use error::LocalError;
pub use generate::{
    DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P, FinishReason, GenerateOutput,
    GenerateRequest, SUPPORTED_ARCHITECTURES,
};
#[cfg(feature = "fuzzing")]
pub use gguf::fuzz_gguf;
pub use model::{LoadOptions, LocalModel, NoticeFn, convert_to_q8_0};
pub use prefix_cache::KvCacheStats;
pub use template::{ChatTurn, DEFAULT_SYSTEM_PROMPT};
