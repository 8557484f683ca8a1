//! The `gatehouse-server` binary: parse the flags, then hand over to [`Args::run`].

use clap::Parser;
use gatehouse_server::cli::Args;

// mimalloc's thread-local free lists suit a server that allocates small, short-lived buffers on
// every request across worker threads (glibc malloc was 8 % of the client_credentials profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Args::parse().run().await
}
