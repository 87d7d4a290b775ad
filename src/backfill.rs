//! Backfills: `--from DATE --to DATE [--step day|week|month]` runs the selected queries once
//! per window, oldest first, with `{{ window.start }}` and `{{ window.end }}` (both
//! `YYYY-MM-DD`, the end inclusive) in their templates — instead of a shell loop around
//! `GSCRAPE_TODAY`.

use chrono::{Datelike, Days, Months, NaiveDate};

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
