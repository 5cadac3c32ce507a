//! Token arithmetic of the mock: prompt estimates close to OpenAI's and the split of a reply into streamed "tokens".

use serde_json::Value;

/// Tokens added per chat message (role and separators), as in OpenAI's cookbook.
const PER_MESSAGE: u64 = 3;
/// Tokens that prime every assistant reply.
const REPLY_PRIMING: u64 = 3;
/// What an image part costs in the estimate (OpenAI's low-detail price).
const IMAGE_TOKENS: u64 = 85;
/// A word longer than this is streamed in pieces of `SUBWORD` characters.
const LONG_WORD: usize = 8;
const SUBWORD: usize = 4;

/// About one token per four characters, rounded up.
pub(crate) fn estimate_text(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Prompt tokens of a chat request's `messages`.
pub(crate) fn estimate_messages(messages: &[Value]) -> u64 {
    let per_message: u64 = messages
        .iter()
        .map(|m| {
            let content = m.get("content").unwrap_or(&Value::Null);
            let images = count_images(content) * IMAGE_TOKENS;
            let name = m.get("name").and_then(Value::as_str).map_or(0, |_| 1);
            let tool_calls = m
                .get("tool_calls")
                .map_or(0, |t| estimate_text(&t.to_string()));
            PER_MESSAGE + estimate_text(&content_text(content)) + images + name + tool_calls
        })
        .sum();
    per_message + REPLY_PRIMING
}

/// The text of a message `content`: a string, or the concatenated `text` parts of an array.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                _ => p.get("text").and_then(Value::as_str),
            })
            .collect(),
        _ => String::new(),
    }
}

fn count_images(content: &Value) -> u64 {
    content.as_array().map_or(0, |parts| {
        parts
            .iter()
            .filter(|p| {
                matches!(
                    p.get("type").and_then(Value::as_str),
                    Some("image_url" | "input_image")
                )
            })
            .count() as u64
    })
}

/// Splits a reply into the pieces that are streamed one per chunk and counted as completion tokens.
///
/// A piece is a word with its leading whitespace; words longer than eight characters are cut into
/// four-character pieces. Concatenating the pieces always gives back `text`.
pub(crate) fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let ws_end = rest
            .char_indices()
            .find(|(_, c)| !c.is_whitespace())
            .map_or(rest.len(), |(i, _)| i);
        let word_end = rest[ws_end..]
            .char_indices()
            .find(|(_, c)| c.is_whitespace())
            .map_or(rest.len(), |(i, _)| ws_end + i);
        let (leading, word) = (&rest[..ws_end], &rest[ws_end..word_end]);
        if word.chars().count() <= LONG_WORD {
            out.push(rest[..word_end].to_string());
        } else {
            let chars: Vec<char> = word.chars().collect();
            for (i, chunk) in chars.chunks(SUBWORD).enumerate() {
                let mut piece = if i == 0 {
                    leading.to_string()
                } else {
                    String::new()
                };
                piece.extend(chunk);
                out.push(piece);
            }
        }
        rest = &rest[word_end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pieces_keep_leading_space_and_rebuild_the_text() {
        assert_eq!(pieces("Hello world, ok"), ["Hello", " world,", " ok"]);
        assert_eq!(pieces(""), Vec::<String>::new());
        assert_eq!(pieces("  "), ["  "]);
        assert_eq!(
            pieces(" internationalization"),
            [" inte", "rnat", "iona", "liza", "tion"]
        );
        for t in [
            "a  b\n\nc ",
            "ünïcödé wörds ✓✓✓✓✓✓✓✓✓✓",
            "{\"a\":1,\"b\":[true,null]}",
        ] {
            assert_eq!(pieces(t).concat(), t);
        }
    }

    #[test]
    fn estimates_follow_the_cookbook_shape() {
        assert_eq!(estimate_text(""), 0);
        assert_eq!(estimate_text("abcde"), 2);
        let msgs = [json!({"role": "user", "content": "abcdefgh"})];
        assert_eq!(estimate_messages(&msgs), 3 + 2 + 3);
        let parts = json!([{"type": "text", "text": "ab"}, {"type": "text", "text": "cd"},
                           {"type": "image_url", "image_url": {"url": "x"}}]);
        assert_eq!(content_text(&parts), "abcd");
        let msgs = [json!({"role": "user", "content": parts})];
        assert_eq!(estimate_messages(&msgs), 3 + 1 + 85 + 3);
    }
}
