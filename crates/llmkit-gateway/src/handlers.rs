//! The model routes: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` and
//! `/v1/models`, and what each does first (the key, the JSON body, the model's scope).

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use llmkit_store::VirtualKey;
use llmkit_types::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};

use crate::admission::{admit_limits, chat_tokens, completion_tokens, embedding_tokens};
use crate::api_error::ApiError;
use crate::ops::Labels;
use crate::overhead::with_overhead;
use crate::state::AppState;
use crate::stream::stream_chat;

pub(crate) async fn models(
    State(s): State<AppState>,
    Extension(labels): Extension<Labels>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let key = s.authorize(&headers).await?;
    labels.set(Some(&key.id), None);
    let resp = s
        .backend
        .models()
        .await
        .map_err(|e| ApiError::upstream(&e))?;
    let mut list = resp.body;
    // Routed models are served whether or not the default upstream lists them.
    let mut routed: Vec<&String> = s.routes.keys().collect();
    routed.sort();
    for model in routed {
        if !list.data.iter().any(|m| &m.id == model) {
            list.data.push(llmkit_types::Model {
                id: model.clone(),
                object: "model".to_string(),
                owned_by: "llmkit".to_string(),
                ..llmkit_types::Model::default()
            });
        }
    }
    list.data.retain(|m| key.allows(&m.id));
    Ok(with_overhead(
        axum::Json(list).into_response(),
        started,
        resp.meta.latency,
    ))
}

pub(crate) async fn chat(
    State(s): State<AppState>,
    Extension(labels): Extension<Labels>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (key, req): (_, ChatCompletionRequest) =
        admit(&s, &labels, &headers, body, |r: &ChatCompletionRequest| {
            r.model.as_str()
        })
        .await?;
    let default_output = s.accounting.default_output_estimate;
    let admission = admit_limits(&s.limiter, &key, || chat_tokens(&req, default_output)).await?;
    let pipeline = s.pipeline(&key, &admission, &req.model);
    if req.is_stream() {
        return admission.stamp(stream_chat(&pipeline, req, started).await);
    }
    let answer = async {
        let result = pipeline
            .chat(&req)
            .await
            .map_err(|e| ApiError::from_client(&e))?;
        let resp = axum::Json(&result.response).into_response();
        let mut resp = with_overhead(resp, started, result.meta.latency);
        let cache = if result.cache_hit { "hit" } else { "miss" };
        resp.headers_mut()
            .insert("x-llmkit-cache", HeaderValue::from_static(cache));
        Ok::<_, ApiError>(resp)
    };
    admission.stamp(answer.await)
}

/// A legacy completion, whole: the client has no streamed completions, so `stream: true`
/// is refused with 400 rather than answered as one block the caller did not ask for.
pub(crate) async fn completions(
    State(s): State<AppState>,
    Extension(labels): Extension<Labels>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (key, req): (_, CompletionRequest) =
        admit(&s, &labels, &headers, body, |r: &CompletionRequest| {
            r.model.as_str()
        })
        .await?;
    if req.stream == Some(true) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "This gateway does not stream /v1/completions; send `stream: false`, or use /v1/chat/completions to stream.",
        )
        .param("stream"));
    }
    let default_output = s.accounting.default_output_estimate;
    let admission =
        admit_limits(&s.limiter, &key, || completion_tokens(&req, default_output)).await?;
    let answer = async {
        let resp = s
            .pipeline(&key, &admission, &req.model)
            .completions(&req)
            .await
            .map_err(|e| ApiError::from_client(&e))?;
        Ok::<_, ApiError>(with_overhead(
            axum::Json(&resp.body).into_response(),
            started,
            resp.meta.latency,
        ))
    };
    admission.stamp(answer.await)
}

pub(crate) async fn embeddings(
    State(s): State<AppState>,
    Extension(labels): Extension<Labels>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (key, req): (_, EmbeddingRequest) =
        admit(&s, &labels, &headers, body, |r: &EmbeddingRequest| {
            r.model.as_str()
        })
        .await?;
    let admission = admit_limits(&s.limiter, &key, || embedding_tokens(&req)).await?;
    let answer = async {
        let resp = s
            .pipeline(&key, &admission, &req.model)
            .embeddings(&req)
            .await
            .map_err(|e| ApiError::from_client(&e))?;
        Ok::<_, ApiError>(with_overhead(
            axum::Json(&resp.body).into_response(),
            started,
            resp.meta.latency,
        ))
    };
    admission.stamp(answer.await)
}

/// What every model route does first: the key is checked, the body parsed, the metrics
/// labelled, and the model held against the key's scope.
async fn admit<T: serde::de::DeserializeOwned>(
    s: &AppState,
    labels: &Labels,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    model_of: impl Fn(&T) -> &str,
) -> Result<(VirtualKey, T), ApiError> {
    let key = s.authorize(headers).await?;
    labels.set(Some(&key.id), None);
    let req: T = parse_json(headers, body)?;
    let model = model_of(&req);
    labels.set(None, Some(model));
    if !key.allows(model) {
        return Err(ApiError::model_not_allowed(model));
    }
    Ok((key, req))
}
/// Decodes a JSON body, with OpenAI's statuses: 413 over the limit, 400 otherwise.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "The request body is larger than this gateway accepts.",
            )
            .code("request_too_large")
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "The request body could not be read.",
            )
        }
    })?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "The request's Content-Type must be application/json.",
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("The request body is not valid JSON for this endpoint: {e}"),
        )
    })
}
