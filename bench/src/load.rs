//! The fixed-concurrency runner: one task and one keep-alive connection per unit of concurrency, each
//! prepared outside the clock, then a warm-up that is not recorded and a measured window. Latencies go
//! into one HdrHistogram per worker (microseconds), merged at the end; failures are counted by kind.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;

use crate::http::Conn;
use crate::proc;

/// Why one operation failed. The key groups failures in the report: `token 400`, `transport`.
#[derive(Debug)]
pub struct Failure {
    /// The group, such as `token 401`.
    pub key: String,
    /// Detail from the first occurrence, such as the response body.
    pub detail: String,
}

impl Failure {
    /// An unexpected status at `step`.
    pub fn status(step: &str, response: &crate::http::Response) -> Self {
        let body = String::from_utf8_lossy(&response.body);
        Self {
            key: format!("{step} {}", response.status.as_u16()),
            detail: body.chars().take(300).collect(),
        }
    }

    /// A response that had the right status but the wrong content.
    pub fn content(step: &str, detail: impl Into<String>) -> Self {
        Self {
            key: format!("{step} bad response"),
            detail: detail.into(),
        }
    }

    /// A connection-level failure, or a timeout.
    pub fn transport(step: &str, error: &anyhow::Error) -> Self {
        Self {
            key: format!("{step} transport"),
            detail: format!("{error:#}"),
        }
    }
}

/// One benchmark scenario: a per-connection setup, then one operation repeated.
pub trait Scenario: Send + Sync + 'static {
    /// State a worker carries from one operation to the next, such as its current refresh token.
    type Worker: Send + 'static;

    /// Prepares worker `index` on its connection. Not measured.
    fn prepare(
        &self,
        conn: &mut Conn,
        index: usize,
    ) -> impl Future<Output = anyhow::Result<Self::Worker>> + Send;

    /// One operation, such as one token request or one whole authorization-code flow.
    fn step(
        &self,
        conn: &mut Conn,
        worker: &mut Self::Worker,
    ) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// How hard and how long to push.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// The server's public address.
    pub addr: SocketAddr,
    /// Connections, each with one request in flight.
    pub concurrency: usize,
    /// Unrecorded time before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// The server's process id, to sample its RSS and CPU time.
    pub server_pid: Option<u32>,
}

/// What a run measured.
pub struct Outcome {
    /// Operations that succeeded in the measured window.
    pub ok: u64,
    /// Latency of successful operations, in microseconds.
    pub latency: Histogram<u64>,
    /// Failures in warm-up or the measured window, by key, with the first detail.
    pub errors: BTreeMap<String, (u64, String)>,
    /// From the start of the measured window to the last completion in it.
    pub elapsed: Duration,
    /// CPU cores the server used during the measured window.
    pub server_cpu: Option<f64>,
    /// CPU cores this load generator used during the measured window.
    pub generator_cpu: Option<f64>,
    /// The server's highest sampled VmRSS during the run, in KiB.
    pub server_rss_peak_kib: Option<u64>,
}

impl Outcome {
    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }

    /// Failed operations.
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }
}

struct WorkerResult {
    ok: u64,
    latency: Histogram<u64>,
    errors: BTreeMap<String, (u64, String)>,
    last: Instant,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs to 60 s at three significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).context("creating a histogram")
}

/// Runs `scenario` under `load`.
pub async fn run<S: Scenario>(scenario: Arc<S>, load: Load) -> anyhow::Result<Outcome> {
    let mut prepared = Vec::with_capacity(load.concurrency);
    let mut preparing = tokio::task::JoinSet::new();
    for index in 0..load.concurrency {
        let scenario = Arc::clone(&scenario);
        preparing.spawn(async move {
            let mut conn = Conn::connect(load.addr).await?;
            let worker = scenario
                .prepare(&mut conn, index)
                .await
                .with_context(|| format!("preparing worker {index}"))?;
            anyhow::Ok((conn, worker))
        });
    }
    while let Some(joined) = preparing.join_next().await {
        prepared.push(joined??);
    }

    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let sampler = load
        .server_pid
        .map(|pid| tokio::spawn(proc::sample_rss_until(pid, end)));
    let mut running = tokio::task::JoinSet::new();
    for (mut conn, mut worker) in prepared {
        let scenario = Arc::clone(&scenario);
        running.spawn(async move {
            let mut result = WorkerResult {
                ok: 0,
                latency: histogram()?,
                errors: BTreeMap::new(),
                last: measure_from,
            };
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let outcome = scenario.step(&mut conn, &mut worker).await;
                let finished = Instant::now();
                match outcome {
                    Ok(()) if began >= measure_from => {
                        let micros =
                            u64::try_from(finished.duration_since(began).as_micros()).unwrap_or(u64::MAX);
                        result.latency.saturating_record(micros.max(1));
                        result.ok += 1;
                        result.last = result.last.max(finished);
                    }
                    Ok(()) => {}
                    Err(failure) => {
                        let transport = failure.key.ends_with("transport");
                        let entry = result
                            .errors
                            .entry(failure.key)
                            .or_insert_with(|| (0, failure.detail));
                        entry.0 += 1;
                        if transport {
                            // The connection may be gone; a fresh one keeps the concurrency fixed.
                            if let Err(error) = conn.reconnect().await {
                                let entry = result
                                    .errors
                                    .entry("reconnect".to_owned())
                                    .or_insert_with(|| (0, format!("{error:#}")));
                                entry.0 += 1;
                                break;
                            }
                        }
                    }
                }
            }
            anyhow::Ok(result)
        });
    }

    // CPU time is read at the edges of the measured window.
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_from = (
        load.server_pid.and_then(proc::cpu_seconds),
        proc::self_cpu_seconds(),
    );
    tokio::time::sleep_until(end.into()).await;
    let cpu_to = (
        load.server_pid.and_then(proc::cpu_seconds),
        proc::self_cpu_seconds(),
    );
    let window = end.duration_since(measure_from).as_secs_f64();
    let cores = |from: Option<f64>, to: Option<f64>| Some((to? - from?) / window);

    let mut latency = histogram()?;
    let mut ok = 0;
    let mut errors: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut last = measure_from;
    while let Some(joined) = running.join_next().await {
        let result = joined??;
        ok += result.ok;
        latency.add(&result.latency).context("merging histograms")?;
        last = last.max(result.last);
        for (key, (count, detail)) in result.errors {
            errors.entry(key).or_insert_with(|| (0, detail)).0 += count;
        }
    }
    let server_rss_peak_kib = match sampler {
        Some(handle) => handle.await?,
        None => None,
    };
    Ok(Outcome {
        ok,
        latency,
        errors,
        elapsed: last.duration_since(measure_from),
        server_cpu: cores(cpu_from.0, cpu_to.0),
        generator_cpu: cores(cpu_from.1, cpu_to.1),
        server_rss_peak_kib,
    })
}
