//! A small HTTP client for the tests: signed webhooks (POST form, GET query), raw requests, and
//! admin-route reads. Every request is bounded by [`crate::WAIT`].

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::twilio::{self, Params};

/// The webhook route.
pub const WEBHOOK_PATH: &str = "/webhooks/conversations";

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.text()))
    }
}

/// Sends webhooks to one ingress, signed for [`twilio::PUBLIC_URL`] with [`twilio::AUTH_TOKEN`].
#[derive(Debug, Clone)]
pub struct WebhookClient {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl WebhookClient {
    /// A client for the ingress listening at `addr`.
    pub fn new(addr: std::net::SocketAddr) -> WebhookClient {
        WebhookClient {
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// POSTs `params` as a form, correctly signed.
    pub async fn post(&self, params: &Params) -> Answer {
        self.post_with(params, &[]).await
    }

    /// POSTs `params` as a form, correctly signed, with extra headers.
    pub async fn post_with(&self, params: &Params, headers: &[(&str, &str)]) -> Answer {
        let signature = twilio::sign(
            twilio::AUTH_TOKEN,
            &format!("{}{WEBHOOK_PATH}", twilio::PUBLIC_URL),
            params,
        );
        let mut all = vec![("X-Twilio-Signature", signature.as_str())];
        all.extend_from_slice(headers);
        self.post_form(WEBHOOK_PATH, params, &all).await
    }

    /// POSTs `params` as a form to `path` with exactly these headers (no signature added).
    pub async fn post_form(&self, path: &str, params: &Params, headers: &[(&str, &str)]) -> Answer {
        let body = form_encode(params);
        let mut all = vec![(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )];
        all.extend_from_slice(headers);
        self.send(Method::POST, path, &all, Bytes::from(body)).await
    }

    /// POSTs `params` as a signed form, returning transport errors instead of panicking.
    ///
    /// # Errors
    /// A connection error or a timeout.
    pub async fn try_send_post(&self, params: &Params) -> Result<Answer, String> {
        let signature = twilio::sign(
            twilio::AUTH_TOKEN,
            &format!("{}{WEBHOOK_PATH}", twilio::PUBLIC_URL),
            params,
        );
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Twilio-Signature", signature.as_str()),
        ];
        self.try_send(
            Method::POST,
            WEBHOOK_PATH,
            &headers,
            Bytes::from(form_encode(params)),
        )
        .await
    }

    /// GETs the webhook with `params` in the query, correctly signed.
    pub async fn get(&self, params: &Params) -> Answer {
        let path = format!("{WEBHOOK_PATH}?{}", form_encode(params));
        let signature = twilio::sign(
            twilio::AUTH_TOKEN,
            &format!("{}{path}", twilio::PUBLIC_URL),
            &[],
        );
        self.send(
            Method::GET,
            &path,
            &[("X-Twilio-Signature", &signature)],
            Bytes::new(),
        )
        .await
    }

    /// Sends any request.
    ///
    /// # Panics
    /// When the request fails or takes longer than [`crate::WAIT`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Answer {
        self.try_send(method, path, headers, body)
            .await
            .unwrap_or_else(|err| panic!("request to {path}: {err}"))
    }

    /// Sends any request, returning transport errors.
    ///
    /// # Errors
    /// A connection error, or a timeout after [`crate::WAIT`].
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|err| err.to_string())?;
        let response = tokio::time::timeout(crate::WAIT, self.client.request(request))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|err| err.to_string())?;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(crate::WAIT, body.collect())
            .await
            .map_err(|_| "body timed out".to_owned())?
            .map_err(|err| err.to_string())?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// GETs an admin route (`http://addr/path`).
///
/// # Panics
/// When the request fails.
pub async fn admin_get(addr: std::net::SocketAddr, path: &str) -> Answer {
    WebhookClient::new(addr)
        .send(Method::GET, path, &[], Bytes::new())
        .await
}

/// `application/x-www-form-urlencoded` encoding.
pub fn form_encode(params: &Params) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// The value of one series in a Prometheus text scrape, e.g.
/// `metric(&text, r#"frontline_resolver_messages_total{event_type="onParticipantAdded",outcome="modified"}"#)`.
/// A missing series is a failure, not a zero: a test that allows absence says so with
/// [`try_metric`].
///
/// # Panics
/// When the scrape does not hold `series`.
pub fn metric(text: &str, series: &str) -> f64 {
    try_metric(text, series).unwrap_or_else(|| panic!("no series {series} in the scrape:\n{text}"))
}

/// The value of the series named exactly `series` (name and labels, as in the text format), or
/// `None` when the scrape does not hold it.
pub fn try_metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// Serves `handler` over HTTP/1.1 on a random loopback port for the rest of the test (the local
/// stand-ins for services no test can reach); returns its address.
///
/// # Panics
/// When no port can be bound.
pub async fn serve_local<H, F>(handler: H) -> std::net::SocketAddr
where
    H: Fn(http::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = http::Response<Full<Bytes>>> + Send + 'static,
{
    serve(handler, None).await
}

/// As [`serve_local`], over TLS with `tls` (the local HTTPS stand-ins).
///
/// # Panics
/// When no port can be bound.
pub async fn serve_local_tls<H, F>(handler: H, tls: rustls::ServerConfig) -> std::net::SocketAddr
where
    H: Fn(http::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = http::Response<Full<Bytes>>> + Send + 'static,
{
    serve(
        handler,
        Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls))),
    )
    .await
}

async fn serve<H, F>(handler: H, tls: Option<tokio_rustls::TlsAcceptor>) -> std::net::SocketAddr
where
    H: Fn(http::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = http::Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            let service = hyper::service::service_fn(move |request| {
                let response = handler(request);
                async move { Ok::<_, std::convert::Infallible>(response.await) }
            });
            let tls = tls.clone();
            tokio::spawn(async move {
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    None => {
                        let _ = http
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    }
                    Some(tls) => {
                        // A client that refuses the certificate ends the handshake: no request.
                        if let Ok(stream) = tls.accept(stream).await {
                            let _ = http
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        }
                    }
                }
            });
        }
    });
    addr
}
