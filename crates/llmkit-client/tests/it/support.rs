//! Helpers: clients tuned for fast tests, and a tiny raw-TCP HTTP server with scripted answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use llmkit_client::{ClientConfig, HttpClient, RetryPolicy, Timeouts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A config with small backoff and stall timeout, for `base` (a URL without `/v1`).
pub(crate) fn fast_config(base: &str, max_retries: u32) -> ClientConfig {
    ClientConfig::new(format!("{base}/v1"))
        .timeouts(Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(20),
            stall: Duration::from_millis(500),
        })
        .retry(RetryPolicy {
            max_retries,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
        })
}

pub(crate) fn client(cfg: ClientConfig) -> HttpClient {
    HttpClient::new(cfg).expect("client builds")
}

/// A raw HTTP/1.1 server: the n-th connection gets `answers[min(n, last)]`, then is closed.
pub(crate) struct RawServer {
    pub url: String,
    pub count: Arc<AtomicUsize>,
}

impl RawServer {
    pub(crate) async fn start(answers: Vec<String>) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let answer = answers[n.min(answers.len() - 1)].clone();
                tokio::spawn(async move {
                    read_request(&mut sock).await;
                    let _ = sock.write_all(answer.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        RawServer { url, count }
    }

    pub(crate) fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and a `content-length` body) and returns the head.
pub(crate) async fn read_request(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    while let Ok(n) = sock.read(&mut piece).await {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&piece[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                match sock.read(&mut piece).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&piece[..n]),
                }
            }
            return head;
        }
    }
    String::new()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A complete HTTP response with a JSON body.
pub(crate) fn http_json(status: &str, extra_headers: &[(&str, &str)], body: &str) -> String {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in extra_headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

/// A minimal successful chat completion body.
pub(crate) fn chat_body(text: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
    .to_string()
}
