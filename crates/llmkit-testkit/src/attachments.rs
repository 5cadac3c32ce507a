//! What a request attached (images, files, audio) in a short form for the request log: the
//! part type, the media type, the decoded size and sha256, the detail or file name, so a
//! test can check the bytes that arrived without reading megabytes of base64.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One summary per non-text part of a chat (`messages`) or Responses (`input`) body.
pub(crate) fn summary(body: &Value) -> Vec<Value> {
    let items = body
        .get("messages")
        .or_else(|| body.get("input"))
        .and_then(Value::as_array);
    let mut out = Vec::new();
    for item in items.into_iter().flatten() {
        let Some(parts) = item.get("content").and_then(Value::as_array) else {
            continue;
        };
        for p in parts {
            if let Some(s) = part(p) {
                out.push(s);
            }
        }
    }
    out
}

fn part(p: &Value) -> Option<Value> {
    let kind = p.get("type").and_then(Value::as_str)?;
    let str_at = |path: &[&str]| {
        let mut v = p;
        for k in path {
            v = v.get(k)?;
        }
        v.as_str()
    };
    let (uri, detail, filename) = match kind {
        "image_url" => (
            str_at(&["image_url", "url"]),
            str_at(&["image_url", "detail"]),
            None,
        ),
        "input_image" => (str_at(&["image_url"]), str_at(&["detail"]), None),
        "file" => (
            str_at(&["file", "file_data"]),
            None,
            str_at(&["file", "filename"]),
        ),
        "input_file" => (str_at(&["file_data"]), None, str_at(&["filename"])),
        "input_audio" => {
            let data = str_at(&["input_audio", "data"]).unwrap_or("");
            let format = str_at(&["input_audio", "format"]).unwrap_or("");
            let mut s = decoded(&format!("data:audio/{format};base64,{data}"));
            s["type"] = json!(kind);
            return Some(s);
        }
        _ => return None,
    };
    let mut s = match uri {
        Some(u) if u.starts_with("data:") => decoded(u),
        Some(u) => json!({"url": u}),
        None => json!({}),
    };
    s["type"] = json!(kind);
    if let Some(d) = detail {
        s["detail"] = json!(d);
    }
    if let Some(f) = filename {
        s["filename"] = json!(f);
    }
    Some(s)
}

/// Media type, decoded size and sha256 of a base64 `data:` URI (`valid: false` when the
/// base64 does not decode).
fn decoded(uri: &str) -> Value {
    let rest = uri.strip_prefix("data:").unwrap_or(uri);
    let (meta, data) = rest.split_once(',').unwrap_or((rest, ""));
    let media_type = meta.strip_suffix(";base64").unwrap_or(meta);
    match base64::engine::general_purpose::STANDARD.decode(data) {
        Ok(bytes) => json!({
            "media_type": media_type,
            "bytes": bytes.len(),
            "sha256": hex(&Sha256::digest(&bytes)),
            "valid": true,
        }),
        Err(_) => json!({"media_type": media_type, "valid": false}),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_and_responses_parts_are_summarised() {
        let chat = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk=", "detail": "low"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/c.png"}},
        ]}]});
        let s = summary(&chat);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0]["media_type"], "image/png");
        assert_eq!(s[0]["bytes"], 2);
        assert_eq!(s[0]["detail"], "low");
        assert_eq!(
            s[0]["sha256"],
            "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
        );
        assert_eq!(s[1]["filename"], "a.pdf");
        assert_eq!(s[2]["url"], "https://example.com/c.png");
        let responses = json!({"input": [{"type": "message", "role": "user", "content": [
            {"type": "input_image", "image_url": "data:image/gif;base64,@@", "detail": "auto"},
        ]}]});
        let s = summary(&responses);
        assert_eq!(s[0]["type"], "input_image");
        assert_eq!(s[0]["valid"], false);
    }
}
