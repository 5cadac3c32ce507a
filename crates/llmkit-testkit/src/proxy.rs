//! `TcpProxy`: a loopback TCP proxy in front of a service that a test can cut and restore,
//! to play PostgreSQL or Redis going down and coming back while the service itself runs on.

use std::io;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

/// Forwards connections on 127.0.0.1:`port` to a target `host:port`. [`cut`](Self::cut)
/// closes every connection and drops new ones at once; [`restore`](Self::restore) lets them
/// through again. Dropping it stops it.
pub struct TcpProxy {
    port: u16,
    state: Arc<Mutex<(bool, JoinSet<()>)>>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: impl Into<String>) -> io::Result<Self> {
        let target = target.into();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
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
        Ok(Self {
            port,
            state,
            accept,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `url` (`scheme://[user@]host:port/...`) with its host and port replaced by the proxy's.
    pub fn via(&self, url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_string();
        };
        let (user, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
        let path = rest.find('/').map_or("", |i| &rest[i..]);
        let at = if user.is_empty() { "" } else { "@" };
        format!("{scheme}://{user}{at}127.0.0.1:{}{path}", self.port)
    }

    pub async fn cut(&self) {
        let mut guard = self.state.lock().await;
        guard.0 = false;
        guard.1.abort_all();
    }

    pub async fn restore(&self) {
        self.state.lock().await.0 = true;
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `host:port` of a `scheme://[user@]host:port/...` URL.
pub fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_rewritten_to_the_proxy() {
        assert_eq!(
            host_port("postgres://llmkit@127.0.0.1:55432/llmkit").as_deref(),
            Some("127.0.0.1:55432")
        );
        assert_eq!(
            host_port("redis://127.0.0.1:56379/").as_deref(),
            Some("127.0.0.1:56379")
        );
        assert_eq!(host_port("nonsense"), None);
    }

    #[tokio::test]
    async fn via_keeps_the_user_and_path() {
        let p = TcpProxy::start("127.0.0.1:9").await.unwrap();
        let port = p.port();
        assert_eq!(
            p.via("postgres://llmkit@10.0.0.1:5432/db"),
            format!("postgres://llmkit@127.0.0.1:{port}/db")
        );
        assert_eq!(
            p.via("redis://10.0.0.1:6379/"),
            format!("redis://127.0.0.1:{port}/")
        );
    }
}
