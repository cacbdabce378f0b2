//! The one error type of the webhook path and the one place it becomes an HTTP answer. Every
//! rejection is logged here with structured fields; the body is always empty.

use http::{StatusCode, header};

use crate::response::{HttpResponse, empty};
use crate::signature::SignatureError;

/// Why a webhook request was not handed to NATS.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// No route for this path.
    #[error("no such route")]
    NotFound,
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The methods it takes (the `Allow` header).
        allow: &'static str,
    },
    /// The body is over `MAX_BODY_BYTES`.
    #[error("body over {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The POST body is neither a form nor JSON with `bodySHA256`.
    #[error("unsupported content type {0:?}")]
    UnsupportedMediaType(String),
    /// The signature is missing or wrong.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A malformed request (no `EventType`, an unreadable body).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The whole request did not arrive within `REQUEST_READ_TIMEOUT_SECS`.
    #[error("the request did not arrive in time")]
    RequestTimeout,
    /// The body could not be read from the connection.
    #[error("reading the body failed: {0}")]
    Body(String),
}

impl Rejection {
    /// The status code SPEC.md assigns.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::NotFound => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::Signature(_) => StatusCode::FORBIDDEN,
            Rejection::BadRequest(_) | Rejection::Body(_) => StatusCode::BAD_REQUEST,
            Rejection::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// Logs the cause and builds the empty-bodied answer.
    pub fn into_response(self) -> HttpResponse {
        let status = self.status();
        let reason = match &self {
            Rejection::Signature(err) => Some(err.reason()),
            _ => None,
        };
        tracing::warn!(status = status.as_u16(), cause = %self, reason, "webhook rejected");
        let mut response = empty(status);
        if let Rejection::MethodNotAllowed { allow } = self {
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of a late body may still be on its way: this connection is done.
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        response
    }
}
