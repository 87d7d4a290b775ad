//! Live counters of one query, shared by the API client (requests, retries), the run (pages,
//! records) and the progress display, which reads them while the query runs; and what the
//! summary lists: the items a fan-out skipped, the caveats the report's pages gave.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::records::{Caveat, Caveats};

#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    pages: AtomicU64,
    records: AtomicU64,
    /// The records the API says the whole result has (0: it does not say).
    total: AtomicU64,
    /// Records a `where` filter left out.
    dropped: AtomicU64,
    /// What the pages said about their numbers (every chain of a fan-out notes here).
    caveats: Mutex<Caveats>,
    /// Quota units spent (refused requests' units given back).
    quota_units: AtomicU64,
    /// Requests Google refused for rate (waited out, not retries).
    quota_rejections: AtomicU64,
    /// Time its requests spent waiting for their quota buckets, summed over the requests
    /// (requests wait side by side: it can pass the query's own time), in microseconds.
    quota_wait_us: AtomicU64,
    /// What the query waits for now, for the progress line (`waiting for gmail's quota of …`).
    waiting: Mutex<Option<String>>,
    /// A fan-out's parent records handed to it so far, and those whose chains are written.
    parents_seen: AtomicU64,
    parents_done: AtomicU64,
    /// How many parent records there are in all, plus one (0: not known yet).
    parents_total: AtomicU64,
}

/// How far a fan-out is through its parent's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParentsSnapshot {
    /// Parent records whose chains are written.
    pub done: u64,
    /// Parent records handed to it so far.
    pub seen: u64,
    /// How many there are in all, once the parent has finished.
    pub total: Option<u64>,
}

/// What a query spent of its quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaSnapshot {
    pub units: u64,
    pub rejections: u64,
    pub wait: std::time::Duration,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub requests: u64,
    pub retries: u64,
    pub pages: u64,
    pub records: u64,
    /// The API's total of records, when it tells one.
    pub total: Option<u64>,
    /// Records a `where` filter left out.
    pub dropped: u64,
    /// What it spent of its quota.
    pub quota: QuotaSnapshot,
    /// A fan-out's progress through its parent's records (`None` for other queries).
    pub parents: Option<ParentsSnapshot>,
}

impl Counters {
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn page(&self) {
        self.pages.fetch_add(1, Ordering::Relaxed);
    }

    pub fn records(&self, n: u64) {
        self.records.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes back `n` records counted (those of a checkpoint an export did not go on from).
    pub fn unrecord(&self, n: u64) {
        self.records.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    /// Units charged (`n > 0`) or given back (`n < 0`, a refused request).
    pub fn quota_units(&self, n: i64) {
        match u64::try_from(n) {
            Ok(n) => self.quota_units.fetch_add(n, Ordering::Relaxed),
            Err(_) => self
                .quota_units
                .fetch_sub(n.unsigned_abs(), Ordering::Relaxed),
        };
    }

    pub fn quota_rejection(&self) {
        self.quota_rejections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn quota_wait(&self, waited: std::time::Duration) {
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.quota_wait_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Notes what the query waits for (`None`: it no longer waits).
    pub fn waiting_on(&self, what: Option<String>) {
        if let Ok(mut waiting) = self.waiting.lock() {
            *waiting = what;
        }
    }

    /// What the query waits for now, if it waits for quota.
    pub fn waiting(&self) -> Option<String> {
        self.waiting.lock().ok().and_then(|w| w.clone())
    }

    /// A fan-out was handed one more parent record.
    pub fn parent_seen(&self) {
        self.parents_seen.fetch_add(1, Ordering::Relaxed);
    }

    /// A fan-out's chains for `n` more parent records are written (or were, before a resume).
    pub fn parents_done(&self, n: u64) {
        self.parents_done.fetch_add(n, Ordering::Relaxed);
    }

    /// The parent has finished: it hands `total` records in all.
    pub fn parents_total(&self, total: u64) {
        self.parents_total
            .store(total.saturating_add(1), Ordering::Relaxed);
    }

    /// The parent has handed its last record: those seen are all.
    pub fn parents_all(&self) {
        self.parents_total(self.parents_seen.load(Ordering::Relaxed));
    }

    fn snapshot_parents(&self) -> Option<ParentsSnapshot> {
        let seen = self.parents_seen.load(Ordering::Relaxed);
        let total = self.parents_total.load(Ordering::Relaxed).checked_sub(1);
        (seen > 0 || total.is_some()).then(|| ParentsSnapshot {
            done: self.parents_done.load(Ordering::Relaxed),
            seen,
            total,
        })
    }

    pub fn snapshot_quota(&self) -> QuotaSnapshot {
        QuotaSnapshot {
            units: self.quota_units.load(Ordering::Relaxed),
            rejections: self.quota_rejections.load(Ordering::Relaxed),
            wait: std::time::Duration::from_micros(self.quota_wait_us.load(Ordering::Relaxed)),
        }
    }

    /// Notes what a page said about its numbers.
    pub fn caveats(&self, caveats: Vec<Caveat>) {
        if let Ok(mut all) = self.caveats.lock() {
            all.note(caveats);
        }
    }

    /// The caveats noted so far.
    pub fn noted_caveats(&self) -> Caveats {
        self.caveats.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            pages: self.pages.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            total: Some(self.total.load(Ordering::Relaxed)).filter(|t| *t > 0),
            dropped: self.dropped.load(Ordering::Relaxed),
            quota: self.snapshot_quota(),
            parents: self.snapshot_parents(),
        }
    }
}

/// How many of a fan-out's items were skipped as gone (`on_missing = "skip"`), and the first
/// [`Gone::LISTED`] of them (their request URLs, in the parent's order): a summary stays
/// small however many there are.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gone {
    pub count: u64,
    pub items: Vec<String>,
}

impl Gone {
    pub const LISTED: usize = 20;

    pub fn add(&mut self, item: String) {
        self.count += 1;
        if self.items.len() < Self::LISTED {
            self.items.push(item);
        }
    }
}
