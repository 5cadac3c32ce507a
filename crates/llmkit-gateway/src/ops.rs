//! The routes beside the model API (`/metrics`, `/healthz`, `/readyz`, the 404 and 405
//! fallbacks) and `observe`, the middleware that counts every API request into the metrics.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api_error::ApiError;
use crate::state::AppState;

/// The key id and model of the request being answered, filled in by the handler as it
/// learns them, for the metrics ("-" until known).
#[derive(Clone, Default)]
pub(crate) struct Labels(Arc<Mutex<(Option<String>, Option<String>)>>);

impl Labels {
    pub(crate) fn set(&self, key: Option<&str>, model: Option<&str>) {
        let mut l = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = key {
            l.0 = Some(k.to_string());
        }
        if let Some(m) = model {
            l.1 = Some(m.to_string());
        }
    }

    pub(crate) fn get(&self) -> (String, String) {
        let l = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        (or_dash(&l.0), or_dash(&l.1))
    }
}

/// A refusal by the gateway itself, marked on the response for the metrics.
#[derive(Clone, Copy)]
pub(crate) struct Refused(pub(crate) &'static str);

/// Counts every API request into the metrics: status, time to the response head, and the
/// gateway's own refusals.
pub(crate) async fn observe(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let labels = Labels::default();
    req.extensions_mut().insert(labels.clone());
    let resp = next.run(req).await;
    let (key, model) = labels.get();
    if let Some(Refused(reason)) = resp.extensions().get::<Refused>() {
        s.metrics.refusal(&key, reason);
    }
    s.metrics
        .request(&key, &model, resp.status().as_u16(), started.elapsed());
    resp
}

/// Prometheus text exposition (no key: it names key ids and models, never secrets).
pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

pub(crate) async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// Ready when the store answers (the keys and the ledger live there). With shared state it
/// reports PostgreSQL, Redis and the ledger spool, and is 503 while PostgreSQL is down.
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    if let Some(c) = &s.cluster {
        let (ready, body) = c.readiness().await;
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return (status, axum::Json(body)).into_response();
    }
    match s.store.schema_version() {
        Ok(_) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "The gateway's store is unavailable.",
        )
        .into_response(),
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "Unknown route.",
    )
    .code("unknown_url")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "This route does not accept that method.",
    )
}
