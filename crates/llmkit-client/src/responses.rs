//! The Responses API on `HttpClient`: create (whole, streamed, in the background), retrieve,
//! delete, cancel, list input items and count input tokens, with the same headers, retries,
//! error hints and `x-request-id` handling as chat; and chat requests sent over it (the
//! conversion at the backend boundary that lets the pipeline drive either API unchanged).

use std::time::{Duration, Instant};

use llmkit_types::{
    ChatCompletionRequest, ChatCompletionResponse, CreateResponseRequest, DeletedResponse,
    INCLUDE_REASONING_ENCRYPTED, InputTokenCount, ListPage, ReasoningConfig, ResponseItem,
    ResponseObject, ResponseStatus, chat_to_responses, response_to_chat, unsupported_chat_options,
};
use reqwest::Method;
use serde_json::Value;

use crate::capabilities::{Feature, Rejection};
use crate::catalog::ModelCatalog;
use crate::config::WireApi;
use crate::error::ClientError;
use crate::http::{HttpClient, Response, to_body};
use crate::jobs::{checked_id, paged};
use crate::responses_stream::{ResponseStream, ResponseStreamState, failed_error};
use crate::stream::ChatStream;

/// How often a background response sent for a chat request is polled.
const BACKGROUND_POLL: Duration = Duration::from_millis(500);
/// How long an interrupted background response's cancel may take.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// The request fields `POST /responses/input_tokens` takes (its `TokenCountsBody`).
const TOKEN_COUNT_FIELDS: [&str; 10] = [
    "model",
    "input",
    "instructions",
    "previous_response_id",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "truncation",
];

impl HttpClient {
    /// `POST /responses`, non-streamed (any `stream` setting is removed). A request with
    /// `background: true` comes back `queued` at once: poll it with [`Self::wait_response`].
    pub async fn create_response(
        &self,
        req: &CreateResponseRequest,
    ) -> Result<Response<ResponseObject>, ClientError> {
        let mut req = req.clone();
        req.stream = None;
        let body = to_body(&req)?;
        self.execute(
            Method::POST,
            "responses",
            Some(body),
            Some(&req.model),
            "the response",
        )
        .await
    }

    /// `POST /responses` with `stream: true`, as a stream of events. Errors before the first
    /// content event (including a stall) are retried inside the stream.
    pub async fn create_response_stream(
        &self,
        req: &CreateResponseRequest,
    ) -> Result<ResponseStream, ClientError> {
        let mut req = req.clone();
        req.stream = Some(true);
        let body = to_body(&req)?;
        let url = self.url_for("responses", Some(&req.model))?;
        let started = Instant::now();
        let mut attempt = 0;
        let opened = self.open_stream(&url, &body, &mut attempt, started).await?;
        let meta = opened.1.clone();
        let state = ResponseStreamState::new(self.clone(), url, body, opened, attempt, started);
        Ok(ResponseStream::from_http(state, meta))
    }

    /// `GET /responses/{id}`.
    pub async fn retrieve_response(
        &self,
        id: &str,
    ) -> Result<Response<ResponseObject>, ClientError> {
        let path = format!("responses/{}", checked_id(id)?);
        self.execute(Method::GET, &path, None, None, "the response")
            .await
    }

    /// `DELETE /responses/{id}`.
    pub async fn delete_response(
        &self,
        id: &str,
    ) -> Result<Response<DeletedResponse>, ClientError> {
        let path = format!("responses/{}", checked_id(id)?);
        self.execute(Method::DELETE, &path, None, None, "the deletion")
            .await
    }

    /// `POST /responses/{id}/cancel` (background responses only).
    pub async fn cancel_response(&self, id: &str) -> Result<Response<ResponseObject>, ClientError> {
        let path = format!("responses/{}/cancel", checked_id(id)?);
        self.execute(Method::POST, &path, None, None, "the response")
            .await
    }

    /// `GET /responses/{id}/input_items?limit=&after=`.
    pub async fn response_input_items(
        &self,
        id: &str,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Response<ListPage<ResponseItem>>, ClientError> {
        let path = paged(
            &format!("responses/{}/input_items", checked_id(id)?),
            limit,
            after,
        )?;
        self.execute(Method::GET, &path, None, None, "the input items")
            .await
    }

    /// `POST /responses/input_tokens`: what the request's input would cost, counted by the
    /// server (only the fields that endpoint takes are sent).
    pub async fn response_input_tokens(
        &self,
        req: &CreateResponseRequest,
    ) -> Result<Response<InputTokenCount>, ClientError> {
        let mut value = serde_json::to_value(req).map_err(|e| {
            ClientError::InvalidInput(format!("the request cannot be serialised: {e}"))
        })?;
        if let Some(map) = value.as_object_mut() {
            map.retain(|k, _| TOKEN_COUNT_FIELDS.contains(&k.as_str()));
        }
        let body = to_body(&value)?;
        self.execute(
            Method::POST,
            "responses/input_tokens",
            Some(body),
            Some(&req.model),
            "the token count",
        )
        .await
    }

    /// Polls `GET /responses/{id}` every `interval` until the response is no longer queued or
    /// in progress, and returns it (whatever its final status).
    pub async fn wait_response(
        &self,
        id: &str,
        interval: Duration,
    ) -> Result<Response<ResponseObject>, ClientError> {
        loop {
            let r = self.retrieve_response(id).await?;
            if r.body.status.is_terminal() {
                return Ok(r);
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Polls a background response until it is done; when the client's interrupt fires
    /// first, asks the server to cancel it (within [`CANCEL_TIMEOUT`]) and fails with
    /// [`ClientError::Interrupted`].
    async fn wait_or_cancel(&self, id: &str) -> Result<Response<ResponseObject>, ClientError> {
        let Some(token) = self.interrupt().cloned() else {
            return self.wait_response(id, BACKGROUND_POLL).await;
        };
        tokio::select! {
            r = self.wait_response(id, BACKGROUND_POLL) => r,
            () = token.cancelled() => {
                let cancelled = tokio::time::timeout(CANCEL_TIMEOUT, self.cancel_response(id))
                    .await
                    .is_ok_and(|r| r.is_ok());
                Err(ClientError::Interrupted {
                    what: format!("background response {id}"),
                    cancelled,
                })
            }
        }
    }

    /// Whether `chat` and `chat_stream` go over the Responses API for this request.
    pub(crate) fn routes_to_responses(&self, req: &ChatCompletionRequest) -> bool {
        match self.config().api {
            WireApi::Chat => false,
            WireApi::Responses => true,
            WireApi::ChatUnlessResponsesOnly => responses_only(&req.model),
            WireApi::ResponsesOrChat => {
                responses_only(&req.model)
                    || (!self.fell_back() && unsupported_chat_options(req).is_empty())
            }
        }
    }

    /// The Responses request for a chat request, with the configured privacy default
    /// (`store: false` plus encrypted reasoning) and reasoning summary.
    pub fn responses_request_for(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<CreateResponseRequest, ClientError> {
        let unsupported = unsupported_chat_options(req);
        if !unsupported.is_empty() {
            return Err(ClientError::Unsupported {
                what: format!("the Responses API has no `{}`", unsupported.join("`, `")),
                hint: "leave those options out, or send this request with --api chat".into(),
                options: true,
            });
        }
        let opts = &self.config().responses;
        let mut r = chat_to_responses(req);
        // `-o background=true`: background mode needs the response stored to be polled.
        if let Some(Value::Bool(b)) = r.extra.remove("background") {
            r.background = Some(b);
        }
        let store = *r.store.get_or_insert(opts.store || r.is_background());
        if !store {
            r = r.include(INCLUDE_REASONING_ENCRYPTED);
        }
        if let Some(summary) = &opts.reasoning_summary {
            let reasoning = r.reasoning.get_or_insert_with(ReasoningConfig::default);
            if reasoning.summary.is_none() {
                reasoning.summary = Some(summary.clone());
            }
        }
        Ok(r)
    }

    /// A chat request over `POST /responses`, answered in chat's shape. A server without the
    /// endpoint makes a `ResponsesOrChat` client fall back to chat (once, with a notice, and
    /// straight away when the config's `missing_features` says so).
    pub(crate) async fn chat_over_responses(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<Response<ChatCompletionResponse>, ClientError> {
        let rreq = self.responses_request_for(req)?;
        match self.create_response(&rreq).await {
            Ok(mut r) => {
                if !r.body.status.is_terminal() {
                    // A background response: poll it until it is done, or cancel it at the
                    // server when the caller interrupts.
                    r = self.wait_or_cancel(&r.body.id).await?;
                }
                let meta = r.meta;
                let body = settle(r.body, meta.request_id.clone())?;
                Ok(Response {
                    body: response_to_chat(&body),
                    meta,
                })
            }
            Err(e) if self.should_fall_back(&e, &rreq.model) => {
                self.fall_back(&e);
                self.chat_completions(req).await
            }
            Err(e) => Err(self.explain_missing(e, &rreq.model)),
        }
    }

    /// A streamed chat request over `POST /responses`, as chat chunks.
    pub(crate) async fn chat_stream_over_responses(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<ChatStream, ClientError> {
        let rreq = self.responses_request_for(req)?;
        match self.create_response_stream(&rreq).await {
            Ok(s) => Ok(s.into_chat_stream()),
            Err(e) if self.should_fall_back(&e, &rreq.model) => {
                self.fall_back(&e);
                self.chat_stream_completions(req).await
            }
            Err(e) => Err(self.explain_missing(e, &rreq.model)),
        }
    }

    /// A missing endpoint falls back to chat in `ResponsesOrChat` mode, except for a model
    /// that chat does not serve.
    fn should_fall_back(&self, e: &ClientError, model: &str) -> bool {
        self.config().api == WireApi::ResponsesOrChat
            && is_missing_endpoint(e)
            && !responses_only(model)
    }

    /// A missing endpoint, said plainly: which model needed it and what to do.
    fn explain_missing(&self, e: ClientError, model: &str) -> ClientError {
        if !is_missing_endpoint(&e) {
            return e;
        }
        let why = if responses_only(model) {
            format!("`{model}` is served only on the Responses API")
        } else {
            "the Responses API was asked for".to_string()
        };
        ClientError::Unsupported {
            what: format!(
                "{} has no Responses API (POST /responses answered {}), and {why}",
                self.base_url(),
                e.status().unwrap_or(404)
            ),
            hint: if responses_only(model) {
                "use a model this server serves over chat completions, or a server with the Responses API".into()
            } else {
                "use --api chat (or --api auto) with this server".into()
            },
            options: false,
        }
    }

    /// The server has no Responses API: chat completions from now on, with a notice the
    /// first time (the caller's memory keeps it for later runs).
    fn fall_back(&self, e: &ClientError) {
        self.learn(&Rejection {
            feature: Feature::Responses,
            status: e.status().unwrap_or(404),
            message: e
                .api_error()
                .map_or_else(|| "no such endpoint".to_string(), |b| b.message.clone()),
        });
    }
}

/// Whether the built-in catalogue marks `model` as served only on the Responses API.
fn responses_only(model: &str) -> bool {
    ModelCatalog::builtin()
        .get(model)
        .is_some_and(|m| m.responses_only)
}

/// Whether an error says the server has no such endpoint (404 or 405), as opposed to a 404
/// about a model or an id.
pub fn is_missing_endpoint(e: &ClientError) -> bool {
    let e = match e {
        ClientError::RetriesExhausted { last, .. } => last.as_ref(),
        other => other,
    };
    let ClientError::Api { status, error, .. } = e else {
        return false;
    };
    let code = error.as_ref().and_then(|b| b.code_str());
    matches!(status, 404 | 405) && code.as_deref() != Some("model_not_found")
}

/// A finished response, or the error a failed one amounts to.
fn settle(r: ResponseObject, request_id: Option<String>) -> Result<ResponseObject, ClientError> {
    if r.status == ResponseStatus::Failed {
        return Err(failed_error(&r, request_id));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use llmkit_types::{ApiErrorBody, ChatMessage};
    use serde_json::json;

    use super::*;
    use crate::config::{ClientConfig, ResponsesOptions};

    fn api_error(status: u16, code: Option<&str>) -> ClientError {
        ClientError::Api {
            retry_after: None,
            rate_limit: None,
            status,
            error: Some(ApiErrorBody {
                message: "x".into(),
                kind: None,
                param: None,
                code: code.map(|c| json!(c)),
            }),
            request_id: None,
            raw: String::new(),
        }
    }

    #[test]
    fn missing_endpoints_are_told_from_missing_models() {
        assert!(is_missing_endpoint(&api_error(404, None)));
        assert!(is_missing_endpoint(&api_error(405, None)));
        assert!(!is_missing_endpoint(&api_error(
            404,
            Some("model_not_found")
        )));
        assert!(!is_missing_endpoint(&api_error(400, None)));
    }

    #[test]
    fn chat_requests_get_the_privacy_default() {
        let c = HttpClient::new(ClientConfig::new("http://x/v1").api(WireApi::Responses)).unwrap();
        let req = ChatCompletionRequest::new("gpt-5", vec![ChatMessage::user("hi")]);
        let r = c.responses_request_for(&req).unwrap();
        assert_eq!(r.store, Some(false));
        assert_eq!(
            r.include,
            Some(vec![INCLUDE_REASONING_ENCRYPTED.to_string()])
        );
        let c = HttpClient::new(
            ClientConfig::new("http://x/v1")
                .api(WireApi::Responses)
                .responses_options(ResponsesOptions {
                    store: true,
                    reasoning_summary: Some("auto".into()),
                }),
        )
        .unwrap();
        let r = c.responses_request_for(&req).unwrap();
        assert_eq!((r.store, r.include), (Some(true), None));
        assert_eq!(r.reasoning.unwrap().summary.as_deref(), Some("auto"));
        let e = c
            .responses_request_for(&req.clone().stop(vec!["x".into()]))
            .unwrap_err();
        assert!(e.to_string().contains("stop"), "{e}");
        assert!(c.routes_to_responses(&req));
        let either =
            HttpClient::new(ClientConfig::new("http://x/v1").api(WireApi::ResponsesOrChat))
                .unwrap();
        assert!(either.routes_to_responses(&req));
        assert!(!either.routes_to_responses(&req.clone().n(2)));
    }
}
