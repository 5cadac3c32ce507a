//! Downloading model files (for `llmkit models pull`): streamed to a temporary file, hashed
//! on the way, verified, then renamed into place so a partial download never looks complete.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::ClientError;

/// Downloads `url` to `dest`, calling `progress(bytes_done, total)` as data arrives, and
/// returns the file's SHA-256 (hex). With `expected_sha256` set, a mismatch deletes the file
/// and fails.
pub async fn download_file(
    url: &str,
    dest: &Path,
    expected_sha256: Option<&str>,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<String, ClientError> {
    crate::http::install_crypto_provider();
    let client = reqwest::Client::builder()
        .user_agent(crate::USER_AGENT)
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| ClientError::InvalidConfig(format!("cannot build HTTP client: {e}")))?;
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| ClientError::Connect {
            url: url.to_string(),
            source: Box::new(e),
        })?;
    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        return Err(ClientError::Api {
            retry_after: None,
            rate_limit: None,
            status,
            error: None,
            request_id: None,
            raw: format!("GET {url} returned HTTP {status}"),
        });
    }
    let total = resp.content_length();
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_error(dir, &e))?;
    }
    let tmp = partial_path(dest);
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| io_error(&tmp, &e))?;
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(ClientError::Stream(format!(
                    "download of {url} failed: {e}"
                )));
            }
        };
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| io_error(&tmp, &e))?;
        done += chunk.len() as u64;
        progress(done, total);
    }
    file.flush().await.map_err(|e| io_error(&tmp, &e))?;
    drop(file);
    let sha = hex(&hasher.finalize());
    if let Some(expected) = expected_sha256
        && !expected.eq_ignore_ascii_case(&sha)
    {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(ClientError::ChecksumMismatch {
            url: url.to_string(),
            expected: expected.to_string(),
            actual: sha,
        });
    }
    tokio::fs::rename(&tmp, dest)
        .await
        .map_err(|e| io_error(dest, &e))?;
    Ok(sha)
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

fn io_error(path: &Path, e: &std::io::Error) -> ClientError {
    ClientError::File {
        what: format!("cannot write {}", path.display()),
        source: std::io::Error::new(e.kind(), e.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
