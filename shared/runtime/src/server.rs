//! The HTTP/1.1 accept loop every listener uses (the ingress's public one and both admin
//! listeners): a time limit on reading each request, a cap on header size and on open
//! connections, and graceful shutdown (stop accepting, let every in-flight request finish, give
//! up after the grace period).
//!
//! The read limit covers the whole request. hyper enforces it on the headers (closing the
//! connection); the body is read by the handler, which finds the same deadline in the request's
//! [`ReadDeadline`] extension. The clock starts when the connection is ready for the request:
//! accepted, or done with the previous one (so an idle keep-alive connection is closed too).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Time a client has to send a whole request, headers and body.
    pub request_read_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; over it: 431 and close.
    pub max_header_bytes: usize,
    /// Open connections at once.
    pub max_connections: usize,
    /// Time in-flight requests get after shutdown begins.
    pub grace: Duration,
}

/// The largest request head any listener accepts: 16 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The most a connection buffers while reading: bodies are read through it in pieces.
const MAX_BUFFER_BYTES: usize = 64 * 1024;

/// When the whole request must have arrived: a request extension set by [`serve`] for the
/// handler, which bounds its body read with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadDeadline(pub tokio::time::Instant);

/// Serves `handler` on `listener` until `shutdown` resolves, then finishes in-flight requests.
/// Returns `false` when the grace period ran out first.
pub async fn serve<H, F>(
    listener: TcpListener,
    handler: H,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> bool
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(options.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.request_read_timeout)
        .max_header_size(options.max_header_bytes)
        .max_buf_size(MAX_BUFFER_BYTES.max(options.max_header_bytes));
    let spawn = |stream, peer, permit| {
        spawn_connection(
            &builder,
            &graceful,
            stream,
            peer,
            handler.clone(),
            permit,
            options.request_read_timeout,
        );
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(cause = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing a new connection");
            continue;
        };
        spawn(stream, peer, permit);
    }
    // Connections already queued were opened before the signal: serve them too.
    while let Some(Ok((stream, peer))) = listener.accept().now_or_never() {
        if let Ok(permit) = connections.clone().try_acquire_owned() {
            spawn(stream, peer, permit);
        }
    }
    drop(listener);
    // A request may be sent but not yet read on an open connection, which then looks idle and
    // would be closed: give such requests a moment to be read before closing idle connections.
    tokio::time::sleep(SETTLE).await;
    tokio::select! {
        () = graceful.shutdown() => true,
        () = tokio::time::sleep(options.grace) => {
            tracing::warn!(grace_secs = options.grace.as_secs(), "grace period over; closing remaining connections");
            false
        }
    }
}

/// How long open connections get, after the signal, to have requests already sent read.
const SETTLE: Duration = Duration::from_millis(300);

/// Serves one connection under the graceful-shutdown watch; the permit is held until it ends.
fn spawn_connection<H, F>(
    builder: &http1::Builder,
    graceful: &GracefulShutdown,
    stream: TcpStream,
    peer: SocketAddr,
    handler: H,
    permit: OwnedSemaphorePermit,
    read_timeout: Duration,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    // When the connection became ready for its next request, in nanoseconds after `accepted`
    // (HTTP/1.1 serves one request at a time per connection).
    let accepted = tokio::time::Instant::now();
    let ready_at = Arc::new(AtomicU64::new(0));
    let service = service_fn(move |mut request: Request<Incoming>| {
        let ready = accepted + Duration::from_nanos(ready_at.load(Ordering::Relaxed));
        request
            .extensions_mut()
            .insert(ReadDeadline(ready + read_timeout));
        let ready_at = ready_at.clone();
        // The handler's future is made where it is awaited: made outside and moved in, it
        // would be copied (a request's future is kilobytes).
        let handler = handler.clone();
        async move {
            let response = handler(request).await;
            let done = u64::try_from(accepted.elapsed().as_nanos()).unwrap_or(u64::MAX);
            ready_at.store(done, Ordering::Relaxed);
            Ok::<_, Infallible>(response)
        }
    });
    let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%peer, cause = %err, "connection ended with an error");
        }
        drop(permit);
    });
}
