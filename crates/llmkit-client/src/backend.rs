//! `Backend`: one interface over an HTTP server and the embedded local model.

use llmkit_types::{
    ChatCompletionRequest, ChatCompletionResponse, ChatMessage, CompletionRequest,
    CompletionResponse, EmbeddingRequest, EmbeddingResponse, ModelList,
};

use crate::error::ClientError;
use crate::http::{HttpClient, Response};
#[cfg(feature = "local")]
use crate::local::LocalBackend;
use crate::pool::Pool;
use crate::stream::ChatStream;

/// A model backend. Both kinds answer with the same OpenAI-shaped types, so callers (and
/// the CLI's `--json` output) do not care which one served a request.
#[derive(Debug, Clone)]
pub enum Backend {
    Http(HttpClient),
    /// Several upstreams for one model, balanced, with fallback (the gateway's routes).
    Pool(Pool),
    #[cfg(feature = "local")]
    Local(LocalBackend),
}

impl Backend {
    /// `"http"` or `"local"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Pool(p) => p.kind(),
            #[cfg(feature = "local")]
            Self::Local(_) => "local",
        }
    }

    /// The backend with its HTTP client's background responses cancelled at the server
    /// when `token` is (see [`HttpClient::with_interrupt`]); other backends as they are.
    pub fn with_interrupt(self, token: tokio_util::sync::CancellationToken) -> Self {
        match self {
            Self::Http(c) => Self::Http(c.with_interrupt(token)),
            other => other,
        }
    }

    /// The name of the upstream that served the last request of a traced pool (see
    /// [`Backend::traced`]); `None` for a single backend.
    pub fn served_by(&self) -> Option<String> {
        match self {
            Self::Pool(p) => p.served_by(),
            _ => None,
        }
    }

    /// This backend for one request: a pool that remembers which upstream served it
    /// ([`Pool::traced`]), anything else as it is.
    #[must_use]
    pub fn traced(&self) -> Self {
        match self {
            Self::Pool(p) => Self::Pool(p.traced()),
            other => other.clone(),
        }
    }

    /// A short description for messages: the base URL, or `local:<model>`.
    pub fn name(&self) -> String {
        match self {
            Self::Http(c) => c.base_url(),
            Self::Pool(p) => p.name(),
            #[cfg(feature = "local")]
            Self::Local(l) => l.name(),
        }
    }

    /// The context window the backend itself knows: the local model's (from its GGUF);
    /// `None` for HTTP servers, whose windows come from the model catalogue.
    pub fn context_window(&self) -> Option<u32> {
        match self {
            Self::Http(_) | Self::Pool(_) => None,
            #[cfg(feature = "local")]
            Self::Local(l) => l.context_window(),
        }
    }

    /// Prompt tokens of a chat as `model` on this backend counts them: the local model's own
    /// tokenizer and template, or the OpenAI encoding for the model name.
    pub fn count_chat_tokens(&self, model: &str, messages: &[ChatMessage]) -> usize {
        #[cfg(feature = "local")]
        if let Self::Local(l) = self
            && let Some(n) = l.count_chat_tokens(messages)
        {
            return n;
        }
        crate::tokens::count_chat_tokens(model, messages)
    }

    pub async fn chat(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<Response<ChatCompletionResponse>, ClientError> {
        match self {
            Self::Http(c) => c.chat(req).await,
            Self::Pool(p) => p.chat(req).await,
            #[cfg(feature = "local")]
            Self::Local(l) => l.chat(req).await,
        }
    }

    pub async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<ChatStream, ClientError> {
        match self {
            Self::Http(c) => c.chat_stream(req).await,
            Self::Pool(p) => p.chat_stream(req).await,
            #[cfg(feature = "local")]
            Self::Local(l) => l.chat_stream(req).await,
        }
    }

    pub async fn completions(
        &self,
        req: &CompletionRequest,
    ) -> Result<Response<CompletionResponse>, ClientError> {
        match self {
            Self::Http(c) => c.completions(req).await,
            Self::Pool(p) => p.completions(req).await,
            #[cfg(feature = "local")]
            Self::Local(l) => l.completions(req).await,
        }
    }

    pub async fn embeddings(
        &self,
        req: &EmbeddingRequest,
    ) -> Result<Response<EmbeddingResponse>, ClientError> {
        match self {
            Self::Http(c) => c.embeddings(req).await,
            Self::Pool(p) => p.embeddings(req).await,
            #[cfg(feature = "local")]
            Self::Local(l) => l.embeddings(req).await,
        }
    }

    pub async fn models(&self) -> Result<Response<ModelList>, ClientError> {
        match self {
            Self::Http(c) => c.models().await,
            Self::Pool(p) => p.models().await,
            #[cfg(feature = "local")]
            Self::Local(l) => l.models().await,
        }
    }
}

impl From<HttpClient> for Backend {
    fn from(c: HttpClient) -> Self {
        Self::Http(c)
    }
}

impl From<Pool> for Backend {
    fn from(p: Pool) -> Self {
        Self::Pool(p)
    }
}

#[cfg(feature = "local")]
impl From<LocalBackend> for Backend {
    fn from(l: LocalBackend) -> Self {
        Self::Local(l)
    }
}
