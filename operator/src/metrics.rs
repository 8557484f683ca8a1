//! Prometheus metrics (reconciles, errors and durations by controller; leadership) and the small HTTP
//! server that serves them with the health endpoints.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// The label set of per-controller metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `oauthclient`, `oauthpolicy` or `server`.
    pub controller: String,
}

type HistogramFamily = Family<ControllerLabels, Histogram, fn() -> Histogram>;

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    errors: Family<ControllerLabels, Counter>,
    durations: HistogramFamily,
    leader: Gauge,
    is_leader: AtomicBool,
}

fn duration_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.005, 2.0, 12,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gatehouse_operator");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let errors = Family::<ControllerLabels, Counter>::default();
        let durations: HistogramFamily = Family::new_with_constructor(duration_histogram);
        let leader = Gauge::default();
        registry.register(
            "reconciles",
            "Reconciles started, by controller",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by controller",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles took, by controller",
            durations.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            durations,
            leader,
            is_leader: AtomicBool::new(false),
        }
    }
}

/// Measures one reconcile; records its duration when dropped.
pub struct Timer<'a> {
    metrics: &'a Metrics,
    labels: ControllerLabels,
    start: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.metrics
            .durations
            .get_or_create(&self.labels)
            .observe(self.start.elapsed().as_secs_f64());
    }
}

impl Metrics {
    /// Counts a reconcile of `controller` and times it until the returned guard drops.
    pub fn reconcile(&self, controller: &str) -> Timer<'_> {
        let labels = ControllerLabels {
            controller: controller.to_owned(),
        };
        self.reconciles.get_or_create(&labels).inc();
        Timer {
            metrics: self,
            labels,
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile of `controller`.
    pub fn error(&self, controller: &str) {
        self.errors
            .get_or_create(&ControllerLabels {
                controller: controller.to_owned(),
            })
            .inc();
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
        self.is_leader.store(leading, Ordering::Relaxed);
    }

    /// Whether this replica leads.
    pub fn is_leader(&self) -> bool {
        self.is_leader.load(Ordering::Relaxed)
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Serves /metrics, /healthz and /readyz on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok" }))
        // A standby is ready too: it is healthy and waiting for the Lease.
        .route("/readyz", get(|| async { "ok" }))
        .with_state(metrics);
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(error = %e, "metrics server failed");
    }
}

async fn render(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_errors_and_durations_are_exported_by_controller() {
        let m = Metrics::default();
        drop(m.reconcile("oauthclient"));
        m.error("oauthclient");
        m.set_leader(true);
        let text = m.encode();
        assert!(
            text.contains("gatehouse_operator_reconciles_total{controller=\"oauthclient\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("gatehouse_operator_reconcile_errors_total{controller=\"oauthclient\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "gatehouse_operator_reconcile_duration_seconds_count{controller=\"oauthclient\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("gatehouse_operator_leader 1"), "{text}");
    }
}
