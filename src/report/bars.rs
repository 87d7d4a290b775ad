//! Progress bars on a terminal (indicatif): one line per running query — pages, records,
//! rate, retries, elapsed — cleared when the run ends, before the summary.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::finished_line;
use crate::counters::Counters;
use crate::run::QueryReport;
use crate::run::Reporter;

pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<Vec<(String, ProgressBar, Arc<Counters>)>>,
    quiet: bool,
}

impl Bars {
    pub fn new(quiet: bool) -> Arc<Self> {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let bars = Arc::new(Bars {
            multi,
            bars: Mutex::new(Vec::new()),
            quiet,
        });
        // Counters move inside the core; copy them into the bars' messages a few times a second.
        let weak = Arc::downgrade(&bars);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(125));
            while let Some(bars) = weak.upgrade() {
                bars.refresh();
                drop(bars);
                tick.tick().await;
            }
        });
        bars
    }

    fn refresh(&self) {
        let Ok(bars) = self.bars.lock() else { return };
        for (_, bar, counters) in bars.iter() {
            let now = counters.snapshot();
            let secs = bar.elapsed().as_secs_f64().max(0.001);
            let rate = now.records as f64 / secs;
            let mut message = format!(
                "{} pages · {} records · {rate:.0}/s",
                now.pages, now.records
            );
            if let Some(total) = now.total.filter(|t| *t >= now.records) {
                // The API told the size of the whole result: a percentage and an ETA.
                let percent = 100.0 * now.records as f64 / total as f64;
                let left = (total - now.records) as f64 / rate.max(0.001);
                message.push_str(&format!(
                    " · {percent:.0}% of {total} · ETA {}",
                    humantime::format_duration(Duration::from_secs(left.round() as u64))
                ));
            }
            if let Some(parents) = &now.parents {
                message.push_str(&format!(
                    " · {}",
                    super::parents_progress(parents, bar.elapsed())
                ));
            }
            if now.retries > 0 {
                message.push_str(&format!(" · {} retries", now.retries));
            }
            if let Some(waiting) = counters.waiting() {
                message.push_str(&format!(" · {waiting}"));
            }
            bar.set_message(message);
        }
    }
}

impl Reporter for Bars {
    fn started(&self, name: &str, counters: Arc<Counters>) {
        if self.quiet {
            return;
        }
        let style = ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = self.multi.add(ProgressBar::new_spinner().with_style(style));
        bar.set_prefix(name.to_owned());
        bar.set_message("starting");
        bar.enable_steady_tick(Duration::from_millis(125));
        if let Ok(mut bars) = self.bars.lock() {
            bars.push((name.to_owned(), bar, counters));
        }
    }

    fn finished(&self, report: &QueryReport) {
        if let Ok(mut bars) = self.bars.lock() {
            if let Some(at) = bars.iter().position(|(name, _, _)| *name == report.name) {
                let (_, bar, _) = bars.remove(at);
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
        if let Some(line) = finished_line(report, self.quiet) {
            let _ = self.multi.println(crate::redact::for_display(&line));
        }
    }

    fn done(&self) {
        let _ = self.multi.clear();
    }
}
