//! Prometheus metrics: tokens issued by grant, errors by code, and request latency by route. The
//! middleware that records the last two lives in [`crate::http::metrics`].

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

    /// Counts an OAuth error response.
    pub fn oauth_error(&self, code: ErrorCode) {
        self.errors
            .get_or_create(&ErrorLabels {
                error: code.as_str().to_owned(),
            })
            .inc();
    }

    /// Records one request's latency.
    pub fn request_served(&self, method: String, route: String, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .observe(seconds);
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
