//! The request log: one JSON entry per request, kept in memory and optionally appended to a file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use crate::errors::redact_key;

/// Headers whose values are secrets: only their last four characters are logged.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "api-key",
    "x-api-key",
    "proxy-authorization",
    "cookie",
];

/// Request log entries, in arrival order of completion.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    entries: Mutex<Vec<Value>>,
    file: Option<Mutex<File>>,
}

impl RequestLog {
    /// Opens (creating, appending) the log file when one is given.
    pub(crate) fn open(path: Option<&Path>) -> io::Result<Self> {
        let file = match path {
            Some(p) => Some(Mutex::new(
                OpenOptions::new().create(true).append(true).open(p)?,
            )),
            None => None,
        };
        Ok(Self {
            entries: Mutex::new(Vec::new()),
            file,
        })
    }

    /// Records one entry in memory and, as a single flushed line, in the file.
    pub(crate) fn record(&self, entry: Value) {
        if let Some(file) = &self.file {
            let mut line = entry.to_string();
            line.push('\n');
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = f.write_all(line.as_bytes()).and_then(|()| f.flush()) {
                eprintln!("llmkit-mock: cannot write the request log: {e}");
            }
        }
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
    }

    pub(crate) fn entries(&self) -> Vec<Value> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The facts about one request that go into its log entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a Value,
    pub status: Option<u16>,
    pub fault: Option<&'static str>,
}

impl Entry<'_> {
    pub(crate) fn to_json(&self) -> Value {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        json!({
            "ts": ts,
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": logged_headers(self.headers),
            "body": self.body,
            "attachments": crate::attachments::summary(self.body),
            "status": self.status,
            "fault": self.fault,
        })
    }
}

/// Every header, secrets reduced to their last four characters.
fn logged_headers(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let shown = if SECRET_HEADERS.contains(&name) {
            redact_secret(&text)
        } else {
            text
        };
        out.insert(name.to_string(), Value::String(shown));
    }
    Value::Object(out)
}

/// `Bearer sk-abc...wxyz` becomes `Bearer ...wxyz`; a bare key becomes `...wxyz`.
fn redact_secret(value: &str) -> String {
    let (scheme, key) = match value.split_once(' ') {
        Some((s, k)) => (format!("{s} "), k),
        None => (String::new(), value),
    };
    let tail: String = {
        let chars: Vec<char> = key.chars().collect();
        if chars.len() <= 8 {
            return format!("{scheme}{}", redact_key(key));
        }
        chars[chars.len() - 4..].iter().collect()
    };
    format!("{scheme}...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact_secret("Bearer sk-abcdefgh1234"), "Bearer ...1234");
        assert_eq!(redact_secret("sk-abcdefgh1234"), "...1234");
        assert_eq!(redact_secret("Bearer tiny"), "Bearer ****");
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer sk-secret-9876"),
        );
        h.insert("x-custom", HeaderValue::from_static("kept"));
        let v = logged_headers(&h);
        assert_eq!(v["authorization"], "Bearer ...9876");
        assert_eq!(v["x-custom"], "kept");
    }

    #[test]
    fn entries_go_to_memory_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let log = RequestLog::open(Some(&path)).unwrap();
        log.record(json!({"a": 1}));
        log.record(json!({"a": 2}));
        assert_eq!(log.entries().len(), 2);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"a\":2}\n");
    }
}
