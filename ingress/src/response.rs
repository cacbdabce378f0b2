//! The few shapes of answer the public listener gives.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

/// An HTTP answer.
pub type HttpResponse = Response<Full<Bytes>>;

/// An answer with no body.
pub fn empty(status: StatusCode) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// A 200 answer with a JSON body.
pub fn json(body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
