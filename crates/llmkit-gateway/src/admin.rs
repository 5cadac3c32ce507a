//! The admin API behind the master key: `/admin/keys` (list, create, revoke, rotate),
//! `/admin/spend` and `/admin/errors`, as JSON with OpenAI-shaped errors. Only mounted when
//! a master key is configured; a virtual key is refused here with 403.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use llmkit_store::{LedgerRow, UsageRow, VirtualKey, now_secs};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::error::GatewayError;
use crate::handlers::parse_json;
use crate::keys::{NewKey, constant_time_eq, hash, parse_lifetime};
use crate::state::AppState;

/// The most days `/admin/spend` sums and rows `/admin/errors` returns.
const MAX_DAYS: u32 = 366;
const MAX_ERRORS: usize = 1000;

/// The admin routes, each behind the master-key check.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/keys", get(list_keys).post(create))
        .route("/admin/keys/{id}/revoke", post(revoke))
        .route("/admin/keys/{id}/rotate", post(rotate))
        .route("/admin/spend", get(spend))
        .route("/admin/errors", get(errors))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(state),
            require_master_key,
        ))
}

/// Lets a request through only with the master key. A genuine virtual key is told it has
/// no admin rights (403); anything else is 401. Admin answers are never cached.
async fn require_master_key(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if let Err(e) = check_master_key(&s, req.headers()).await {
        return e.into_response();
    }
    let mut resp = next.run(req).await;
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn check_master_key(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(master) = &s.master_key else {
        // Not mounted without one; refuse rather than trust a wiring mistake.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "Unknown route.",
        ));
    };
    let Some(presented) = bearer(headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "The admin API needs the master key as `Authorization: Bearer ...`.",
        ));
    };
    // Both sides hashed first, so the comparison takes the same time whatever the length.
    if constant_time_eq(&hash(presented), master) {
        return Ok(());
    }
    if s.authenticate(presented).await.is_ok() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            "A virtual key cannot use the admin API; send the master key.",
        )
        .code("admin_only"));
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        "Incorrect master key provided.",
    )
    .code("invalid_api_key"))
}

/// The token of `Authorization: Bearer TOKEN`, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `GET /admin/keys`: every key, never a secret or hash.
async fn list_keys(State(s): State<AppState>) -> Result<Response, ApiError> {
    let keys = s.admin_keys().await.map_err(|e| admin_error(&e))?;
    let now = now_secs();
    let data: Vec<Value> = keys.iter().map(|k| key_json(k, now)).collect();
    Ok(axum::Json(json!({"object": "list", "data": data})).into_response())
}

/// The body of `POST /admin/keys`: `llmkit keys create`'s options.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    models: Vec<String>,
    budget_daily_usd: Option<f64>,
    rpm: Option<u32>,
    tpm: Option<u32>,
    max_concurrent: Option<u32>,
    /// `30d`, `12h`, `90m`, `3600s`, or a number of seconds.
    expires: Option<Value>,
}

/// `POST /admin/keys`: creates a key; the answer holds its secret, once.
async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: CreateBody = parse_json(&headers, body)?;
    let expires_in_secs = match &body.expires {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(parse_lifetime(text).map_err(|why| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("`expires`: {why}"),
            )
            .param("expires")
        })?),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|v| v.is_finite() && v > 0.0) => {
            n.as_f64()
        }
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "`expires` is a lifetime such as \"30d\", or a positive number of seconds.",
            )
            .param("expires"));
        }
    };
    let spec = NewKey {
        name: body.name,
        models: body
            .models
            .into_iter()
            .filter(|m| !m.trim().is_empty())
            .collect(),
        budget_daily_usd: body.budget_daily_usd,
        rpm: body.rpm,
        tpm: body.tpm,
        max_concurrent: body.max_concurrent,
        expires_in_secs,
    };
    let (key, secret) = s.admin_create(&spec).await.map_err(|e| admin_error(&e))?;
    let mut out = key_json(&key, now_secs());
    out["secret"] = json!(secret.expose_secret());
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// `POST /admin/keys/{id}/revoke`: the key's next request is refused with 401.
async fn revoke(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    s.admin_revoke(&id).await.map_err(|e| admin_error(&e))?;
    Ok(axum::Json(json!({"id": id, "revoked": true})).into_response())
}

/// `POST /admin/keys/{id}/rotate`: a new secret (in the answer, once); the old one stops.
async fn rotate(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let secret = s.admin_rotate(&id).await.map_err(|e| admin_error(&e))?;
    Ok(axum::Json(json!({"id": id, "secret": secret.expose_secret()})).into_response())
}

#[derive(Deserialize)]
struct SpendQuery {
    days: Option<u32>,
}

/// `GET /admin/spend?days=N`: the ledger's spend and tokens per key, model, upstream and
/// day.
async fn spend(
    State(s): State<AppState>,
    query: Result<Query<SpendQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let days = query
        .ok()
        .map(|Query(q)| q.days.unwrap_or(30))
        .filter(|d| (1..=MAX_DAYS).contains(d))
        .ok_or_else(|| bad_query("days", &format!("a whole number from 1 to {MAX_DAYS}")))?;
    let spend = s.admin_spend(days).await.map_err(|e| admin_error(&e))?;
    let names = key_names(&s).await?;
    let by_key: Vec<Value> = spend
        .by_key
        .iter()
        .map(|r| {
            let mut v = usage_json("key", r);
            v["name"] = json!(names.get(&r.key));
            v
        })
        .collect();
    let group = |field, rows: &[UsageRow]| -> Vec<Value> {
        rows.iter().map(|r| usage_json(field, r)).collect()
    };
    Ok(axum::Json(json!({
        "object": "spend",
        "days": days,
        "since": spend.since,
        "day_basis": spend.day_basis,
        "total": usage_json("key", &spend.total),
        "by_key": by_key,
        "by_model": group("model", &spend.by_model),
        "by_upstream": group("upstream", &spend.by_upstream),
        "by_day": group("day", &spend.by_day),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct ErrorsQuery {
    limit: Option<usize>,
}

/// `GET /admin/errors?limit=N`: the newest failed requests from the ledger.
async fn errors(
    State(s): State<AppState>,
    query: Result<Query<ErrorsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let limit = query
        .ok()
        .map(|Query(q)| q.limit.unwrap_or(50))
        .filter(|n| (1..=MAX_ERRORS).contains(n))
        .ok_or_else(|| bad_query("limit", &format!("a whole number from 1 to {MAX_ERRORS}")))?;
    let rows = s.admin_failures(limit).await.map_err(|e| admin_error(&e))?;
    let names = key_names(&s).await?;
    let data: Vec<Value> = rows.iter().map(|r| failure_json(r, &names)).collect();
    Ok(axum::Json(json!({"object": "list", "data": data})).into_response())
}

/// Key ids to names, for the spend and error rows (which hold only the id).
async fn key_names(s: &AppState) -> Result<HashMap<String, String>, ApiError> {
    let keys = s.admin_keys().await.map_err(|e| admin_error(&e))?;
    Ok(keys.into_iter().map(|k| (k.id, k.name)).collect())
}

fn key_json(k: &VirtualKey, now: f64) -> Value {
    let mut v = json!(k);
    v["status"] = json!(k.status(now));
    v
}

fn usage_json(field: &str, r: &UsageRow) -> Value {
    json!({
        field: r.key,
        "requests": r.requests,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "cached_tokens": r.cached_tokens,
        "total_tokens": r.prompt_tokens + r.completion_tokens,
        "cost_usd": r.cost_usd,
        "unpriced": r.unpriced,
        "cache_hits": r.cache_hits,
        "errors": r.errors,
    })
}

fn failure_json(r: &LedgerRow, names: &HashMap<String, String>) -> Value {
    json!({
        "ts": r.ts,
        "status": r.status,
        "model": r.model,
        "key": r.profile,
        "key_name": r.profile.as_ref().and_then(|id| names.get(id)),
        "backend": r.backend,
        "upstream": r.upstream,
        "latency_ms": r.latency_ms,
    })
}

fn bad_query(param: &str, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        format!("`{param}` must be {what}."),
    )
    .param(param)
}

/// A failed key or ledger operation as an OpenAI error body (the store's own message is
/// not echoed: it may name paths).
fn admin_error(e: &GatewayError) -> ApiError {
    match e {
        GatewayError::UnknownKey(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            // The id came from the caller, who may have pasted a secret: not echoed.
            "No live key has that id.",
        )
        .code("key_not_found"),
        GatewayError::InvalidKey(why) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("Invalid key settings: {why}."),
        ),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "The gateway's key store or ledger is unavailable.",
        ),
    }
}
