//! Remote jobs on `HttpClient`: file upload (multipart, streamed from disk) and download
//! (streamed to disk), batches, and fine-tuning jobs with their events and checkpoints.
//!
//! Every call goes through the same headers, Azure URLs, retries and error hints as chat.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use llmkit_types::{
    Batch, CreateBatchRequest, CreateFineTuningJobRequest, FileObject, FineTuningCheckpoint,
    FineTuningEvent, FineTuningJob, ListPage,
};
use reqwest::Method;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{ClientError, truncate_raw};
use crate::http::{
    Failure, HttpClient, Next, RawBody, Response, api_failure, body_error, meta_from, read_body,
};

/// Size of the pieces a file is read and sent in.
const CHUNK: usize = 256 * 1024;

impl HttpClient {
    /// `POST /files`: uploads `path` as multipart form data with `purpose` (`batch`,
    /// `fine-tune`). The file is streamed from disk, and re-read for each retry.
    pub async fn upload_file(
        &self,
        path: &Path,
        purpose: &str,
    ) -> Result<Response<FileObject>, ClientError> {
        let file_err = |source| ClientError::File {
            what: format!("cannot read {}", path.display()),
            source,
        };
        let len = tokio::fs::metadata(path).await.map_err(file_err)?.len();
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload.jsonl".into());
        let boundary = format!("llmkit-{:016x}", rand::random::<u64>());
        let head = Bytes::from(form_head(&boundary, purpose, &filename));
        let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        let total = head.len() as u64 + len + tail.len() as u64;
        let url = self.url_for("files", None)?;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let file = tokio::fs::File::open(path).await.map_err(file_err)?;
            let body = RawBody {
                content_type: format!("multipart/form-data; boundary={boundary}"),
                length: Some(total),
                body: reqwest::Body::wrap_stream(multipart_stream(
                    head.clone(),
                    file,
                    tail.clone(),
                )),
            };
            let timeout = self.timeouts().request;
            let result = match self.send_raw(Method::POST, &url, Some(body), timeout).await {
                Ok(resp) => self.decode::<FileObject>(resp, "the uploaded file").await,
                Err(f) => Err(f),
            };
            match self.settle(result, attempt, started).await {
                Some(done) => return done,
                None => continue,
            }
        }
    }

    /// `GET /files/{id}`.
    pub async fn file(&self, id: &str) -> Result<Response<FileObject>, ClientError> {
        self.get_typed(&format!("files/{}", checked_id(id)?), "the file")
            .await
    }

    /// `DELETE /files/{id}`.
    pub async fn delete_file(&self, id: &str) -> Result<(), ClientError> {
        let url = self.url_for(&format!("files/{}", checked_id(id)?), None)?;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let timeout = self.timeouts().request;
            let result = match self.send_raw(Method::DELETE, &url, None, timeout).await {
                Ok(resp) => self.decode::<serde_json::Value>(resp, "the deletion").await,
                Err(f) => Err(f),
            };
            match self.settle(result, attempt, started).await {
                Some(done) => return done.map(|_| ()),
                None => continue,
            }
        }
    }

    /// `GET /files/{id}/content`, streamed into `dest` (through `dest.part`, renamed at the
    /// end, so `dest` is either absent or whole). A broken download starts again, within the
    /// retry policy. Returns the bytes written.
    pub async fn download_file(&self, id: &str, dest: &Path) -> Result<u64, ClientError> {
        let url = self.url_for(&format!("files/{}/content", checked_id(id)?), None)?;
        let part = dest.with_extension("part");
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Large files take long: the stall timeout guards the body, not the total time.
            let timeout = self.timeouts().request.max(Duration::from_secs(3600));
            let result = match self.send_raw(Method::GET, &url, None, timeout).await {
                Ok(resp) => self.stream_to(resp, &part).await,
                Err(f) => Err(f),
            };
            match result {
                Ok(n) => {
                    tokio::fs::rename(&part, dest)
                        .await
                        .map_err(|source| ClientError::File {
                            what: format!("cannot write {}", dest.display()),
                            source,
                        })?;
                    return Ok(n);
                }
                Err(fail) => {
                    let _ = tokio::fs::remove_file(&part).await;
                    match self.next_step(fail, attempt) {
                        Next::Wait(d) => tokio::time::sleep(d).await,
                        Next::Fail(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// `POST /batches`.
    pub async fn create_batch(
        &self,
        req: &CreateBatchRequest,
    ) -> Result<Response<Batch>, ClientError> {
        self.post_typed("batches", req, "the batch").await
    }

    /// `GET /batches/{id}`.
    pub async fn batch(&self, id: &str) -> Result<Response<Batch>, ClientError> {
        self.get_typed(&format!("batches/{}", checked_id(id)?), "the batch")
            .await
    }

    /// `POST /batches/{id}/cancel`.
    pub async fn cancel_batch(&self, id: &str) -> Result<Response<Batch>, ClientError> {
        let path = format!("batches/{}/cancel", checked_id(id)?);
        self.post_typed(&path, &serde_json::json!({}), "the batch")
            .await
    }

    /// `GET /batches?limit=&after=`, newest first.
    pub async fn list_batches(
        &self,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Response<ListPage<Batch>>, ClientError> {
        self.get_typed(&paged("batches", limit, after)?, "the batch list")
            .await
    }

    /// `POST /fine_tuning/jobs`.
    pub async fn create_fine_tuning_job(
        &self,
        req: &CreateFineTuningJobRequest,
    ) -> Result<Response<FineTuningJob>, ClientError> {
        self.post_typed("fine_tuning/jobs", req, "the fine-tuning job")
            .await
    }

    /// `GET /fine_tuning/jobs/{id}`.
    pub async fn fine_tuning_job(&self, id: &str) -> Result<Response<FineTuningJob>, ClientError> {
        let path = format!("fine_tuning/jobs/{}", checked_id(id)?);
        self.get_typed(&path, "the fine-tuning job").await
    }

    /// `GET /fine_tuning/jobs?limit=&after=`, newest first.
    pub async fn list_fine_tuning_jobs(
        &self,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Response<ListPage<FineTuningJob>>, ClientError> {
        let path = paged("fine_tuning/jobs", limit, after)?;
        self.get_typed(&path, "the fine-tuning job list").await
    }

    /// `POST /fine_tuning/jobs/{id}/cancel`.
    pub async fn cancel_fine_tuning_job(
        &self,
        id: &str,
    ) -> Result<Response<FineTuningJob>, ClientError> {
        let path = format!("fine_tuning/jobs/{}/cancel", checked_id(id)?);
        self.post_typed(&path, &serde_json::json!({}), "the fine-tuning job")
            .await
    }

    /// `GET /fine_tuning/jobs/{id}/events?limit=&after=`, newest first.
    pub async fn fine_tuning_events(
        &self,
        id: &str,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Response<ListPage<FineTuningEvent>>, ClientError> {
        let path = paged(
            &format!("fine_tuning/jobs/{}/events", checked_id(id)?),
            limit,
            after,
        )?;
        self.get_typed(&path, "the fine-tuning events").await
    }

    /// `GET /fine_tuning/jobs/{id}/checkpoints`.
    pub async fn fine_tuning_checkpoints(
        &self,
        id: &str,
    ) -> Result<Response<ListPage<FineTuningCheckpoint>>, ClientError> {
        let path = format!("fine_tuning/jobs/{}/checkpoints", checked_id(id)?);
        self.get_typed(&path, "the fine-tuning checkpoints").await
    }

    async fn post_typed<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        what: &str,
    ) -> Result<Response<T>, ClientError> {
        let value = serde_json::to_value(body).map_err(|e| {
            ClientError::InvalidInput(format!("the request cannot be serialised: {e}"))
        })?;
        let resp = self.post_json(path, &value).await?;
        typed(resp, what)
    }

    async fn get_typed<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Response<T>, ClientError> {
        let resp = self.get_json(path).await?;
        typed(resp, what)
    }

    /// Reads and decodes one attempt's answer.
    async fn decode<T: DeserializeOwned>(
        &self,
        resp: reqwest::Response,
        what: &str,
    ) -> Result<Response<T>, Failure> {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = read_body(resp, self.stall_timeout())
            .await
            .map_err(Failure::retryable)?;
        if !status.is_success() {
            return Err(api_failure(status, &headers, &bytes));
        }
        let body = serde_json::from_slice::<T>(&bytes).map_err(|source| {
            Failure::retryable(ClientError::Decode {
                what: what.to_string(),
                raw: truncate_raw(&String::from_utf8_lossy(&bytes)),
                source,
            })
        })?;
        Ok(Response {
            body,
            meta: meta_from(status, &headers),
        })
    }

    /// Finishes an attempt: `Some(result)` to return, `None` to try again (after waiting).
    async fn settle<T>(
        &self,
        result: Result<Response<T>, Failure>,
        attempt: u32,
        started: Instant,
    ) -> Option<Result<Response<T>, ClientError>> {
        match result {
            Ok(mut r) => {
                r.meta.attempts = attempt;
                r.meta.latency = started.elapsed();
                Some(Ok(r))
            }
            Err(fail) => match self.next_step(fail, attempt) {
                Next::Wait(d) => {
                    tokio::time::sleep(d).await;
                    None
                }
                Next::Fail(e) => Some(Err(e)),
            },
        }
    }

    /// Writes a response body to `part`, failing on a stall or a broken connection.
    async fn stream_to(&self, resp: reqwest::Response, part: &Path) -> Result<u64, Failure> {
        let status = resp.status();
        let headers = resp.headers().clone();
        if !status.is_success() {
            let bytes = read_body(resp, self.stall_timeout())
                .await
                .map_err(Failure::retryable)?;
            return Err(api_failure(status, &headers, &bytes));
        }
        let write_err = |source| Failure {
            error: ClientError::File {
                what: format!("cannot write {}", part.display()),
                source,
            },
            retry: crate::retry::Retry::No,
        };
        let file = tokio::fs::File::create(part).await.map_err(write_err)?;
        let mut out = tokio::io::BufWriter::with_capacity(CHUNK, file);
        let mut stream = resp.bytes_stream();
        let mut n = 0u64;
        loop {
            match tokio::time::timeout(self.stall_timeout(), stream.next()).await {
                Err(_) => {
                    return Err(Failure::retryable(ClientError::StreamStalled {
                        after: self.stall_timeout(),
                    }));
                }
                Ok(None) => break,
                Ok(Some(Ok(piece))) => {
                    out.write_all(&piece).await.map_err(write_err)?;
                    n += piece.len() as u64;
                }
                Ok(Some(Err(e))) => return Err(Failure::retryable(body_error(&e))),
            }
        }
        out.flush().await.map_err(write_err)?;
        out.into_inner().sync_all().await.map_err(write_err)?;
        Ok(n)
    }
}

/// Re-decodes a raw JSON answer into its type.
fn typed<T: DeserializeOwned>(
    resp: Response<serde_json::Value>,
    what: &str,
) -> Result<Response<T>, ClientError> {
    let raw = resp.body;
    let body = T::deserialize(&raw).map_err(|source| ClientError::Decode {
        what: what.to_string(),
        raw: truncate_raw(&raw.to_string()),
        source,
    })?;
    Ok(Response {
        body,
        meta: resp.meta,
    })
}

/// Ids go into URL paths: refuse anything that would change the path or query.
pub(crate) fn checked_id(id: &str) -> Result<&str, ClientError> {
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'));
    if ok {
        Ok(id)
    } else {
        Err(ClientError::InvalidInput(format!(
            "`{id}` is not a valid id"
        )))
    }
}

pub(crate) fn paged(
    path: &str,
    limit: Option<u32>,
    after: Option<&str>,
) -> Result<String, ClientError> {
    let mut q = Vec::new();
    if let Some(l) = limit {
        q.push(format!("limit={l}"));
    }
    if let Some(a) = after {
        q.push(format!("after={}", checked_id(a)?));
    }
    Ok(if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    })
}

/// The form parts before the file's bytes: `purpose`, then the `file` part's header.
fn form_head(boundary: &str, purpose: &str, filename: &str) -> String {
    let filename: String = filename
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
}

/// The multipart body as a stream: the head, the file in pieces, the closing boundary.
fn multipart_stream(
    head: Bytes,
    file: tokio::fs::File,
    tail: Bytes,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    enum State {
        Head(Bytes, tokio::fs::File, Bytes),
        Body(tokio::fs::File, Bytes),
        Done,
    }
    futures::stream::unfold(State::Head(head, file, tail), |state| async move {
        match state {
            State::Head(h, f, t) => Some((Ok(h), State::Body(f, t))),
            State::Body(mut f, t) => {
                let mut buf = vec![0u8; CHUNK];
                match f.read(&mut buf).await {
                    Ok(0) => Some((Ok(t), State::Done)),
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Bytes::from(buf)), State::Body(f, t)))
                    }
                    Err(e) => Some((Err(e), State::Done)),
                }
            }
            State::Done => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_pages_are_checked() {
        assert!(checked_id("ftjob-abc_1:2.3").is_ok());
        assert!(checked_id("../x").is_err());
        assert!(checked_id("a?b").is_err());
        assert!(checked_id("").is_err());
        assert_eq!(
            paged("batches", Some(5), Some("batch_1")).unwrap(),
            "batches?limit=5&after=batch_1"
        );
        assert_eq!(paged("batches", None, None).unwrap(), "batches");
    }

    #[test]
    fn form_head_escapes_the_filename() {
        let h = form_head("b", "batch", "we\"ird\n.jsonl");
        assert!(h.contains("filename=\"we_ird_.jsonl\""), "{h}");
        assert!(h.starts_with("--b\r\n"));
    }
}
