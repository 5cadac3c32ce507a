//! The embeddings request and response (`/v1/embeddings`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::common::null_as_default;

/// `POST /v1/embeddings` request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: EmbeddingInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl EmbeddingRequest {
    pub fn new(model: impl Into<String>, texts: Vec<String>) -> Self {
        Self {
            model: model.into(),
            input: EmbeddingInput::Texts(texts),
            encoding_format: None,
            dimensions: None,
            user: None,
            extra: Map::new(),
        }
    }
}

/// Embedding input: text, texts, or token ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenBatches(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// The texts to embed (empty for token input).
    pub fn texts(&self) -> Vec<String> {
        match self {
            Self::Text(s) => vec![s.clone()],
            Self::Texts(v) => v.clone(),
            _ => Vec::new(),
        }
    }
}

/// `POST /v1/embeddings` response body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    #[serde(default = "list_object")]
    pub object: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<Embedding>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model: String,
    #[serde(default)]
    pub usage: EmbeddingUsage,
}

fn list_object() -> String {
    "list".to_string()
}

fn embedding_object() -> String {
    "embedding".to_string()
}

/// One embedding vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    #[serde(default = "embedding_object")]
    pub object: String,
    #[serde(default)]
    pub index: u32,
    pub embedding: EmbeddingVector,
}

/// A vector as floats, or base64 of little-endian f32 when `encoding_format` is base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    Float(Vec<f32>),
    Base64(String),
}

impl EmbeddingVector {
    /// The vector as floats, decoding base64; `None` when the base64 is malformed or its
    /// length is not a whole number of f32s.
    pub fn to_floats(&self) -> Option<Vec<f32>> {
        use base64::Engine as _;
        match self {
            Self::Float(v) => Some(v.clone()),
            Self::Base64(b64) => {
                let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
                if bytes.len() % 4 != 0 {
                    return None;
                }
                Some(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                )
            }
        }
    }
}

/// Token usage of an embeddings request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::EmbeddingVector;

    #[test]
    fn base64_vectors_decode_to_little_endian_floats() {
        // 1.0f32 = 00 00 80 3f, -2.0f32 = 00 00 00 c0
        let v = EmbeddingVector::Base64("AACAPwAAAMA=".into());
        assert_eq!(v.to_floats(), Some(vec![1.0, -2.0]));
        assert_eq!(EmbeddingVector::Base64("AACA".into()).to_floats(), None);
        assert_eq!(EmbeddingVector::Base64("*".into()).to_floats(), None);
    }
}
