//! The `gatehouse-bench` binary: parse the flags, build the runtime, hand over to [`cli::Args::run`].

mod browser;
mod cli;
mod html;
mod http;
mod load;
mod proc;
mod scenarios;
mod setup;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    cli::Args::parse().run()
}
