//! `GET /v1/models` and `GET /v1/models/{id}` over a fixed list of model names.

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::reply::check_model;
use crate::response::{Handled, Reply};

/// The models the mock lists. Any other name is accepted by the generation endpoints too,
/// except those starting with `nonexistent` or `unknown-`.
pub const MODELS: [&str; 12] = [
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "o4-mini",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
    "mock-ctx4k",
    "mock-model",
];

/// A fixed creation time, so that listings are identical across runs.
const CREATED: u64 = 1_700_000_000;

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": CREATED, "owned_by": "llmkit-mock"})
}

pub(crate) fn list() -> Handled {
    let data: Vec<Value> = MODELS.iter().map(|m| model_object(m)).collect();
    Handled::free(Reply::json(json!({"object": "list", "data": data})))
}

pub(crate) fn get(id: &str) -> Result<Handled, ApiError> {
    check_model(id)?;
    Ok(Handled::free(Reply::json(model_object(id))))
}
