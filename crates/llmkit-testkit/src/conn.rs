//! Accepted connections that a handler can reset: the `reset` fault trips a per-connection switch,
//! and the socket then fails every read and write and closes with an RST.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections carry a reset switch.
#[derive(Debug)]
pub(crate) struct MockListener(pub TcpListener);

impl Listener for MockListener {
    type Io = ResettableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    // Streamed chunks must leave at once, not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let io = ResettableStream {
                        inner: stream,
                        tripped: Arc::new(AtomicBool::new(false)),
                    };
                    return (io, addr);
                }
                // Out of file descriptors and the like: wait and try again.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Handed to every request (as `ConnectInfo`) to reset its connection.
#[derive(Debug, Clone)]
pub(crate) struct ResetSwitch(Arc<AtomicBool>);

impl ResetSwitch {
    /// From now on the connection fails; nothing more of the response reaches the client.
    pub(crate) fn trip(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, MockListener>> for ResetSwitch {
    fn connect_info(stream: IncomingStream<'_, MockListener>) -> Self {
        ResetSwitch(stream.io().tripped.clone())
    }
}

/// A TCP stream that turns into a reset once its switch is tripped.
#[derive(Debug)]
pub(crate) struct ResettableStream {
    inner: TcpStream,
    tripped: Arc<AtomicBool>,
}

impl ResettableStream {
    /// When tripped, arranges for the close to send an RST and returns the error to report.
    fn check(&self) -> io::Result<()> {
        if !self.tripped.load(Ordering::SeqCst) {
            return Ok(());
        }
        let _ = self.inner.set_zero_linger();
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "mock fault: reset",
        ))
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
