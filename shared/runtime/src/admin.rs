//! The admin listener, never the public one: `GET /metrics` (Prometheus text format),
//! `GET /livez` (the process is up) and `GET /readyz` (200, or 503 with a short reason).
//! The resolver serves the same routes with its own readiness check.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;

use crate::server::{ServeOptions, serve};

/// A readiness check: `Ok` when ready, else a short reason.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Serves the admin routes until `shutdown` resolves.
pub async fn serve_admin(
    listener: TcpListener,
    registry: Registry,
    ready: ReadinessCheck,
    shutdown: impl Future<Output = ()>,
) {
    let options = ServeOptions {
        request_read_timeout: Duration::from_secs(5),
        max_header_bytes: crate::server::MAX_HEADER_BYTES,
        max_connections: 64,
        grace: Duration::from_secs(1),
    };
    let handler = move |request: Request<hyper::body::Incoming>| {
        let registry = registry.clone();
        let ready = ready.clone();
        async move { route(request.method(), request.uri().path(), &registry, &ready).await }
    };
    serve(listener, handler, options, shutdown).await;
}

async fn route(
    method: &Method,
    path: &str,
    registry: &Registry,
    ready: &ReadinessCheck,
) -> Response<Full<Bytes>> {
    match (method, path) {
        (&Method::GET, "/metrics") => {
            let mut body = Vec::new();
            let encoder = TextEncoder::new();
            match encoder.encode(&registry.gather(), &mut body) {
                Ok(()) => text(StatusCode::OK, body, encoder.format_type()),
                Err(err) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    err.to_string().into_bytes(),
                    "text/plain",
                ),
            }
        }
        (&Method::GET, "/livez") => text(StatusCode::OK, b"ok\n".to_vec(), "text/plain"),
        (&Method::GET, "/readyz") => match ready().await {
            Ok(()) => text(StatusCode::OK, b"ready\n".to_vec(), "text/plain"),
            Err(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{reason}\n").into_bytes(),
                "text/plain",
            ),
        },
        (_, "/metrics" | "/livez" | "/readyz") => {
            text(StatusCode::METHOD_NOT_ALLOWED, Vec::new(), "text/plain")
        }
        _ => text(StatusCode::NOT_FOUND, Vec::new(), "text/plain"),
    }
}

fn text(status: StatusCode, body: Vec<u8>, content_type: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}
