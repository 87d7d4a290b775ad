//! The `gscrape` binary: parse arguments, set up logging, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use gscrape::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return gscrape::Exit::QueryFailed.into();
        }
    };
    runtime.block_on(gscrape::app::main(cli)).into()
}
