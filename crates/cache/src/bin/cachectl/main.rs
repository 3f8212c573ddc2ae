//! `cachectl`: every store from one URL, from the shell.
//!
//! Store commands (`get`, `set`, `add`, `del`, `has`, `incr`, `clear`, `stats`), a load
//! generator (`bench`) and the file registry (`registry`). Exit codes are part of the
//! interface: see [`Exit`].

mod args;
mod bench;
mod fail;
mod interrupt;
mod open;
mod output;
mod plot;
mod registry;
mod size;
mod store;
mod table;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::fail::{Exit, Failure};

fn main() -> ExitCode {
    // clap exits with 2 on a usage error and 0 for --help/--version, as the interface promises.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return Failure::other(format!("cannot start the async runtime: {error}")).report(),
    };
    let result = runtime.block_on(run(cli));
    // Bench workers may still hold the store; never wait for them past the answer.
    runtime.shutdown_background();
    match result {
        Ok(exit) => exit.code(),
        Err(failure) => failure.report(),
    }
}

async fn run(cli: Cli) -> Result<Exit, Failure> {
    match cli.command {
        Command::Registry(registry) => registry::run(registry, cli.json).await,
        Command::Bench(bench) => bench::run(&cli.url, bench, cli.json).await,
        command => store::run(&cli.url, command, cli.json).await,
    }
}
