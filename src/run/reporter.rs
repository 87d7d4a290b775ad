//! What the run tells whoever shows it: the core reports events to a [`Reporter`] and never
//! prints; `report` draws them (bars on a terminal, lines elsewhere).

use std::sync::Arc;

use super::QueryReport;
use crate::counters::Counters;

/// Receives the events of a run.
pub trait Reporter: Send + Sync {
    /// A query started; its counters move while it runs.
    fn started(&self, name: &str, counters: Arc<Counters>);
    /// A query ended.
    fn finished(&self, report: &QueryReport);
    /// The run ended: clear anything drawn before the summary.
    fn done(&self) {}
}
