//! Server-sent events: a byte-level parser that accepts input split anywhere, and the meaning of OpenAI's events.
//!
//! Parsing is separate from IO so that it can be tested by splitting a recorded stream at
//! every byte boundary. Lines end in LF, CRLF or CR (a CR at the end of one piece and the LF
//! at the start of the next count once); comments (`: keep-alive`) and events without data
//! are skipped; several `data:` lines join with `\n`.

use llmkit_types::{ChatCompletionChunk, ErrorResponse};

use crate::error::{ClientError, truncate_raw};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when the server set one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// An incremental SSE parser: feed it byte pieces, collect complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    event: Option<String>,
    skip_lf: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one piece of the body, appending the events it completes to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        for &b in bytes {
            if std::mem::take(&mut self.skip_lf) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' => self.end_line(out),
                b'\r' => {
                    self.end_line(out);
                    self.skip_lf = true;
                }
                _ => self.line.push(b),
            }
        }
    }

    /// Ends the input: a last line without terminator and a last event without the blank
    /// line are still delivered, since some servers close right after `data: [DONE]`.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            self.end_line(out);
        }
        self.dispatch(out);
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let raw = std::mem::take(&mut self.line);
        if raw.is_empty() {
            self.dispatch(out);
            return;
        }
        // A whole line is decoded at once, so multi-byte characters split across pieces
        // are intact here.
        let line = String::from_utf8_lossy(&raw);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            // `id` and `retry` matter for browser reconnection, not for a completion.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        let data = std::mem::take(&mut self.data);
        if data.trim().is_empty() {
            return;
        }
        out.push(SseEvent { event, data });
    }
}

/// What one event of an OpenAI chat stream means.
#[derive(Debug)]
pub enum StreamItem {
    /// A completion chunk.
    Chunk(Box<ChatCompletionChunk>),
    /// `data: [DONE]`: the stream is complete.
    Done,
    /// An `error` event or an `{"error": ...}` object, or a chunk that does not decode.
    Error(ClientError),
}

/// Interprets one event of a chat completion stream; `status` is the HTTP status of the
/// response (kept in an [`ClientError::Api`] made from an error event).
pub fn interpret_chat_event(ev: &SseEvent, status: u16) -> StreamItem {
    let data = ev.data.trim();
    if data == "[DONE]" {
        return StreamItem::Done;
    }
    let is_error_event = ev.event.as_deref() == Some("error");
    if is_error_event || looks_like_error(data) {
        if let Some(body) = ErrorResponse::parse_lenient(data.as_bytes()) {
            return StreamItem::Error(ClientError::Api {
                retry_after: None,
                rate_limit: None,
                status,
                error: Some(body),
                request_id: None,
                raw: truncate_raw(data),
            });
        }
        if is_error_event {
            return StreamItem::Error(ClientError::Api {
                retry_after: None,
                rate_limit: None,
                status,
                error: None,
                request_id: None,
                raw: truncate_raw(data),
            });
        }
    }
    match serde_json::from_str::<ChatCompletionChunk>(data) {
        Ok(chunk) => StreamItem::Chunk(Box::new(chunk)),
        Err(source) => StreamItem::Error(ClientError::Decode {
            what: "a stream chunk".into(),
            raw: truncate_raw(data),
            source,
        }),
    }
}

/// Whether a chunk carries output the user can see (text, refusal or a tool call), as
/// opposed to the role-only first chunk or the usage-only last one.
pub fn has_content(chunk: &ChatCompletionChunk) -> bool {
    chunk.choices.iter().any(|c| {
        c.delta.content.as_deref().is_some_and(|s| !s.is_empty())
            || c.delta.refusal.as_deref().is_some_and(|s| !s.is_empty())
            || c.delta.tool_calls.as_ref().is_some_and(|v| !v.is_empty())
    })
}

fn looks_like_error(data: &str) -> bool {
    data.starts_with('{')
        && data.contains("\"error\"")
        && {
            matches!(
                serde_json::from_str::<serde_json::Value>(data),
                Ok(serde_json::Value::Object(ref m)) if m.contains_key("error") && !m.contains_key("choices")
            )
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            p.feed(piece, &mut out);
        }
        p.finish(&mut out);
        out
    }

    #[test]
    fn handles_line_endings_comments_and_multiline_data() {
        let input = b": keep-alive\r\n\r\ndata: a\r\ndata: b\r\n\r\nevent: error\ndata:{\"x\":1}\n\ndata: c\r\rdata: [DONE]";
        let events = parse_all(&[input]);
        let data: Vec<_> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["a\nb", "{\"x\":1}", "c", "[DONE]"]);
        assert_eq!(events[1].event.as_deref(), Some("error"));
        assert_eq!(events[2].event, None);
    }

    #[test]
    fn cr_and_lf_split_across_pieces_count_once() {
        let events = parse_all(&[b"data: a\r", b"\n", b"\r", b"\ndata: b\n\n"]);
        let data: Vec<_> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["a", "b"]);
    }

    #[test]
    fn interprets_done_errors_and_chunks() {
        let ev = |data: &str, event: Option<&str>| SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        };
        assert!(matches!(
            interpret_chat_event(&ev("[DONE]", None), 200),
            StreamItem::Done
        ));
        let err = interpret_chat_event(
            &ev(
                r#"{"error":{"message":"boom","type":"server_error"}}"#,
                None,
            ),
            200,
        );
        assert!(
            matches!(err, StreamItem::Error(ClientError::Api { ref error, .. }) if error.as_ref().unwrap().message == "boom")
        );
        let err = interpret_chat_event(&ev("overloaded", Some("error")), 200);
        assert!(matches!(err, StreamItem::Error(ClientError::Api { .. })));
        let bad = interpret_chat_event(&ev("{not json", None), 200);
        assert!(matches!(bad, StreamItem::Error(ClientError::Decode { .. })));
        let ok = interpret_chat_event(
            &ev(
                r#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}"#,
                None,
            ),
            200,
        );
        assert!(matches!(ok, StreamItem::Chunk(ref c) if has_content(c)));
    }
}
