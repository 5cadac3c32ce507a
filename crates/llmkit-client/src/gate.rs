//! The pipeline's scheduling hook: a [`Gate`] wraps each backend call of a whole chat
//! request (rate limits before it, the decision to retry after it), so a caller such as the
//! batch runner can throttle and retry the requests that library code (the tasks) sends.

use std::future::Future;
use std::pin::Pin;

use llmkit_types::{ChatCompletionRequest, ChatCompletionResponse};

use crate::error::ClientError;
use crate::http::Response;

/// One attempt at the backend, or the gate's final result.
pub type Attempt<'a> = Pin<
    Box<dyn Future<Output = Result<Response<ChatCompletionResponse>, ClientError>> + Send + 'a>,
>;

/// Sends a request under the caller's limits.
pub trait Gate: Send + Sync {
    /// Sends `req` by calling `send` once per attempt, waiting for admission before each and
    /// deciding after each whether to try again; returns the last attempt's result. The
    /// pipeline's cache, budget and ledger steps run once around the whole call.
    fn call<'a>(
        &'a self,
        req: &'a ChatCompletionRequest,
        send: &'a (dyn Fn() -> Attempt<'a> + Send + Sync),
    ) -> Attempt<'a>;
}
