//! Files and Batches: an in-memory file store (`/v1/files`) and batches (`/v1/batches`) whose
//! JSONL lines are answered by the same handlers, becoming `completed` after `batch_delay_ms`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::multipart;
use crate::response::{Call, Handled, Reply, ReplyBody};
use crate::{chat, completions, embeddings};

/// Endpoints a batch may target.
const BATCH_ENDPOINTS: [&str; 3] = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

#[derive(Debug, Clone)]
struct StoredFile {
    id: String,
    filename: String,
    purpose: String,
    created_at: u64,
    data: Bytes,
}

impl StoredFile {
    fn object(&self) -> Value {
        json!({
            "id": self.id,
            "object": "file",
            "bytes": self.data.len(),
            "created_at": self.created_at,
            "expires_at": null,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": null,
        })
    }
}

#[derive(Debug, Clone)]
struct Batch {
    id: String,
    endpoint: String,
    input_file_id: String,
    completion_window: String,
    metadata: Value,
    created_at: u64,
    ready_at: Instant,
    delay: Duration,
    /// Set when a line of the input is not valid: the batch fails at validation.
    errors: Option<Value>,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    total: usize,
    failed: usize,
    cancelled_at: Option<u64>,
}

impl Batch {
    fn status(&self, now: Instant) -> &'static str {
        if self.errors.is_some() {
            "failed"
        } else if self.cancelled_at.is_some() {
            "cancelled"
        } else if now >= self.ready_at {
            "completed"
        } else {
            "in_progress"
        }
    }

    fn object(&self, now: Instant) -> Value {
        let status = self.status(now);
        let done = status == "completed";
        let finished_at = done.then(|| self.created_at + self.delay.as_secs());
        json!({
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": status,
            "output_file_id": if done { self.output_file_id.clone() } else { None },
            "error_file_id": if done { self.error_file_id.clone() } else { None },
            "created_at": self.created_at,
            "in_progress_at": (status != "failed").then_some(self.created_at),
            "expires_at": self.created_at + 86_400,
            "finalizing_at": finished_at,
            "completed_at": finished_at,
            "failed_at": (status == "failed").then_some(self.created_at),
            "expired_at": null,
            "cancelling_at": self.cancelled_at,
            "cancelled_at": self.cancelled_at,
            "request_counts": {
                "total": self.total,
                "completed": if done { self.total - self.failed } else { 0 },
                "failed": if done { self.failed } else { 0 },
            },
            "metadata": self.metadata,
        })
    }
}

/// Files and batches of one server.
#[derive(Debug, Default)]
pub(crate) struct Store {
    files: BTreeMap<String, StoredFile>,
    batches: BTreeMap<String, Batch>,
    next_file: u64,
    next_batch: u64,
}

impl Store {
    /// `POST /v1/files` (multipart: `purpose`, `file`).
    pub(crate) fn upload(
        &mut self,
        content_type: &str,
        body: &Bytes,
        call: &Call,
    ) -> Result<Handled, ApiError> {
        let boundary = multipart::boundary(content_type).ok_or_else(|| {
            ApiError::invalid_request(
                "The request must be multipart/form-data with a 'file' field.",
            )
        })?;
        let parts = multipart::parse(body, &boundary);
        let purpose = parts
            .iter()
            .find(|p| p.name == "purpose")
            .map(|p| String::from_utf8_lossy(&p.data).trim().to_string())
            .ok_or_else(|| ApiError::missing_param("purpose"))?;
        let file = parts
            .iter()
            .find(|p| p.name == "file")
            .ok_or_else(|| ApiError::missing_param("file"))?;
        let filename = file.filename.clone().unwrap_or_else(|| "upload".into());
        let id = self.add_file(filename, purpose, file.data.clone(), call.created);
        Ok(Handled::free(Reply::json(self.files[&id].object())))
    }

    pub(crate) fn file(&self, id: &str) -> Result<Handled, ApiError> {
        Ok(Handled::free(Reply::json(self.get_file(id)?.object())))
    }

    pub(crate) fn file_content(&self, id: &str) -> Result<Handled, ApiError> {
        let f = self.get_file(id)?;
        Ok(Handled::free(Reply::bytes(
            "application/octet-stream",
            f.data.clone(),
        )))
    }

    pub(crate) fn delete_file(&mut self, id: &str) -> Result<Handled, ApiError> {
        self.get_file(id)?;
        self.files.remove(id);
        Ok(Handled::free(Reply::json(
            json!({"id": id, "object": "file", "deleted": true}),
        )))
    }

    /// `POST /v1/batches`: answers every line now; the results show once the delay has passed.
    pub(crate) fn create_batch(
        &mut self,
        body: &Value,
        call: &Call,
        delay: Duration,
    ) -> Result<Handled, ApiError> {
        let input_file_id = body
            .get("input_file_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::missing_param("input_file_id"))?
            .to_string();
        let endpoint = body
            .get("endpoint")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::missing_param("endpoint"))?
            .to_string();
        if !BATCH_ENDPOINTS.contains(&endpoint.as_str()) {
            return Err(ApiError::invalid_request(format!(
                "Invalid value for 'endpoint': '{endpoint}' is not supported by batches."
            ))
            .with_param("endpoint"));
        }
        let input = self.get_file(&input_file_id)?.data.clone();
        self.next_batch += 1;
        let id = format!("batch_mock{:06}", self.next_batch);
        let mut batch = Batch {
            id: id.clone(),
            endpoint: endpoint.clone(),
            input_file_id,
            completion_window: body
                .get("completion_window")
                .and_then(Value::as_str)
                .unwrap_or("24h")
                .to_string(),
            metadata: body.get("metadata").cloned().unwrap_or(Value::Null),
            created_at: call.created,
            ready_at: Instant::now() + delay,
            delay,
            errors: None,
            output_file_id: None,
            error_file_id: None,
            total: 0,
            failed: 0,
            cancelled_at: None,
        };
        match run_lines(&input, &endpoint, &id, call) {
            Err(errors) => batch.errors = Some(errors),
            Ok(results) => {
                batch.total = results.ok_count + results.failed_count;
                batch.failed = results.failed_count;
                batch.output_file_id = Some(self.add_file(
                    format!("{id}_output.jsonl"),
                    "batch_output".into(),
                    results.ok.into(),
                    call.created,
                ));
                if batch.failed > 0 {
                    batch.error_file_id = Some(self.add_file(
                        format!("{id}_error.jsonl"),
                        "batch_output".into(),
                        results.failed.into(),
                        call.created,
                    ));
                }
            }
        }
        let mut object = batch.object(Instant::now());
        if batch.errors.is_none() {
            object["status"] = json!("validating");
            object["in_progress_at"] = Value::Null;
            object["output_file_id"] = Value::Null;
            object["error_file_id"] = Value::Null;
            object["completed_at"] = Value::Null;
            object["finalizing_at"] = Value::Null;
            object["request_counts"] = json!({"total": 0, "completed": 0, "failed": 0});
        }
        self.batches.insert(id, batch);
        Ok(Handled::free(Reply::json(object)))
    }

    pub(crate) fn batch(&self, id: &str) -> Result<Handled, ApiError> {
        let b = self.get_batch(id)?;
        Ok(Handled::free(Reply::json(b.object(Instant::now()))))
    }

    pub(crate) fn cancel_batch(&mut self, id: &str, call: &Call) -> Result<Handled, ApiError> {
        let now = Instant::now();
        let b = self
            .batches
            .get_mut(id)
            .ok_or_else(|| not_found("batch", id))?;
        if b.status(now) == "in_progress" {
            b.cancelled_at = Some(call.created);
            let mut object = b.object(now);
            object["status"] = json!("cancelling");
            object["cancelled_at"] = Value::Null;
            return Ok(Handled::free(Reply::json(object)));
        }
        Ok(Handled::free(Reply::json(b.object(now))))
    }

    pub(crate) fn list_batches(&self) -> Handled {
        let now = Instant::now();
        let data: Vec<Value> = self.batches.values().rev().map(|b| b.object(now)).collect();
        let first = data.first().map(|b| b["id"].clone());
        let last = data.last().map(|b| b["id"].clone());
        Handled::free(Reply::json(json!({
            "object": "list", "data": data, "first_id": first, "last_id": last, "has_more": false
        })))
    }

    fn add_file(
        &mut self,
        filename: String,
        purpose: String,
        data: Bytes,
        created_at: u64,
    ) -> String {
        self.next_file += 1;
        let id = format!("file-mock{:06}", self.next_file);
        let file = StoredFile {
            id: id.clone(),
            filename,
            purpose,
            created_at,
            data,
        };
        self.files.insert(id.clone(), file);
        id
    }

    /// A stored file's purpose and bytes (for fine-tuning jobs).
    pub(crate) fn file_data(&self, id: &str) -> Result<(String, Bytes), ApiError> {
        let f = self.get_file(id)?;
        Ok((f.purpose.clone(), f.data.clone()))
    }

    fn get_file(&self, id: &str) -> Result<&StoredFile, ApiError> {
        self.files.get(id).ok_or_else(|| not_found("file", id))
    }

    fn get_batch(&self, id: &str) -> Result<&Batch, ApiError> {
        self.batches.get(id).ok_or_else(|| not_found("batch", id))
    }
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("No such {what}: {id}"),
    )
}

/// The output lines of a batch: successes and failures, each a JSONL document.
struct LineResults {
    ok: String,
    failed: String,
    ok_count: usize,
    failed_count: usize,
}

/// Answers each input line; a line that is not a valid request fails the whole batch (as
/// OpenAI's validation does), returning its `errors` object.
fn run_lines(
    input: &[u8],
    endpoint: &str,
    batch_id: &str,
    call: &Call,
) -> Result<LineResults, Value> {
    let text = String::from_utf8_lossy(input);
    let mut results = LineResults {
        ok: String::new(),
        failed: String::new(),
        ok_count: 0,
        failed_count: 0,
    };
    let mut errors = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line_no = n + 1;
        let parsed: Option<Value> = serde_json::from_str(line).ok();
        let Some((custom_id, body)) = parsed.as_ref().and_then(|v| {
            let custom_id = v.get("custom_id")?.as_str()?;
            let url = v.get("url")?.as_str()?;
            (url == endpoint).then_some((custom_id.to_string(), v.get("body")?.clone()))
        }) else {
            errors.push(json!({
                "code": "invalid_request",
                "message": format!("Line {line_no} is not a valid batch request for {endpoint}."),
                "param": null,
                "line": line_no,
            }));
            continue;
        };
        let seq = (line_no as u64) + 1000 * call.seq;
        let line_call = Call {
            seq,
            ..call.clone()
        };
        let mut body = body;
        if let Some(map) = body.as_object_mut() {
            map.remove("stream");
        }
        let handled = match endpoint {
            "/v1/chat/completions" => chat::handle(&body, &line_call),
            "/v1/completions" => completions::handle(&body, &line_call),
            _ => embeddings::handle(&body, &line_call),
        };
        let (status, response_body) = match handled {
            Ok(Handled { reply, .. }) => match reply.body {
                ReplyBody::Json(v) => (200, v),
                _ => (500, crate::errors::ApiError::server_error().body()),
            },
            Err(e) => (e.status.as_u16(), e.body()),
        };
        let out = json!({
            "id": format!("batch_req_mock{seq:06}"),
            "custom_id": custom_id,
            "response": {
                "status_code": status,
                "request_id": format!("req_{batch_id}_{line_no}"),
                "body": response_body,
            },
            "error": null,
        });
        let target = if status == 200 {
            results.ok_count += 1;
            &mut results.ok
        } else {
            results.failed_count += 1;
            &mut results.failed
        };
        target.push_str(&out.to_string());
        target.push('\n');
    }
    if errors.is_empty() {
        Ok(results)
    } else {
        Err(json!({"object": "list", "data": errors}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Call {
        Call {
            seq: 1,
            created: 100,
            tokens_per_sec: None,
            cached_tokens: 0,
        }
    }

    fn json_of(h: Handled) -> Value {
        match h.reply.body {
            ReplyBody::Json(v) => v,
            ReplyBody::Bytes(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
            ReplyBody::Frames(_) => Value::Null,
        }
    }

    fn upload(store: &mut Store, content: &str) -> String {
        let body = format!(
            "--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--b\r\n\
             Content-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\r\n{content}\r\n--b--\r\n"
        );
        let h = store
            .upload(
                "multipart/form-data; boundary=b",
                &Bytes::from(body),
                &call(),
            )
            .unwrap();
        json_of(h)["id"].as_str().unwrap().to_string()
    }

    #[test]
    fn batch_lines_are_answered_and_split() {
        let mut store = Store::default();
        let input = [
            json!({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                   "body": {"model": "m", "messages": [{"role": "user", "content": "hi a"}]}}),
            json!({"custom_id": "b", "method": "POST", "url": "/v1/chat/completions",
                   "body": {"model": "unknown-m", "messages": [{"role": "user", "content": "x"}]}}),
        ]
        .map(|v| v.to_string())
        .join("\n");
        let file = upload(&mut store, &input);
        let created = json_of(
            store
                .create_batch(
                    &json!({"input_file_id": file, "endpoint": "/v1/chat/completions",
                                      "completion_window": "24h"}),
                    &call(),
                    Duration::ZERO,
                )
                .unwrap(),
        );
        assert_eq!(created["status"], "validating");
        let id = created["id"].as_str().unwrap();
        let b = json_of(store.batch(id).unwrap());
        assert_eq!(b["status"], "completed");
        assert_eq!(
            b["request_counts"],
            json!({"total": 2, "completed": 1, "failed": 1})
        );
        let out = json_of(
            store
                .file_content(b["output_file_id"].as_str().unwrap())
                .unwrap(),
        );
        let line: Value = serde_json::from_str(out.as_str().unwrap().trim()).unwrap();
        assert_eq!(line["custom_id"], "a");
        assert_eq!(
            line["response"]["body"]["choices"][0]["message"]["content"],
            "hi a"
        );
        let err = json_of(
            store
                .file_content(b["error_file_id"].as_str().unwrap())
                .unwrap(),
        );
        assert!(err.as_str().unwrap().contains("\"status_code\":404"));
    }

    #[test]
    fn delayed_batches_can_be_cancelled_and_bad_lines_fail() {
        let mut store = Store::default();
        let file = upload(
            &mut store,
            "{\"custom_id\":\"a\",\"url\":\"/v1/embeddings\",\"body\":{\"model\":\"m\",\"input\":\"x\"}}",
        );
        let req = json!({"input_file_id": file, "endpoint": "/v1/embeddings"});
        let id = json_of(
            store
                .create_batch(&req, &call(), Duration::from_secs(60))
                .unwrap(),
        )["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(json_of(store.batch(&id).unwrap())["status"], "in_progress");
        assert_eq!(
            json_of(store.cancel_batch(&id, &call()).unwrap())["status"],
            "cancelling"
        );
        assert_eq!(json_of(store.batch(&id).unwrap())["status"], "cancelled");

        let bad = upload(&mut store, "not json");
        let req = json!({"input_file_id": bad, "endpoint": "/v1/embeddings"});
        let b = json_of(store.create_batch(&req, &call(), Duration::ZERO).unwrap());
        assert_eq!(b["status"], "failed");
        assert_eq!(b["errors"]["data"][0]["line"], 1);
        assert_eq!(
            store.batch("batch_nope").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            json_of(store.list_batches())["data"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}
