//! The `gscrape` binary: parse arguments, set up logging, hand over to the library.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use gscrape::cli::Cli;
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// mimalloc keeps freed pages for reuse: each page of a response is a fresh buffer of a few
/// hundred KiB, which the system allocator hands back to the kernel and faults in again.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The matches too: they tell which settings were given on the command line or in the
    // environment, and so win over config files.
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(err) => {
            use clap::error::ErrorKind;
            let shown = matches!(
                err.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if !shown {
                gscrape::app::refused_by_clap(&err.to_string());
                if json_logs_asked() {
                    gscrape::redact::to_stderr_json(&err.to_string());
                    std::process::exit(err.exit_code());
                }
            }
            err.exit()
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    gscrape::log_format::install(cli.log_format);
    let level = match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    // Only gscrape's own `tracing` events are shown: dependencies that log through the `log`
    // crate (yup-oauth2 logs tokens at debug level) are deliberately not bridged.
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(gscrape::redact::StderrEvent::default)
        .event_format(Plain)
        .init();
    // One worker fewer than the cores: the main thread is the other one, making and writing
    // the rows of plain exports while the workers fetch their pages (`run::run_all`). A
    // worker on every core as well cost a fan-out a third of its CPU on two cores, the idle
    // worker woken for every small response only to park again.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            gscrape::say!("error: cannot start the async runtime: {err}");
            return gscrape::Exit::QueryFailed.into();
        }
    };
    runtime.block_on(gscrape::app::main(cli, &matches)).into()
}

/// `--log-format json` (or `GSCRAPE_LOG_FORMAT=json`) in a command line clap refused.
fn json_logs_asked() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let flag =
        args.iter()
            .enumerate()
            .find_map(|(i, arg)| match arg.strip_prefix("--log-format") {
                Some(rest) if rest.starts_with('=') => Some(rest[1..].to_owned()),
                Some("") => args.get(i + 1).cloned(),
                _ => None,
            });
    flag.or_else(|| std::env::var("GSCRAPE_LOG_FORMAT").ok())
        .is_some_and(|f| f.trim().eq_ignore_ascii_case("json"))
}

/// `warning: message`, like the rest of gscrape's messages (no timestamps, no colours).
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let label = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            _ => "debug",
        };
        write!(writer, "{label}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
