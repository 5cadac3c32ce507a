//! Streaming input: JSONL (task rows or OpenAI Batch requests) and CSV, one [`Row`] at a
//! time, with malformed rows reported by line number instead of stopping the job.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::BatchError;

/// How the input file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    Jsonl,
    Csv,
}

impl InputFormat {
    /// The format a file name suggests: `.csv` is CSV, anything else JSONL.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => Self::Csv,
            _ => Self::Jsonl,
        }
    }
}

/// What to read and how to interpret each row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub path: PathBuf,
    pub format: InputFormat,
    /// The column (CSV) or field (JSONL object) holding the text of a task row.
    pub text_column: String,
    /// Rows are texts for a task (`true`) or raw OpenAI Batch requests (`false`).
    pub task_rows: bool,
}

impl InputSpec {
    /// The folder a row's relative attachment paths are read from: the input file's.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// One input row: its position, its id in the output, and what it asks (or why it is bad).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 0-based position among the data rows; the output line number.
    pub index: u64,
    /// 1-based line in the input file where the row starts.
    pub line: u64,
    /// The id written to the output as `custom_id`: the row's `custom_id` or `id` when given,
    /// else the line number.
    pub id: Value,
    pub item: Result<RowItem, String>,
}

/// What a well-formed row asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum RowItem {
    /// A text for the task, with the other columns/fields passed through.
    Text {
        text: String,
        fields: Map<String, Value>,
    },
    /// A request in OpenAI's Batch format, sent as it is.
    Raw { url: String, body: Value },
}

/// Reads rows one at a time; memory does not grow with the file.
pub struct RowReader {
    inner: Inner,
    spec: InputSpec,
    next_index: u64,
}

enum Inner {
    Jsonl {
        reader: BufReader<File>,
        line: u64,
        buf: Vec<u8>,
    },
    Csv {
        reader: Box<csv::Reader<File>>,
        text_col: usize,
        headers: Vec<String>,
        record: csv::ByteRecord,
    },
}

impl RowReader {
    /// Opens the input; a CSV without the text column is refused here, before any request.
    pub fn open(spec: &InputSpec) -> Result<Self, BatchError> {
        let input_error = |source| BatchError::Input {
            path: spec.path.clone(),
            source,
        };
        let mut file = File::open(&spec.path).map_err(input_error)?;
        // A binary or empty file is refused before any row is read or any output written.
        let mut head = Vec::with_capacity(HEAD_BYTES);
        (&mut file)
            .take(HEAD_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(input_error)?;
        file.seek(SeekFrom::Start(0)).map_err(input_error)?;
        if let Some(offset) = head.iter().position(|&b| b == 0) {
            return Err(BatchError::Binary {
                path: spec.path.clone(),
                offset,
            });
        }
        if head.len() < HEAD_BYTES && head.iter().all(u8::is_ascii_whitespace) {
            return Err(BatchError::EmptyInput(spec.path.clone()));
        }
        let inner = match spec.format {
            InputFormat::Jsonl => Inner::Jsonl {
                reader: BufReader::with_capacity(1 << 16, file),
                line: 0,
                buf: Vec::new(),
            },
            InputFormat::Csv => open_csv(spec, file)?,
        };
        Ok(Self {
            inner,
            spec: spec.clone(),
            next_index: 0,
        })
    }

    /// The next row, `None` at the end of the input.
    pub fn next_row(&mut self) -> Result<Option<Row>, BatchError> {
        let index = self.next_index;
        let row = match &mut self.inner {
            Inner::Jsonl { reader, line, buf } => loop {
                buf.clear();
                let n = reader
                    .read_until(b'\n', buf)
                    .map_err(|source| BatchError::Input {
                        path: self.spec.path.clone(),
                        source,
                    })?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                break jsonl_row(index, *line, buf, &self.spec);
            },
            Inner::Csv {
                reader,
                text_col,
                headers,
                record,
            } => {
                let more = reader.read_byte_record(record).map_err(|e| {
                    BatchError::Invalid(format!(
                        "the CSV {} cannot be read: {e}",
                        self.spec.path.display()
                    ))
                })?;
                if !more {
                    return Ok(None);
                }
                csv_row(index, record, *text_col, headers)
            }
        };
        self.next_index += 1;
        Ok(Some(row))
    }
}

/// Counts the data rows without interpreting them (for the progress total).
pub fn count_rows(spec: &InputSpec) -> Result<u64, BatchError> {
    let mut reader = RowReader::open(spec)?;
    let mut n = 0;
    match &mut reader.inner {
        Inner::Jsonl { reader, buf, .. } => loop {
            buf.clear();
            let read = reader
                .read_until(b'\n', buf)
                .map_err(|source| BatchError::Input {
                    path: spec.path.clone(),
                    source,
                })?;
            if read == 0 {
                return Ok(n);
            }
            if !buf.iter().all(u8::is_ascii_whitespace) {
                n += 1;
            }
        },
        Inner::Csv { reader, record, .. } => {
            while reader
                .read_byte_record(record)
                .map_err(|e| BatchError::Invalid(format!("the CSV cannot be read: {e}")))?
            {
                n += 1;
            }
            Ok(n)
        }
    }
}

/// How much of the input is checked for NUL bytes (binary data) before reading rows.
const HEAD_BYTES: usize = 8192;

fn open_csv(spec: &InputSpec, file: File) -> Result<Inner, BatchError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let headers: Vec<String> = reader
        .byte_headers()
        .map_err(|e| BatchError::Invalid(format!("the CSV header cannot be read: {e}")))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    let text_col = headers
        .iter()
        .position(|h| *h == spec.text_column)
        .ok_or_else(|| BatchError::NoColumn {
            path: spec.path.clone(),
            column: spec.text_column.clone(),
            columns: headers.join(", "),
        })?;
    Ok(Inner::Csv {
        reader: Box::new(reader),
        text_col,
        headers,
        record: csv::ByteRecord::new(),
    })
}

fn jsonl_row(index: u64, line: u64, bytes: &[u8], spec: &InputSpec) -> Row {
    let fallback_id = Value::from(line);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Row {
                index,
                line,
                id: fallback_id,
                item: Err(format!("line {line}: invalid UTF-8 ({e})")),
            };
        }
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Row {
                index,
                line,
                id: fallback_id,
                item: Err(format!("line {line}: invalid JSON ({e})")),
            };
        }
    };
    let id = match &value {
        Value::Object(o) => o
            .get("custom_id")
            .or_else(|| o.get("id"))
            .filter(|v| v.is_string() || v.is_number())
            .cloned()
            .unwrap_or(fallback_id),
        _ => fallback_id,
    };
    let item = if spec.task_rows {
        task_item(value, &spec.text_column)
    } else {
        raw_item(value)
    }
    .map_err(|e| format!("line {line}: {e}"));
    Row {
        index,
        line,
        id,
        item,
    }
}

fn task_item(value: Value, column: &str) -> Result<RowItem, String> {
    match value {
        Value::String(text) => Ok(RowItem::Text {
            text,
            fields: Map::new(),
        }),
        Value::Object(mut o) => match o.remove(column) {
            Some(Value::String(text)) => Ok(RowItem::Text { text, fields: o }),
            Some(_) => Err(format!("field `{column}` is not a string")),
            None => Err(format!("missing field `{column}`")),
        },
        _ => Err(format!(
            "expected a JSON string or an object with a `{column}` field"
        )),
    }
}

fn raw_item(value: Value) -> Result<RowItem, String> {
    let Value::Object(mut o) = value else {
        return Err(
            "expected an OpenAI Batch request object {custom_id, method, url, body}".into(),
        );
    };
    if !o.get("custom_id").is_some_and(Value::is_string) {
        return Err("missing string field `custom_id`".into());
    }
    if let Some(m) = o.get("method")
        && m.as_str().is_none_or(|m| !m.eq_ignore_ascii_case("POST"))
    {
        return Err("only `method: POST` requests can be sent".into());
    }
    let url = match o.remove("url") {
        Some(Value::String(u)) => u,
        None => "/v1/chat/completions".to_string(),
        Some(_) => return Err("field `url` is not a string".into()),
    };
    match o.remove("body") {
        Some(body @ Value::Object(_)) => Ok(RowItem::Raw { url, body }),
        Some(_) => Err("field `body` is not an object".into()),
        None => Err("missing field `body`".into()),
    }
}

fn csv_row(index: u64, record: &csv::ByteRecord, text_col: usize, headers: &[String]) -> Row {
    let line = record.position().map_or(index + 2, csv::Position::line);
    let id = Value::from(line);
    let mut fields = Map::new();
    let mut text = None;
    let mut problem = None;
    for (i, name) in headers.iter().enumerate() {
        let Some(raw) = record.get(i) else {
            if i == text_col {
                problem = Some(format!("line {line}: missing column `{name}`"));
            }
            continue;
        };
        match std::str::from_utf8(raw) {
            Ok(v) if i == text_col => text = Some(v.to_string()),
            Ok(v) => {
                fields.insert(name.clone(), Value::String(v.to_string()));
            }
            Err(_) => {
                problem.get_or_insert(format!("line {line}: invalid UTF-8 in column `{name}`"));
            }
        }
    }
    let item = match (problem, text) {
        (Some(p), _) => Err(p),
        (None, Some(text)) => Ok(RowItem::Text { text, fields }),
        (None, None) => Err(format!("line {line}: missing text column")),
    };
    Row {
        index,
        line,
        id,
        item,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn read_all(content: &[u8], format: InputFormat, task_rows: bool) -> Vec<Row> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        let spec = InputSpec {
            path: f.path().to_path_buf(),
            format,
            text_column: "text".into(),
            task_rows,
        };
        let mut r = RowReader::open(&spec).unwrap();
        let mut rows = Vec::new();
        while let Some(row) = r.next_row().unwrap() {
            rows.push(row);
        }
        assert_eq!(count_rows(&spec).unwrap(), rows.len() as u64);
        rows
    }

    #[test]
    fn jsonl_rows_and_bad_lines() {
        let rows = read_all(
            b"\"hello\"\n{\"text\":\"a\",\"lang\":\"fr\"}\n\n{bad\n{\"x\":1}\n\xff\xfe\n",
            InputFormat::Jsonl,
            true,
        );
        assert_eq!(rows.len(), 5);
        assert!(matches!(&rows[0].item, Ok(RowItem::Text { text, .. }) if text == "hello"));
        let Ok(RowItem::Text { fields, .. }) = &rows[1].item else {
            panic!("{:?}", rows[1])
        };
        assert_eq!(fields["lang"], "fr");
        assert_eq!(rows[2].line, 4);
        assert!(
            rows[2]
                .item
                .as_ref()
                .unwrap_err()
                .contains("line 4: invalid JSON")
        );
        assert!(
            rows[3]
                .item
                .as_ref()
                .unwrap_err()
                .contains("missing field `text`")
        );
        assert!(rows[4].item.as_ref().unwrap_err().contains("invalid UTF-8"));
        assert_eq!(rows[4].index, 4);
    }

    #[test]
    fn raw_requests_keep_custom_id() {
        let rows = read_all(
            br#"{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}
{"method":"POST","body":{}}
"#,
            InputFormat::Jsonl,
            false,
        );
        assert_eq!(rows[0].id, "r1");
        assert!(
            matches!(&rows[0].item, Ok(RowItem::Raw { url, .. }) if url == "/v1/chat/completions")
        );
        assert!(rows[1].item.is_err());
    }

    #[test]
    fn csv_rows_pass_other_columns() {
        let rows = read_all(
            b"id,text,lang\n1,hello,en\n2\n3,\"multi\nline\",fr\n4,\xff,en\n",
            InputFormat::Csv,
            true,
        );
        assert_eq!(rows.len(), 4);
        let Ok(RowItem::Text { text, fields }) = &rows[0].item else {
            panic!()
        };
        assert_eq!(
            (text.as_str(), &fields["lang"]),
            ("hello", &Value::from("en"))
        );
        assert!(
            rows[1]
                .item
                .as_ref()
                .unwrap_err()
                .contains("line 3: missing column `text`")
        );
        assert!(matches!(&rows[2].item, Ok(RowItem::Text { text, .. }) if text == "multi\nline"));
        assert!(
            rows[3]
                .item
                .as_ref()
                .unwrap_err()
                .contains("line 6: invalid UTF-8")
        );
    }
}
