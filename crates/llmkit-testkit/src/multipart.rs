//! A minimal `multipart/form-data` reader, enough for `POST /v1/files` (`purpose` + `file`).

use bytes::Bytes;

/// One part of a form: its field name, optional file name, and content.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Bytes,
}

/// The boundary of a `multipart/form-data; boundary=...` content type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim().eq_ignore_ascii_case("boundary") && !v.is_empty()).then(|| v.to_string())
    })
}

/// Splits `body` into its parts; malformed parts are skipped.
pub(crate) fn parse(body: &Bytes, boundary: &str) -> Vec<Part> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut positions = find_all(body, delimiter.as_bytes());
    positions.push(body.len());
    for pair in positions.windows(2) {
        let start = pair[0] + delimiter.len();
        let end = pair[1];
        if start >= end || body[start..].starts_with(b"--") {
            continue;
        }
        let raw = body.slice(start..end);
        let raw = strip_prefix(&raw, b"\r\n");
        let raw = strip_suffix(&raw, b"\r\n");
        let Some(split) = find(&raw, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let data = raw.slice(split + 4..);
        if let Some(name) = disposition_param(&head, "name") {
            parts.push(Part {
                name,
                filename: disposition_param(&head, "filename"),
                data,
            });
        }
    }
    parts
}

fn disposition_param(head: &str, key: &str) -> Option<String> {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?;
    line.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = find(&hay[from..], needle) {
        out.push(from + i);
        from += i + needle.len();
    }
    out
}

fn strip_prefix(b: &Bytes, p: &[u8]) -> Bytes {
    if b.starts_with(p) {
        b.slice(p.len()..)
    } else {
        b.clone()
    }
}

fn strip_suffix(b: &Bytes, s: &[u8]) -> Bytes {
    if b.ends_with(s) {
        b.slice(..b.len() - s.len())
    } else {
        b.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_files() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"abc\"").as_deref(),
            Some("abc")
        );
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/form-data; boundary="), None);
        let body = Bytes::from_static(
            b"--abc\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
              --abc\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\
              Content-Type: application/octet-stream\r\n\r\nline1\r\nline2\n\r\n--abc--\r\n",
        );
        let parts = parse(&body, "abc");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "purpose");
        assert_eq!(&parts[0].data[..], b"batch");
        assert_eq!(parts[1].filename.as_deref(), Some("in.jsonl"));
        assert_eq!(&parts[1].data[..], b"line1\r\nline2\n");
    }
}
