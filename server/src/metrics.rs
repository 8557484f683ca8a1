//! Prometheus metrics: tokens issued by grant, errors by code, and request latency by route. The
//! latency middleware reads the [`ErrorCode`] that [`crate::oauth::OAuthError`] leaves in the response.

use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::oauth::ErrorCode;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

/// The server's metrics and their registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    tokens: Family<GrantLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let tokens = Family::<GrantLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let mut registry = Registry::with_prefix("gatehouse");
        registry.register(
            "tokens_issued",
            "Access tokens issued, by grant type",
            tokens.clone(),
        );
        registry.register(
            "oauth_errors",
            "OAuth error responses, by error code",
            errors.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Request latency, by method, route and status",
            latency.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            tokens,
            errors,
            latency,
        }
    }
}

impl Metrics {
    /// Counts an issued token.
    pub fn token_issued(&self, grant_type: &str) {
        self.tokens
            .get_or_create(&GrantLabels {
                grant_type: grant_type.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        out
    }
}

/// Middleware recording latency and error codes.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        state
            .metrics
            .errors
            .get_or_create(&ErrorLabels {
                error: code.as_str().to_owned(),
            })
            .inc();
    }
    state
        .metrics
        .latency
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
