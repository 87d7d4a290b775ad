//! What the user sees of a run: the core reports events to a [`Reporter`](crate::run::Reporter); the binary picks
//! progress bars on a terminal ([`bars`]) or one line per finished query elsewhere
//! ([`Lines`]). The end-of-run summary is a table on stderr and, for schedulers, JSON
//! ([`summary`]).

pub mod bars;
pub mod manifest;
pub mod summary;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::counters::{Counters, ParentsSnapshot, Snapshot};
use crate::run::{QueryReport, Reporter, Skip, Status, Stop};

/// One line per finished query (errors always; the rest unless quiet), and every `interval` a
/// heartbeat line per running query, so that a cron log shows an export that runs for hours.
/// No control characters: for cron, systemd, CI and pipes.
pub struct Lines {
    quiet: bool,
    running: Mutex<Vec<(String, Arc<Counters>, Instant)>>,
}

impl Lines {
    pub fn new(quiet: bool, interval: Option<Duration>) -> Arc<Self> {
        let lines = Arc::new(Lines {
            quiet,
            running: Mutex::new(Vec::new()),
        });
        if let Some(interval) = interval.filter(|_| !quiet) {
            let weak = Arc::downgrade(&lines);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.tick().await; // the first tick is at once
                loop {
                    tick.tick().await;
                    let Some(lines) = weak.upgrade() else { return };
                    lines.heartbeat();
                }
            });
        }
        lines
    }

    fn heartbeat(&self) {
        let Ok(running) = self.running.lock() else {
            return;
        };
        for (name, counters, started) in running.iter() {
            let mut line = heartbeat_line(name, &counters.snapshot(), started.elapsed());
            if let Some(waiting) = counters.waiting() {
                line.push_str(&format!(", {waiting}"));
            }
            crate::say!("{line}");
        }
    }
}

/// `files: 12 pages, 12000 records, 830 records/s, running 14s`; a fan-out's adds how far it
/// is through its parent's records (`, 40 of 120 parent records (33%), ETA 1m 20s`).
pub fn heartbeat_line(name: &str, now: &Snapshot, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let parents = now
        .parents
        .map(|p| format!(", {}", parents_progress(&p, elapsed)))
        .unwrap_or_default();
    format!(
        "{name}: {}, {}, {:.0} records/s{parents}, running {}",
        plural(now.pages, "page"),
        plural(now.records, "record"),
        now.records as f64 / secs,
        humantime::format_duration(Duration::from_secs(elapsed.as_secs()))
    )
}

/// A fan-out's progress: `40 of 120 parent records (33%), ETA 1m 20s` once its parent has
/// finished (the total known), `40 of 57 parent records so far` before.
pub fn parents_progress(parents: &ParentsSnapshot, elapsed: Duration) -> String {
    let ParentsSnapshot { done, seen, total } = *parents;
    let Some(total) = total else {
        return format!("{done} of {seen} parent records so far");
    };
    let percent = if total == 0 {
        100.0
    } else {
        100.0 * done as f64 / total as f64
    };
    let mut line = format!("{done} of {total} parent records ({percent:.0}%)");
    if done > 0 && done < total {
        let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
        let left = (total - done) as f64 / rate;
        line += &format!(
            ", ETA {}",
            humantime::format_duration(Duration::from_secs(left.round() as u64))
        );
    }
    line
}

impl Reporter for Lines {
    fn started(&self, name: &str, counters: Arc<Counters>) {
        if let Ok(mut running) = self.running.lock() {
            running.push((name.to_owned(), counters, Instant::now()));
        }
    }

    fn finished(&self, report: &QueryReport) {
        if let Ok(mut running) = self.running.lock() {
            running.retain(|(name, _, _)| *name != report.name);
        }
        if let Some(line) = finished_line(report, self.quiet) {
            crate::say!("{line}");
        }
    }
}

/// A warning line for each caveat the report's pages gave (`files 2024-03-01: sampled: …`,
/// the window in the name of a backfill's report), shown even when quiet: they are about the
/// numbers written. None for a query that `strict` failed for them: its error says them.
/// One `warning:` line for a CSV or TSV written without `excel_safe` whose cells a
/// spreadsheet would run as formulas (a Drive name, a Gmail subject is what its author wrote):
/// the count and the fix.
pub fn formula_line(report: &QueryReport) -> Option<String> {
    let cells = report.written.as_ref()?.formula_cells;
    if cells == 0 || !matches!(report.status, Status::Ok(_)) {
        return None;
    }
    let output = report.output.as_ref()?;
    let file = (report.asked.as_ref())
        .map(|a| format!(" in {}", a.file))
        .unwrap_or_default();
    Some(format!(
        "warning: {}: {} has {} a spreadsheet would run as a formula (beginning with =, +, - or \
         @): set `excel_safe = true`{file} (or --excel-safe), or write .xlsx",
        report.name,
        output.display(),
        plural(cells, "cell")
    ))
}

pub fn caveat_lines(report: &QueryReport) -> Vec<String> {
    if matches!(
        report.status,
        Status::Failed {
            kind: crate::error::Failure::Caveat,
            ..
        }
    ) {
        return Vec::new();
    }
    let name = &report.name;
    let mut lines: Vec<String> = (report.caveats.listed.iter())
        .map(|caveat| format!("warning: {name}: {caveat}"))
        .collect();
    if report.caveats.unlisted > 0 {
        lines.push(format!(
            "warning: {name}: {} more caveats (not listed)",
            report.caveats.unlisted
        ));
    }
    lines
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
            let cut = match report.gone.as_ref().filter(|s| s.count > 0) {
                Some(gone) => format!("{cut} ({} skipped: gone, HTTP 404 or 410)", gone.count),
                None => cut,
            };
            let cut = match &report.merged {
                Some(merged) => format!("{cut}; merged: {}", merged.describe()),
                None => cut,
            };
            let loaded = report.loaded.as_ref().map(|l| {
                format!(
                    "loaded {} into {} (job {})",
                    plural(l.rows, "row"),
                    l.table,
                    l.job_id
                )
            });
            Some(match (&output, loaded) {
                (Some(path), None) => format!("{name}: {counts} → {path}{cut}"),
                (Some(path), Some(loaded)) => format!("{name}: {counts} → {path}; {loaded}{cut}"),
                (None, Some(loaded)) => format!("{name}: {counts}; {loaded}{cut}"),
                (None, None) => format!("{name}: {counts} (output = false){cut}"),
            })
        }
        Status::Interrupted => Some(format!(
            "{name}: interrupted; previous output kept{}",
            resume_hint(report)
        )),
        Status::Cancelled => Some(format!(
            "{name}: cancelled (--fail-fast); previous output kept{}",
            resume_hint(report)
        )),
        Status::Skipped(Skip::InOutput) => Some(format!(
            "{name}: already in {}, skipped",
            output.as_deref().unwrap_or("its output")
        )),
        Status::Skipped(Skip::FeedsNone) => Some(format!(
            "{name}: every query it feeds has this window already, skipped"
        )),
        Status::Skipped(Skip::OtherShard) => Some(format!(
            "{name}: not run in this shard: a query that feeds no fan-out is not split, shard 0 runs it"
        )),
    }
}

/// What to do about an export stopped before its end that left a checkpoint.
fn resume_hint(report: &QueryReport) -> &'static str {
    match report.checkpointed {
        true => "; checkpointed: `gscrape run --resume` continues it",
        false => "",
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
