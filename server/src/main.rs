//! The `gatehouse-server` binary: parse the flags, then hand over to [`Args::run`].

use clap::Parser;
use gatehouse_server::config::Args;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Args::parse().run().await
}
