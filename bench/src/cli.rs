//! Command-line flags (each also an environment variable) and the commands: `load` runs
//! scenarios against a running server and prints Markdown rows, `cold-start` times a server from exec
//! to a ready `/readyz`, `free-port` and `header` help the script.

use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use hyper::StatusCode;

use crate::http::Conn;
use crate::load::{self, Load, Outcome, Scenario};
use crate::proc;
use crate::scenarios::{self, Planned};
use crate::setup::Setup;

/// Load generator and benchmark harness for the Gatehouse token server.
#[derive(Debug, Parser)]
#[command(name = "gatehouse-bench", version, about)]
pub struct Args {
    /// Threads of the load generator's runtime. One keeps it off the server's cores as much as possible
    /// (the ceiling was measured with wrk -t1).
    #[arg(long, env = "BENCH_THREADS", default_value_t = 1, global = true)]
    pub threads: usize,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register clients, run scenarios against a running server and print one Markdown row each.
    /// Exits non-zero if any request failed.
    Load(LoadArgs),
    /// Start a server command repeatedly and time each start until /readyz answers 200.
    ColdStart(ColdStartArgs),
    /// Time argon2id password verifications with the server's own code and parameters on one thread:
    /// the per-core bound of the password grant and the login form.
    Argon2(Argon2Args),
    /// Print a free TCP port on 127.0.0.1.
    FreePort,
    /// Print the header of the table `load` prints rows of.
    Header,
}

/// Flags of `load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The server's public listener.
    #[arg(long, env = "BENCH_ADDR")]
    pub addr: SocketAddr,

    /// The server's admin listener.
    #[arg(long, env = "BENCH_ADMIN_ADDR")]
    pub admin_addr: SocketAddr,

    /// The admin API's bearer token.
    #[arg(long, env = "BENCH_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,

    /// A label for the rows, such as `sqlite`.
    #[arg(long, env = "BENCH_BACKEND", default_value = "?")]
    pub backend: String,

    /// Scenarios to run, comma-separated, or `all`.
    #[arg(long, env = "BENCH_SCENARIOS", default_value = "all")]
    pub scenarios: String,

    /// Connections, each with one request in flight.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 32)]
    pub concurrency: usize,

    /// Seconds of unrecorded warm-up per scenario.
    #[arg(long, env = "BENCH_WARMUP", default_value_t = 2.0)]
    pub warmup: f64,

    /// Seconds measured per scenario.
    #[arg(long, env = "BENCH_DURATION", default_value_t = 10.0)]
    pub duration: f64,

    /// Seconds of CPU-idleness sampling before each scenario (reported as "busy before").
    #[arg(long, env = "BENCH_IDLE_SAMPLE", default_value_t = 1.0)]
    pub idle_sample: f64,

    /// The server's process id, to sample its RSS and CPU time.
    #[arg(long, env = "BENCH_SERVER_PID")]
    pub server_pid: Option<u32>,
}

/// Flags of `cold-start`.
#[derive(Debug, clap::Args)]
pub struct ColdStartArgs {
    /// The public listener the command will open.
    #[arg(long)]
    pub addr: SocketAddr,

    /// How many starts. The first may create the database; later ones find it.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,

    /// The server command and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Flags of `argon2`.
#[derive(Debug, clap::Args)]
pub struct Argon2Args {
    /// Seconds to keep verifying.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
}

impl Argon2Args {
    /// Verifies one password hash in a loop on this thread and prints the rate.
    fn run(&self) -> anyhow::Result<()> {
        use gatehouse_server::users;
        let phc = users::hash_password("correct horse battery staple")?;
        let limit = seconds(self.seconds, "seconds")?;
        let started = Instant::now();
        let mut verified = 0u64;
        while started.elapsed() < limit {
            anyhow::ensure!(
                users::verify_password(&phc, "correct horse battery staple"),
                "the password did not verify"
            );
            verified += 1;
        }
        let rate = verified as f64 / started.elapsed().as_secs_f64();
        println!(
            "argon2id m={} KiB t={} p={}: {rate:.1} verifications/s on one core ({:.1} ms each)",
            users::ARGON2_MEMORY_KIB,
            users::ARGON2_ITERATIONS,
            users::ARGON2_PARALLELISM,
            1000.0 / rate
        );
        Ok(())
    }
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("--{flag} must be a non-negative number"))
}

impl Args {
    /// Runs the command on a runtime with `threads` workers.
    pub fn run(self) -> anyhow::Result<()> {
        let Self { threads, command } = self;
        let runtime = if threads <= 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()?
        };
        runtime.block_on(async move {
            match command {
                Command::Load(args) => args.run().await,
                Command::ColdStart(args) => args.run().await,
                Command::Argon2(args) => args.run(),
                Command::Header => {
                    println!("{HEADER}");
                    Ok(())
                }
                Command::FreePort => {
                    let listener = TcpListener::bind("127.0.0.1:0")?;
                    println!("{}", listener.local_addr()?.port());
                    Ok(())
                }
            }
        })
    }
}

/// The header of the rows `load` prints.
pub const HEADER: &str = "| backend | scenario | conc | req/s | p50 ms | p90 ms | p99 ms | max ms | ok | errors | server CPU (cores) | bench CPU (cores) | server RSS peak MiB | load1 before | CPU busy before |\n\
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

fn ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1000.0)
}

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

struct Conditions {
    load1: Option<f64>,
    busy: Option<f64>,
}

fn row(backend: &str, name: &str, concurrency: usize, outcome: &Outcome, when: &Conditions) -> String {
    let h = &outcome.latency;
    let errors = if outcome.errors.is_empty() {
        "0".to_owned()
    } else {
        outcome
            .errors
            .iter()
            .map(|(key, (n, _))| format!("{n}× {key}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "| {backend} | {name} | {concurrency} | {:.0} | {} | {} | {} | {} | {} | {errors} | {} | {} | {} | {} | {} |",
        outcome.rate(),
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        outcome.ok,
        opt(outcome.server_cpu, 2),
        opt(outcome.generator_cpu, 2),
        opt(outcome.server_rss_peak_kib.map(|k| k as f64 / 1024.0), 1),
        opt(when.load1, 2),
        when.busy.map_or_else(|| "-".to_owned(), |b| format!("{b:.0}%")),
    )
}

fn message_row(backend: &str, name: &str, message: &str) -> String {
    format!("| {backend} | {name} | - | {message} | | | | | | | | | | | |")
}

async fn measure<S: Scenario>(scenario: Arc<S>, load: Load) -> anyhow::Result<Outcome> {
    load::run(scenario, load).await
}

impl LoadArgs {
    async fn run(self) -> anyhow::Result<()> {
        let Self {
            addr,
            admin_addr,
            admin_token,
            backend,
            scenarios,
            concurrency,
            warmup,
            duration,
            idle_sample,
            server_pid,
        } = self;
        if concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        let load = Load {
            addr,
            concurrency,
            warmup: seconds(warmup, "warmup")?,
            duration: seconds(duration, "duration")?,
            server_pid,
        };
        let idle_sample = seconds(idle_sample, "idle-sample")?;
        let names: Vec<&str> = if scenarios == "all" {
            scenarios::ALL.to_vec()
        } else {
            scenarios.split(',').map(str::trim).collect()
        };
        let setup = Setup::new(addr, admin_addr, &admin_token)
            .await
            .context("setting up the benchmark clients")?;
        eprintln!("server {} supports {}", setup.issuer, setup.grants.join(", "));
        let mut failed = Vec::new();
        for name in names {
            let planned = scenarios::plan(name, &setup)?;
            if let Planned::NotRun(why) = &planned {
                println!("{}", message_row(&backend, name, why));
                eprintln!("{name}: {why}");
                continue;
            }
            let when = Conditions {
                load1: proc::load1(),
                busy: proc::busy_percent(idle_sample).await,
            };
            eprintln!("{name}: running with {concurrency} connections");
            let outcome = match planned {
                Planned::ClientCredentials(s) => measure(s, load).await,
                Planned::Introspect(s) => measure(s, load).await,
                Planned::Password(s) => measure(s, load).await,
                Planned::Refresh(s) => measure(s, load).await,
                Planned::AuthorizationCode(s) => measure(s, load).await,
                Planned::LoginForm(s) => measure(s, load).await,
                Planned::NotRun(_) => continue,
            };
            match outcome {
                Ok(outcome) => {
                    println!("{}", row(&backend, name, concurrency, &outcome, &when));
                    for (key, (n, detail)) in &outcome.errors {
                        eprintln!("{name}: {n}× {key}; first: {detail}");
                    }
                    if outcome.error_count() > 0 {
                        failed.push(format!("{name}: {} errors", outcome.error_count()));
                    } else if outcome.ok == 0 {
                        failed.push(format!("{name}: no request completed"));
                    }
                }
                Err(error) => {
                    println!("{}", message_row(&backend, name, "FAILED (see log)"));
                    eprintln!("{name}: FAILED: {error:#}");
                    failed.push(format!("{name}: {error:#}"));
                }
            }
        }
        if !failed.is_empty() {
            bail!("{} on {backend}: {}", failed.len(), failed.join("; "));
        }
        Ok(())
    }
}

async fn ready(addr: SocketAddr) -> bool {
    match Conn::connect(addr).await {
        Ok(mut conn) => conn
            .get("/readyz", &[])
            .await
            .is_ok_and(|r| r.status == StatusCode::OK),
        Err(_) => false,
    }
}

impl ColdStartArgs {
    async fn run(self) -> anyhow::Result<()> {
        let Self { addr, runs, command } = self;
        let (program, args) = command.split_first().context("no server command")?;
        let mut times = Vec::with_capacity(runs);
        let mut idle_rss = Vec::with_capacity(runs);
        for run in 0..runs {
            let started = Instant::now();
            let mut child = tokio::process::Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {program}"))?;
            let pid = child.id().context("the server exited at once")?;
            loop {
                if ready(addr).await {
                    break;
                }
                if let Some(status) = child.try_wait()? {
                    bail!("run {run}: the server exited with {status} before it was ready");
                }
                if started.elapsed() > Duration::from_secs(30) {
                    bail!("run {run}: not ready after 30 s");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            times.push(started.elapsed());
            tokio::time::sleep(Duration::from_secs(1)).await;
            idle_rss.push(proc::status_kib(pid, "VmRSS").unwrap_or(0));
            // SIGTERM, so that the server shuts down cleanly before the next start.
            let _ = tokio::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                child.kill().await?;
            }
        }
        let first = times.first().context("--runs must be at least 1")?;
        let mut rest: Vec<Duration> = times.iter().skip(1).copied().collect();
        rest.sort();
        let median = rest.get(rest.len() / 2).copied();
        let millis = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
        println!(
            "first_ms={} median_ms={} runs={} idle_rss_kib={}",
            millis(*first),
            median.map_or_else(|| "-".to_owned(), millis),
            runs,
            idle_rss.iter().max().copied().unwrap_or(0)
        );
        Ok(())
    }
}
