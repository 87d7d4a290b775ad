//! What the user sees of a run: the core reports events to a [`Reporter`](crate::run::Reporter); the binary picks
//! progress bars on a terminal ([`bars`]) or one line per finished query elsewhere
//! ([`Lines`]). The end-of-run summary is a table on stderr and, for schedulers, JSON
//! ([`summary`]).

pub mod bars;
pub mod summary;

use std::sync::Arc;

use crate::counters::Counters;
use crate::run::{QueryReport, Reporter, Status, Stop};

/// One line per finished query (errors always; the rest unless quiet). No control characters:
/// for cron, CI and pipes.
pub struct Lines {
    pub quiet: bool,
}

impl Reporter for Lines {
    fn started(&self, _name: &str, _counters: Arc<Counters>) {}

    fn finished(&self, report: &QueryReport) {
        if let Some(line) = finished_line(report, self.quiet) {
            crate::say!("{line}");
        }
    }
}

/// The line that says how a query ended (`None` when `quiet` hides it).
pub fn finished_line(report: &QueryReport, quiet: bool) -> Option<String> {
    let name = &report.name;
    let output = report.output.as_ref().map(|p| p.display().to_string());
    match &report.status {
        Status::Failed { message: error, .. } => Some(match &output {
            Some(path) => format!("error: {name}: {error} ({path} left unchanged)"),
            None => format!("error: {name}: {error}"),
        }),
        _ if quiet => None,
        Status::Ok(stop) => {
            let cut = match stop {
                Stop::Complete => String::new(),
                Stop::MaxPages(n) => {
                    format!(" (stopped by max_pages = {n}; more pages were available)")
                }
                Stop::MaxRecords(n) => {
                    format!(" (stopped by max_records = {n}; more records were available)")
                }
            };
            let counts = format!(
                "{}, {}",
                plural(report.counters.records, "record"),
                plural(report.counters.pages, "page")
            );
            Some(match &output {
                Some(path) => format!("{name}: {counts} → {path}{cut}"),
                None => format!("{name}: {counts} (output = false){cut}"),
            })
        }
        Status::Interrupted => Some(format!("{name}: interrupted; previous output kept")),
        Status::Cancelled => Some(format!(
            "{name}: cancelled (--fail-fast); previous output kept"
        )),
    }
}

/// `1 page`, `2 pages`.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
