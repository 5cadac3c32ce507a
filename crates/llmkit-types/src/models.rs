//! The model list (`/v1/models`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::common::null_as_default;

/// `GET /v1/models` response body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    #[serde(default = "list_object")]
    pub object: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<Model>,
}

fn list_object() -> String {
    "list".to_string()
}

fn model_object() -> String {
    "model".to_string()
}

/// One model entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    #[serde(default = "model_object")]
    pub object: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub owned_by: String,
    /// Server-specific fields such as vLLM's `max_model_len`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
