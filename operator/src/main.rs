//! `gatehouse-operator`: parse the flags, then hand over to [`gatehouse_operator::Args::run`].

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    gatehouse_operator::Args::parse().run().await
}
