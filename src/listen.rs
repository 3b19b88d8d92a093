//! The listeners' own bounds, which the protocol servers do not give by default: at most
//! `max_connections` open at once (the rest wait in the kernel's backlog, unaccepted), request
//! headers read within `header_timeout` (a client that opens connections and sends a byte a
//! minute holds none for long), HTTP/2 streams per connection capped, and a graceful drain.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy)]
pub struct ListenLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// HTTP/2 streams (requests) open at once on one connection.
    pub max_streams: u32,
}

/// HTTP/2's connection preface. Until a connection has sent it whole, or something that is not
/// a prefix of it (then it speaks HTTP/1, and hyper's header timeout runs), no server's own timer
/// runs: hyper-util's auto builder starts its timer only after telling the protocols apart, and
/// HTTP/2 has none. So the first bytes have a deadline here.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection that holds one of its listener's connection slots while it is open.
pub struct Limited {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    /// Until the protocol is settled: the deadline, and the bytes of the preface seen so far.
    opening: Option<(Pin<Box<tokio::time::Sleep>>, usize)>,
}

impl AsyncRead for Limited {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let Some((deadline, seen)) = self.opening.as_mut() {
            let new = &buf.filled()[before..];
            let settled = match &polled {
                Poll::Ready(Ok(())) if new.is_empty() => true, // end of stream
                Poll::Ready(Ok(())) => {
                    let n = new.len().min(PREFACE.len() - *seen);
                    let still_preface = new[..n] == PREFACE[*seen..*seen + n];
                    *seen += n;
                    !still_preface || *seen == PREFACE.len()
                }
                _ => false,
            };
            if settled {
                self.opening = None;
            } else if polled.is_pending() && deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within the header timeout",
                )));
            }
        }
        polled
    }
}

impl AsyncWrite for Limited {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Limited {
    type ConnectInfo = <TcpStream as tonic::transport::server::Connected>::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// Accepts once a slot is free. Accept errors (out of file descriptors, say) are logged and
/// retried after a pause rather than ending the server.
async fn accept(listener: &TcpListener, slots: &Arc<Semaphore>, opening: Duration) -> Limited {
    let slot = slots.clone().acquire_owned().await.expect("never closed");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let deadline = Box::pin(tokio::time::sleep(opening));
                return Limited { stream, _slot: slot, opening: Some((deadline, 0)) };
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The connections of a listener, for tonic's `serve_with_incoming_shutdown`.
pub fn incoming(
    listener: TcpListener,
    limits: ListenLimits,
) -> impl tokio_stream::Stream<Item = io::Result<Limited>> + Send + 'static {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    futures_util::stream::unfold((listener, slots), move |(listener, slots)| async move {
        let conn = accept(&listener, &slots, limits.header_timeout).await;
        Some((Ok(conn), (listener, slots)))
    })
}

/// Serves `router` over HTTP/1.1 and HTTP/2 until `stop` resolves, then lets the connections
/// finish their requests.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    limits: ListenLimits,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let conn = tokio::select! {
            conn = accept(&listener, &slots, limits.header_timeout) => conn,
            () = &mut stop => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(conn), service).into_owned();
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that goes away mid-request, or one too slow with its headers, ends here.
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
