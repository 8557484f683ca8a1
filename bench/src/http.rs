//! One keep-alive HTTP/1.1 connection per worker, on hyper's low-level client: no pool, no redirect
//! handling, no cookie jar, so the generator spends its cycles on the wire and not on bookkeeping.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The content type of token, introspection and login requests.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// How long one request may take before the run counts it as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A response, fully read.
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// The `Location` header, if any.
    pub fn location(&self) -> Option<&str> {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok())
    }

    /// Whether the body contains `needle`.
    pub fn body_contains(&self, needle: &[u8]) -> bool {
        self.body.windows(needle.len()).any(|w| w == needle)
    }
}

/// One HTTP/1.1 connection to the server under test.
pub struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Opens a connection to `addr`.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the server closes it; either way
            // the next request on it reports the error.
            let _ = connection.await;
        });
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            sender,
        })
    }

    /// Opens a fresh connection in place of a broken one.
    pub async fn reconnect(&mut self) -> anyhow::Result<()> {
        *self = Self::connect(self.addr).await?;
        Ok(())
    }

    /// Sends `method path` with `headers` and `body`, and reads the whole response.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, &HeaderValue)],
        body: Option<(&'static str, Bytes)>,
    ) -> anyhow::Result<Response> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host);
        for (name, value) in headers {
            builder = builder.header(name, *value);
        }
        let body = match body {
            Some((content_type, body)) => {
                builder = builder.header(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                body
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(body))?;
        let exchange = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            anyhow::Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => result,
            Err(_) => bail!("no response within {REQUEST_TIMEOUT:?}"),
        }
    }

    /// `POST path` with a form body.
    pub async fn post_form(
        &mut self,
        path: &str,
        headers: &[(header::HeaderName, &HeaderValue)],
        form: impl Into<Bytes>,
    ) -> anyhow::Result<Response> {
        self.send(Method::POST, path, headers, Some((FORM, form.into())))
            .await
    }

    /// `GET path`.
    pub async fn get(
        &mut self,
        path: &str,
        headers: &[(header::HeaderName, &HeaderValue)],
    ) -> anyhow::Result<Response> {
        self.send(Method::GET, path, headers, None).await
    }
}

/// The value of an `Authorization: Basic` header for a client (RFC 6749 §2.3.1: each part is
/// form-urlencoded before base64).
pub fn basic_auth(client_id: &str, secret: &str) -> anyhow::Result<HeaderValue> {
    use base64::Engine as _;
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", encode(client_id), encode(secret));
    let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw));
    Ok(HeaderValue::from_str(&value)?)
}

/// Form-encodes `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}
