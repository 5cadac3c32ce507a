//! Client settings as plain structs: base URL, key, Azure mode, headers, timeouts, retry policy.
//!
//! Nothing here reads the environment or a file: the CLI resolves its settings and passes
//! a finished [`ClientConfig`] down.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::capabilities::{CapabilityMemory, Feature};

/// Everything an [`crate::HttpClient`] needs to reach one OpenAI-compatible server.
///
/// `Debug` never prints the API key, nor the value of an extra header whose name looks like
/// a credential.
#[derive(Clone)]
pub struct ClientConfig {
    /// Bearer key (`api-key` header in Azure mode). `None` is fine for servers that need none.
    pub api_key: Option<SecretString>,
    /// Base URL including the version path, e.g. `https://api.openai.com/v1`. In Azure mode
    /// the resource endpoint, e.g. `https://NAME.openai.azure.com`.
    pub base_url: String,
    /// Sent as `OpenAI-Organization`.
    pub organization: Option<String>,
    /// Sent as `OpenAI-Project`.
    pub project: Option<String>,
    /// Azure OpenAI URL and auth scheme, when set.
    pub azure: Option<AzureConfig>,
    /// Extra headers sent with every request.
    pub extra_headers: Vec<(String, String)>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// Which API `chat` and `chat_stream` speak: Chat Completions (the default) or the
    /// Responses API, with or without falling back to chat on a server that lacks it.
    pub api: WireApi,
    /// How chat requests are sent over the Responses API.
    pub responses: ResponsesOptions,
    /// Receives one-line notices the user should see (a fallback from Responses to chat);
    /// libraries never print, so without it they are dropped.
    pub notice: Option<NoticeFn>,
    /// Fall back when the server rejects a feature some compatible servers lack
    /// (`json_schema` → `json_object` with the schema in the instructions, `stream_options`
    /// → a stream without it), and turn a rejected `tools` into a clear error. Off by
    /// default: a caller that passes answers on unchecked (a gateway) keeps the server's error.
    pub fallbacks: bool,
    /// Features the caller already knows this server lacks (remembered from earlier runs):
    /// their fallback is sent at once. `Feature::Responses` also applies without `fallbacks`
    /// (to `WireApi::ResponsesOrChat`).
    pub missing_features: Vec<Feature>,
    /// Where the features this client learns its server lacks are kept.
    pub capability_memory: Option<Arc<dyn CapabilityMemory>>,
}

/// A callback for notices.
pub type NoticeFn = Arc<dyn Fn(&str) + Send + Sync>;

/// The API that chat requests go to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WireApi {
    /// `POST /chat/completions`.
    #[default]
    Chat,
    /// `POST /responses`; a server without it is an error.
    Responses,
    /// Chat completions, except for models the built-in catalogue marks Responses-only
    /// (the `-pro` and deep-research models), which go to `POST /responses`.
    ChatUnlessResponsesOnly,
    /// `POST /responses`, and once a server answers that it has no such endpoint (404 or
    /// 405, not a missing model), chat completions from then on, with a notice. Requests
    /// with options only chat has (`n > 1`, `stop`, `seed`, penalties, `logit_bias`) go to
    /// chat directly.
    ResponsesOrChat,
}

/// How a chat request is sent over the Responses API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponsesOptions {
    /// `store` when the request does not set it. `false` (the default) keeps nothing at the
    /// provider and asks for `reasoning.encrypted_content` instead.
    pub store: bool,
    /// `reasoning.summary` (`auto`, `concise`, `detailed`) to ask for a reasoning summary.
    pub reasoning_summary: Option<String>,
}

impl ClientConfig {
    /// A config for `base_url` with no key, default timeouts and retries.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            api_key: None,
            base_url: base_url.into(),
            organization: None,
            project: None,
            azure: None,
            extra_headers: Vec::new(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            api: WireApi::Chat,
            responses: ResponsesOptions::default(),
            notice: None,
            fallbacks: false,
            missing_features: Vec::new(),
            capability_memory: None,
        }
    }

    /// Turns the capability fallbacks on (see [`ClientConfig::fallbacks`]), with the features
    /// the server is already known to lack.
    pub fn fallbacks(mut self, missing: Vec<Feature>) -> Self {
        self.fallbacks = true;
        self.missing_features = missing;
        self
    }

    pub fn capability_memory(mut self, memory: Arc<dyn CapabilityMemory>) -> Self {
        self.capability_memory = Some(memory);
        self
    }

    pub fn api(mut self, api: WireApi) -> Self {
        self.api = api;
        self
    }

    pub fn responses_options(mut self, options: ResponsesOptions) -> Self {
        self.responses = options;
        self
    }

    pub fn notice(mut self, notice: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.notice = Some(Arc::new(notice));
        self
    }

    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    pub fn api_key_secret(mut self, key: Option<SecretString>) -> Self {
        self.api_key = key;
        self
    }

    pub fn organization(mut self, org: impl Into<String>) -> Self {
        self.organization = Some(org.into());
        self
    }

    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    pub fn azure(mut self, azure: AzureConfig) -> Self {
        self.azure = Some(azure);
        self
    }

    /// Adds one extra header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_headers.push((name.into(), value.into()));
        self
    }

    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.timeouts.connect = d;
        self
    }

    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.timeouts.request = d;
        self
    }

    pub fn stall_timeout(mut self, d: Duration) -> Self {
        self.timeouts.stall = d;
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn max_retries(mut self, n: u32) -> Self {
        self.retry.max_retries = n;
        self
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .extra_headers
            .iter()
            .map(|(k, v)| {
                let shown = if is_sensitive_header(k) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("ClientConfig")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &redact_url(&self.base_url))
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("azure", &self.azure)
            .field("extra_headers", &headers)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("api", &self.api)
            .field("responses", &self.responses)
            .field("notice", &self.notice.as_ref().map(|_| "callback"))
            .field("fallbacks", &self.fallbacks)
            .field("missing_features", &self.missing_features)
            .field(
                "capability_memory",
                &self.capability_memory.as_ref().map(|_| "memory"),
            )
            .finish()
    }
}

/// Azure OpenAI mode: URL `{base_url}/openai/deployments/{deployment}/{path}?api-version=..`
/// and the key in an `api-key` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureConfig {
    pub api_version: String,
    /// `None` uses the request's `model` as the deployment name.
    pub deployment: Option<String>,
}

impl AzureConfig {
    pub fn new(api_version: impl Into<String>) -> Self {
        Self {
            api_version: api_version.into(),
            deployment: None,
        }
    }

    pub fn deployment(mut self, deployment: impl Into<String>) -> Self {
        self.deployment = Some(deployment.into());
        self
    }
}

/// Time limits of one request attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connection setup (default 10 s).
    pub connect: Duration,
    /// A whole attempt, headers and body (default 600 s, as in OpenAI's SDKs).
    pub request: Duration,
    /// Longest silence allowed while a response body is arriving (default 30 s).
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(600),
            stall: Duration::from_secs(30),
        }
    }
}

/// How failed attempts are retried (see `retry.rs` for which failures qualify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 2, as in OpenAI's SDKs).
    pub max_retries: u32,
    /// Delay before the first retry, doubled each time (default 500 ms).
    pub initial_backoff: Duration,
    /// Cap of the computed delay (default 8 s).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// Whether a header carries a credential and must not be shown.
pub(crate) fn is_sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "proxy-authorization"
        || n.contains("api-key")
        || n.contains("apikey")
        || n.contains("token")
        || n.contains("secret")
        || n == "cookie"
}

/// The URL with any `user:password@` part replaced, for messages and Debug output.
pub(crate) fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            // Both setters only fail for URLs that cannot have credentials at all.
            let _ = u.set_username("redacted");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_key_and_credential_headers() {
        let cfg = ClientConfig::new("https://user:pw@example.test/v1")
            .api_key("sk-very-secret-123")
            .header("X-Api-Key", "hdr-secret-456")
            .header("X-Trace", "visible");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("sk-very-secret-123"), "{shown}");
        assert!(!shown.contains("hdr-secret-456"), "{shown}");
        assert!(!shown.contains("pw@"), "{shown}");
        assert!(shown.contains("visible"));
    }

    #[test]
    fn defaults_match_openai_sdks() {
        let cfg = ClientConfig::new("http://localhost:8000/v1");
        assert_eq!(cfg.retry.max_retries, 2);
        assert_eq!(cfg.timeouts.stall, Duration::from_secs(30));
        assert_eq!(cfg.timeouts.request, Duration::from_secs(600));
    }
}
