//! `POST /v1/embeddings`: deterministic, L2-normalised vectors hashed from the input text.
//!
//! Each lower-cased word adds ±1 at a few hashed positions (feature hashing), and the whole text
//! adds a smaller component, so texts that share words are close and different texts differ.

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::reply::{check_model, prompt_tokens};
use crate::response::{Call, Handled, Reply};
use crate::tokens::estimate_text;

const DEFAULT_DIMS: u64 = 1536;
const MAX_DIMS: u64 = 3072;
/// Per-input context window of OpenAI's embedding models.
const MAX_INPUT_TOKENS: u64 = 8192;
const MAX_INPUTS: usize = 2048;
/// Positions each word sets.
const HASHES_PER_WORD: u64 = 4;

pub(crate) fn handle(body: &Value, _call: &Call) -> Result<Handled, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid_json_body());
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::missing_param("model"))?;
    check_model(model)?;
    let inputs = inputs(body.get("input"))?;
    let dims = match body.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMS,
        Some(d) => d
            .as_u64()
            .filter(|d| (1..=MAX_DIMS).contains(d))
            .ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "{d} is not a valid value for 'dimensions': expected 1 to {MAX_DIMS}."
                ))
                .with_param("dimensions")
            })?,
    };
    if let Some(too_long) = inputs
        .iter()
        .map(|t| estimate_text(t))
        .find(|t| *t > MAX_INPUT_TOKENS)
    {
        return Err(ApiError::invalid_request(format!(
            "This model's maximum context length is {MAX_INPUT_TOKENS} tokens, however you \
             requested {too_long} tokens ({too_long} in your prompt; 0 for the completion). \
             Please reduce your prompt; or completion length."
        ))
        .with_param("input")
        .with_code("context_length_exceeded"));
    }
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let v = embed(text, dims as usize);
            let embedding = if base64 {
                Value::String(encode_base64(&v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens = prompt_tokens(&inputs);
    let reply = Reply::json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }));
    Ok(Handled {
        reply,
        charge: Some((model.to_string(), tokens)),
    })
}

/// The deterministic vector of `text`, of length `dims` and unit L2 norm.
pub fn embed(text: &str, dims: usize) -> Vec<f32> {
    let dims = dims.max(1);
    let mut v = vec![0f32; dims];
    let lower = text.to_lowercase();
    for word in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        add_hashed(&mut v, fnv1a(word.as_bytes()), HASHES_PER_WORD, 1.0);
    }
    add_hashed(&mut v, fnv1a(text.as_bytes()) ^ 0x5bd1_e995, 2, 0.5);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn add_hashed(v: &mut [f32], seed: u64, count: u64, weight: f32) {
    for k in 0..count {
        let h = splitmix64(seed.wrapping_add(k));
        let idx = (h % v.len() as u64) as usize;
        let sign = if h >> 63 == 1 { -1.0 } else { 1.0 };
        v[idx] += sign * weight;
    }
}

fn inputs(input: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let bad = || {
        ApiError::invalid_request(
            "'input' must be a string, an array of strings, or an array of token arrays.",
        )
        .with_param("input")
    };
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(t) if t.iter().all(Value::is_number) => {
            Ok(t.iter().map(Value::to_string).collect::<Vec<_>>().join(" "))
        }
        _ => Err(bad()),
    };
    let list = match input {
        None | Some(Value::Null) => return Err(ApiError::missing_param("input")),
        Some(Value::Array(items)) if items.iter().all(Value::is_number) && !items.is_empty() => {
            vec![one(&Value::Array(items.clone()))?]
        }
        Some(Value::Array(items)) => items.iter().map(one).collect::<Result<Vec<_>, _>>()?,
        Some(v) => vec![one(v)?],
    };
    if list.is_empty() || list.len() > MAX_INPUTS {
        return Err(bad());
    }
    Ok(list)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Little-endian f32s in standard base64, as OpenAI's `encoding_format: "base64"`.
fn encode_base64(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_are_unit_deterministic_and_meaningful() {
        let a = embed("The cat sat on the mat", 1536);
        assert_eq!(a, embed("The cat sat on the mat", 1536));
        assert!((cos(&a, &a) - 1.0).abs() < 1e-5);
        let near = embed("the cat sat on a mat", 1536);
        let far = embed("quarterly revenue grew strongly", 1536);
        assert!(cos(&a, &near) > 0.6, "{}", cos(&a, &near));
        assert!(cos(&a, &far) < 0.3, "{}", cos(&a, &far));
        assert_ne!(embed("a b", 64), embed("b a", 64));
        assert_eq!(embed("", 8).len(), 8);
        assert!((cos(&embed("", 8), &embed("", 8)) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn inputs_and_base64() {
        assert_eq!(inputs(Some(&json!("x"))).unwrap(), ["x"]);
        assert_eq!(inputs(Some(&json!(["x", "y"]))).unwrap(), ["x", "y"]);
        assert_eq!(inputs(Some(&json!([1, 2]))).unwrap(), ["1 2"]);
        assert!(inputs(Some(&json!([]))).is_err());
        assert!(inputs(Some(&json!([{"a": 1}]))).is_err());
        assert_eq!(encode_base64(&[1.0]), "AACAPw==");
        assert_eq!(encode_base64(&[1.0, 2.0]), "AACAPwAAAEA=");
    }
}
