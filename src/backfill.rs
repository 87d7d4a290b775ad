//! Backfills: `--from DATE --to DATE [--step day|week|month]` runs the selected queries once
//! per window, oldest first, with `{{ window.start }}` and `{{ window.end }}` (both
//! `YYYY-MM-DD`, the end inclusive) in their templates — instead of a shell loop around
//! `GSCRAPE_TODAY`.
//!
//! A query that appends its windows to one file notes which windows the file holds, and its
//! length then, under `<out-dir>/.gscrape/backfills/NAME.json`, so that a backfill run again
//! skips them instead of appending their rows twice ([`holds`], [`note`]).

use std::path::{Path, PathBuf};

use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::plan::{Output, QueryPlan};
use crate::query::{CsvSettings, Problem};

/// How long one window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Step {
    Day,
    Week,
    Month,
}

/// One window of a backfill: from `start` to `end`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Window {
    /// `2024-03-01`, or `2024-03-01..2024-03-07` for a longer window (for summaries).
    pub fn label(&self) -> String {
        match self.start == self.end {
            true => self.start.to_string(),
            false => format!("{}..{}", self.start, self.end),
        }
    }

    /// The template value: `{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}`.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({"start": self.start.to_string(), "end": self.end.to_string()})
    }
}

/// The windows from `from` to `to` (both included), oldest first; a week or month that
/// reaches past `to` ends there. A month window starts on the first of a month (the first one
/// on `from`).
pub fn windows(from: NaiveDate, to: NaiveDate, step: Step) -> Vec<Window> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let next = match step {
            Step::Day => start.checked_add_days(Days::new(1)),
            Step::Week => start.checked_add_days(Days::new(7)),
            Step::Month => start
                .with_day(1)
                .and_then(|first| first.checked_add_months(Months::new(1))),
        };
        let Some(next) = next else { break };
        let end = next.pred_opt().unwrap_or(next).min(to);
        out.push(Window { start, end });
        start = next;
    }
    out
}

/// What the files a query's backfills appended to hold, as gscrape left them.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Appended {
    files: Vec<AppendedFile>,
}

/// One file: its path under the output directory, its length when gscrape last wrote it, and
/// the windows in it (`["YYYY-MM-DD", "YYYY-MM-DD"]`, sorted, the adjacent ones merged).
#[derive(Debug, Serialize, Deserialize)]
struct AppendedFile {
    file: PathBuf,
    bytes: u64,
    windows: Vec<[String; 2]>,
}

/// Where the files of query `name` are noted, in the run's state directory.
fn state_file(name: &str) -> String {
    format!("backfills/{name}.json")
}

impl Appended {
    /// The state of `name` (none yet: empty); why not, when its file cannot be read.
    fn load(out_dir: &Path, name: &str) -> Result<Appended, String> {
        let state = crate::state::of(out_dir);
        let file = state_file(name);
        let path = state.show(&file);
        let text = match state.read(&file) {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) => return Ok(Appended::default()),
            Err(err) => return Err(format!("cannot read {path}: {err}")),
        };
        let state: Appended = serde_json::from_str(&text)
            .map_err(|err| format!("{path} is not as gscrape writes it ({err})"))?;
        match state.files.iter().all(|f| f.windows().is_some()) {
            true => Ok(state),
            false => Err(format!("{path} holds a window that is not a date range")),
        }
    }

    fn save(&self, out_dir: &Path, name: &str) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::state::of(out_dir).write(&state_file(name), text.as_bytes())
    }

    /// The entry of `file`, made (holding nothing) when there is none.
    fn entry(&mut self, file: &Path) -> &mut AppendedFile {
        let at = match self.files.iter().position(|f| f.file == file) {
            Some(at) => at,
            None => {
                self.files.push(AppendedFile {
                    file: file.to_owned(),
                    bytes: 0,
                    windows: Vec::new(),
                });
                self.files.len() - 1
            }
        };
        &mut self.files[at]
    }
}

impl AppendedFile {
    /// The windows in the file (`None`: one that is not a date range).
    fn windows(&self) -> Option<Vec<Window>> {
        self.windows
            .iter()
            .map(|[start, end]| {
                let (start, end) = (start.parse().ok()?, end.parse().ok()?);
                (start <= end).then_some(Window { start, end })
            })
            .collect()
    }

    /// Adds `window`, keeping the windows sorted and merging those that touch.
    fn add(&mut self, window: Window) {
        let mut windows = self.windows().unwrap_or_default();
        windows.push(window);
        windows.sort_by_key(|w| w.start);
        let mut merged: Vec<Window> = Vec::with_capacity(windows.len());
        for w in windows {
            match merged.last_mut() {
                Some(last) if last.end.succ_opt().is_some_and(|next| w.start <= next) => {
                    last.end = last.end.max(w.end);
                }
                _ => merged.push(w),
            }
        }
        self.windows = merged
            .iter()
            .map(|w| [w.start.to_string(), w.end.to_string()])
            .collect();
    }
}

/// Whether `output` (noted under `out_dir`), which query `name` appends to, holds `window` already:
/// true when a backfill appended it and the file is as that left it; a file that is gone
/// holds nothing. `Err` says why it cannot be told, so that nothing is appended twice nor
/// skipped wrongly: the file is not as gscrape left it (edited, cut, replaced, appended to by
/// another run), or holds only part of the window. A file not noted yet is noted as it is,
/// so that a run killed after its append shows as a change rather than a file holding nothing.
pub fn holds(
    out_dir: &Path,
    name: &str,
    output: &crate::plan::Output,
    window: Window,
) -> Result<bool, String> {
    let mut state = Appended::load(out_dir, name)?;
    let (file, target) = (output.name(), output.path());
    let length = std::fs::metadata(target).ok().map(|m| m.len());
    let (noted, length) = match (state.files.iter().find(|f| f.file == file), length) {
        (Some(noted), Some(length)) => (noted, length),
        // Not noted yet, or gone (it holds nothing now): noted as it is.
        (None, _) | (Some(_), None) => {
            let entry = state.entry(file);
            entry.bytes = length.unwrap_or(0);
            entry.windows.clear();
            if let Err(err) = state.save(out_dir, name) {
                tracing::warn!(
                    "{name}: cannot note the state of {}: {err}",
                    target.display()
                );
            }
            return Ok(false);
        }
    };
    if length != noted.bytes {
        return Err(format!(
            "{} is not as this query's backfill left it ({} bytes then, {length} now), so which \
             windows it holds is not known: move it away to export them all again, or remove {} \
             to append to it as it is",
            target.display(),
            noted.bytes,
            crate::state::of(out_dir).show(&state_file(name))
        ));
    }
    let windows = noted.windows().unwrap_or_default();
    if windows
        .iter()
        .any(|w| w.start <= window.start && window.end <= w.end)
    {
        return Ok(true);
    }
    match windows
        .iter()
        .find(|w| w.start <= window.end && window.start <= w.end)
    {
        Some(part) => Err(format!(
            "{} holds {} of an earlier backfill, part of the window {}: appending it would \
             repeat those rows and skipping it would leave out the rest; backfill with the \
             windows of before (--step), or move the file away",
            target.display(),
            part.label(),
            window.label()
        )),
        None => Ok(false),
    }
}

/// The last day of the windows `file` of query `name` holds, as noted (for a `lookback`).
pub fn latest(out_dir: &Path, name: &str, file: &Path) -> Option<NaiveDate> {
    let state = Appended::load(out_dir, name).ok()?;
    let noted = state.files.iter().find(|f| f.file == file)?;
    noted.windows()?.iter().map(|w| w.end).max()
}

/// Notes that `window` was appended to `file` of query `name`, which is `bytes` long now.
pub fn note(
    out_dir: &Path,
    name: &str,
    file: &Path,
    window: Window,
    bytes: u64,
) -> Result<(), String> {
    let mut state = Appended::load(out_dir, name)?;
    let entry = state.entry(file);
    entry.bytes = bytes;
    entry.add(window);
    state.save(out_dir, name).map_err(|err| {
        format!(
            "cannot write {}: {err}",
            crate::state::of(out_dir).show(&state_file(name))
        )
    })
}

/// Why a query is left out of a backfill's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Its file holds the window: an earlier backfill appended it.
    InOutput,
    /// It writes no file, and every query it feeds was left out.
    FeedsNone,
}

/// A query left out of a window: its name, its file and why.
pub struct LeftOut {
    pub name: String,
    pub output: Option<PathBuf>,
    pub done: Done,
}

/// The queries that append to a file in a backfill's window, by name, with the file.
pub type Appending = Vec<(String, Output)>;

/// A backfill's window that a query appending to one file has appended already (a backfill
/// run again) is not appended twice: the query is left out of the window (removed from
/// `plans`), and so is a query writing no file that feeds only queries left out. One left
/// out that feeds a query that runs runs too, without writing. A file that cannot be told to
/// hold the window or not is a problem (the run is refused). Returns those left out, and the
/// queries that append in this window with their files (noted once done, [`note_windows`]).
pub fn leave_out_done(
    out_dir: &Path,
    csv: &CsvSettings,
    quiet: bool,
    window: Window,
    plans: &mut Vec<QueryPlan>,
) -> Result<(Vec<LeftOut>, Appending), Vec<Problem>> {
    let mut done = already_done(out_dir, csv, window, plans)?;
    run_feeders(quiet, window, plans, &mut done);
    let mut left_out = Vec::new();
    let mut run = Vec::new();
    for (plan, done) in plans.drain(..).zip(done) {
        let Some(done) = done else {
            run.push(plan);
            continue;
        };
        let output = plan.output.as_ref().map(|o| o.path().to_owned());
        let name = plan.query.name;
        left_out.push(LeftOut { name, output, done });
    }
    *plans = run;
    let appending = plans
        .iter()
        .filter_map(|plan| Some((plan.query.name.clone(), appended(plan, csv)?)))
        .collect();
    Ok((left_out, appending))
}

/// The file `plan` appends its windows to, if it does. (A merged file is noted as an
/// appended one: it holds each window merged into it.)
fn appended(plan: &QueryPlan, csv: &CsvSettings) -> Option<Output> {
    let appends = plan.query.csv.or(csv).append.unwrap_or(false);
    plan.output
        .clone()
        .filter(|_| appends || plan.query.merge.is_some())
}

/// Whether `child` is a fan-out over `parent`'s records.
fn feeds(parent: &QueryPlan, child: &QueryPlan) -> bool {
    (child.query.for_each.as_ref()).is_some_and(|p| p.value == parent.query.name)
}

/// For each of `plans`, why it is done with `window` already, if it is.
fn already_done(
    out_dir: &Path,
    csv: &CsvSettings,
    window: Window,
    plans: &[QueryPlan],
) -> Result<Vec<Option<Done>>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut done = Vec::with_capacity(plans.len());
    for plan in plans {
        let in_file = appended(plan, csv).is_some_and(|output| {
            let name = &plan.query.name;
            let held = holds(out_dir, name, &output, window).unwrap_or_else(|why| {
                problems.push(plan.query.problem(None, Some("output".to_owned()), why));
                false
            });
            // `lookback`: the last windows it holds are asked for again (and merged).
            let last = latest(out_dir, name, output.name());
            held && !last
                .is_some_and(|latest| crate::merge::backfill_lookback(plan, window.end, latest))
        });
        let feeds_some = plans.iter().any(|child| feeds(plan, child));
        done.push(match in_file {
            true => Some(Done::InOutput),
            false if plan.output.is_none() && feeds_some => Some(Done::FeedsNone),
            false => None,
        });
    }
    match problems.is_empty() {
        true => Ok(done),
        false => Err(problems),
    }
}

/// A query runs while a query it feeds runs: its records are needed. One whose file holds
/// the window then writes nothing.
fn run_feeders(quiet: bool, window: Window, plans: &mut [QueryPlan], done: &mut [Option<Done>]) {
    loop {
        let needed: Vec<usize> = (0..plans.len())
            .filter(|&i| done[i].is_some())
            .filter(|&i| {
                (plans.iter().zip(&*done)).any(|(c, d)| d.is_none() && feeds(&plans[i], c))
            })
            .collect();
        if needed.is_empty() {
            break;
        }
        for i in needed {
            if done[i] == Some(Done::InOutput) {
                let plan = &mut plans[i];
                let output = plan.output.take();
                plan.query.sheet = None;
                plan.query.bigquery = None;
                if !quiet {
                    crate::say!(
                        "{} {}: already in {}; its records are read again for the queries it feeds, not written",
                        plan.query.name,
                        window.label(),
                        output.as_ref().map_or(Path::new(""), |o| o.path()).display()
                    );
                }
            }
            done[i] = None;
        }
    }
}

/// Notes the window each query in `appending` wrote (`written`: the names of those that
/// succeeded, with their files' lengths): a backfill run again leaves it out.
pub fn note_windows<'a>(
    out_dir: &Path,
    window: Window,
    appending: &[(String, Output)],
    written: impl IntoIterator<Item = (&'a str, u64)>,
) {
    for (name, bytes) in written {
        let Some((_, output)) = appending.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        if let Err(err) = note(out_dir, name, output.name(), window, bytes) {
            crate::say!(
                "warning: {name} {}: cannot note that {} holds this window ({err}); a backfill run again will take the file for changed",
                window.label(),
                output.path().display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn labels(from: &str, to: &str, step: Step) -> Vec<String> {
        windows(day(from), day(to), step)
            .iter()
            .map(Window::label)
            .collect()
    }

    fn window(start: &str, end: &str) -> Window {
        Window {
            start: day(start),
            end: day(end),
        }
    }

    #[test]
    fn windows_noted_are_merged_where_they_touch() {
        let mut file = AppendedFile {
            file: PathBuf::from("f.csv"),
            bytes: 0,
            windows: Vec::new(),
        };
        for (start, end) in [
            ("2024-03-03", "2024-03-03"),
            ("2024-03-01", "2024-03-01"),
            ("2024-03-02", "2024-03-02"),
            ("2024-03-10", "2024-03-16"),
        ] {
            file.add(window(start, end));
        }
        assert_eq!(
            file.windows,
            [
                ["2024-03-01".to_owned(), "2024-03-03".to_owned()],
                ["2024-03-10".to_owned(), "2024-03-16".to_owned()]
            ]
        );
    }

    #[test]
    fn a_file_holds_the_windows_noted_while_it_is_as_gscrape_left_it() {
        let out = tempfile::tempdir().unwrap();
        let (dir, file) = (out.path(), Path::new("f.csv"));
        let output = crate::plan::Output::new(file.to_owned(), Default::default(), dir);
        let holds = |w: Window| holds(dir, "q", &output, w);
        let march = |d: u32| window(&format!("2024-03-{d:02}"), &format!("2024-03-{d:02}"));
        assert_eq!(holds(march(1)), Ok(false), "nothing noted, no file");
        std::fs::write(dir.join(file), "id\r\na\r\n").unwrap();
        note(dir, "q", file, march(1), 7).unwrap();
        note(dir, "q", file, march(2), 7).unwrap();
        assert_eq!(holds(march(1)), Ok(true));
        assert_eq!(holds(window("2024-03-01", "2024-03-02")), Ok(true));
        assert_eq!(holds(march(3)), Ok(false));
        let part = holds(window("2024-03-02", "2024-03-08")).unwrap_err();
        assert!(part.contains("holds 2024-03-01..2024-03-02 of an earlier backfill, part of the window 2024-03-02..2024-03-08"), "{part}");
        std::fs::write(dir.join(file), "id\r\na\r\nb\r\n").unwrap();
        let changed = holds(march(1)).unwrap_err();
        assert!(changed.contains("(7 bytes then, 10 now)"), "{changed}");
        std::fs::remove_file(dir.join(file)).unwrap();
        assert_eq!(holds(march(1)), Ok(false), "gone: it holds nothing");
        std::fs::write(dir.join(file), "id\r\n").unwrap();
        let after = holds(march(1)).unwrap_err();
        assert!(
            after.contains("(0 bytes then, 4 now)"),
            "noted as gone: {after}"
        );
        std::fs::write(dir.join(".gscrape").join(state_file("q")), "{").unwrap();
        let unreadable = holds(march(1)).unwrap_err();
        assert!(
            unreadable.contains("is not as gscrape writes it"),
            "{unreadable}"
        );
    }

    #[test]
    fn windows_cover_the_range_oldest_first() {
        assert_eq!(
            labels("2024-02-28", "2024-03-01", Step::Day),
            ["2024-02-28", "2024-02-29", "2024-03-01"]
        );
        assert_eq!(
            labels("2024-03-01", "2024-03-10", Step::Week),
            ["2024-03-01..2024-03-07", "2024-03-08..2024-03-10"]
        );
        assert_eq!(
            labels("2024-01-15", "2024-03-10", Step::Month),
            [
                "2024-01-15..2024-01-31",
                "2024-02-01..2024-02-29",
                "2024-03-01..2024-03-10"
            ]
        );
        assert!(labels("2024-03-02", "2024-03-01", Step::Day).is_empty());
    }
}
