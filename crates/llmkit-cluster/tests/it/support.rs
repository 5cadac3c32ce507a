//! Shared helpers: the service URLs, unique names, and a loopback TCP proxy that a test can
//! cut and restore to play a service going down and coming back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llmkit_cluster::{PgOptions, PgStore};
use llmkit_testkit::fixtures::require_service;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

pub(crate) fn pg_url() -> Option<String> {
    require_service("LLMKIT_TEST_POSTGRES_URL")
}

pub(crate) fn redis_url() -> Option<String> {
    require_service("LLMKIT_TEST_REDIS_URL")
}

/// A name no other test (or earlier run) uses.
pub(crate) fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos:x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

pub(crate) async fn pg(url: &str) -> PgStore {
    PgStore::connect(
        url,
        &PgOptions {
            max_connections: 8,
            timeout: Duration::from_secs(2),
        },
    )
    .await
    .unwrap()
}

/// A TCP proxy on 127.0.0.1 in front of `target` (`host:port`). `cut` closes every
/// connection and refuses new ones (they are accepted and dropped at once); `restore`
/// lets them through again.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    state: Arc<Mutex<(bool, JoinSet<()>)>>,
    _accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new((true, JoinSet::new())));
        let st = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut guard = st.lock().await;
                if !guard.0 {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                guard.1.spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Self {
            port,
            state,
            _accept: accept,
        }
    }

    pub(crate) async fn cut(&self) {
        let mut guard = self.state.lock().await;
        guard.0 = false;
        guard.1.abort_all();
    }

    pub(crate) async fn restore(&self) {
        self.state.lock().await.0 = true;
    }
}

/// `host:port` of a `scheme://[user@]host:port/...` URL.
pub(crate) fn host_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap().to_string()
}

/// `url` with its host and port replaced by the proxy's.
pub(crate) fn via(url: &str, proxy: &Proxy) -> String {
    url.replacen(&host_port(url), &format!("127.0.0.1:{}", proxy.port), 1)
}
