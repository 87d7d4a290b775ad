//! Exit codes, the kinds of failure, and the one table that maps a failure to an exit code.
//!
//! Library errors live beside the code that raises them (each module has its own `thiserror`
//! enum) and say which [`Failure`] kind they are; this module only decides what the process
//! tells its caller.

use std::process::ExitCode;

/// The documented exit codes of `gscrape` (see README, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every query succeeded.
    Success = 0,
    /// At least one query failed at run time; the others still finished.
    QueryFailed = 1,
    /// Invalid usage, query files or credentials: nothing was run.
    Invalid = 2,
    /// Another run holds the output directory, or a composed output's parts are not all
    /// there yet (EX_TEMPFAIL: try again later).
    Busy = 75,
    /// `--max-duration` passed: the run stopped as an interrupt does (124, as `timeout(1)`).
    Deadline = 124,
    /// Interrupted (Ctrl-C / SIGTERM).
    Interrupted = 130,
}

/// What kind of failure ended a query or a run: decides the exit code, and is shown in the
/// summary so that a scheduler can tell a quota wall from a broken query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// A query file, a flag or a template that cannot work as written.
    BadInput,
    /// Credentials missing, refused or without a needed scope: a person must act.
    Auth,
    /// The API's quota is used up until it resets.
    QuotaWall,
    /// Google or the network failed (after retries), or answered what is not a page.
    Remote,
    /// The local disk or file system failed (a full disk, a permission).
    LocalIo,
    /// Another run holds the output directory's lock: nothing was run.
    Busy,
    /// `gscrape compose`: a part is missing (its task has not finished): nothing was written.
    NotReady,
    /// `strict = true`: the report says its numbers are sampled, thresholded, not final, ...:
    /// nothing was written.
    Caveat,
    /// The rows cannot be written as the query says: a `merge_key` missing from a row, or one
    /// run's two rows with one key. Retrying asks the same; the query must say which wins.
    BadData,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// `--max-duration` passed: unfinished queries stopped, checkpointed, as on an interrupt.
    Deadline,
    /// The run lock in Cloud Storage was taken over by another run while this one wrote (its
    /// lease ran out unrenewed): this run stopped writing.
    LockLost,
}

impl Failure {
    /// Every kind, for the test that README's exit-code table names each.
    pub const ALL: [Failure; 12] = [
        Failure::BadInput,
        Failure::Auth,
        Failure::QuotaWall,
        Failure::Remote,
        Failure::LocalIo,
        Failure::Busy,
        Failure::NotReady,
        Failure::Caveat,
        Failure::BadData,
        Failure::Interrupted,
        Failure::Deadline,
        Failure::LockLost,
    ];

    /// The one table from a kind of failure to the exit code.
    pub const fn exit(self) -> Exit {
        match self {
            Failure::BadInput | Failure::Auth => Exit::Invalid,
            Failure::QuotaWall
            | Failure::Remote
            | Failure::LocalIo
            | Failure::Caveat
            | Failure::BadData
            | Failure::LockLost => Exit::QueryFailed,
            Failure::Busy | Failure::NotReady => Exit::Busy,
            Failure::Interrupted => Exit::Interrupted,
            Failure::Deadline => Exit::Deadline,
        }
    }

    /// The word for the summary.
    pub const fn label(self) -> &'static str {
        match self {
            Failure::BadInput => "bad input",
            Failure::Auth => "auth",
            Failure::QuotaWall => "quota wall",
            Failure::Remote => "remote error",
            Failure::LocalIo => "local I/O",
            Failure::Busy => "busy",
            Failure::NotReady => "not ready",
            Failure::Caveat => "caveat",
            Failure::BadData => "bad data",
            Failure::Interrupted => "interrupted",
            Failure::Deadline => "deadline",
            Failure::LockLost => "lock lost",
        }
    }
}

impl Exit {
    /// The exit code of a run in which these failures happened: an interrupt first, then the
    /// deadline, then a
    /// failure a person must fix (2), then any other (1); none is success.
    pub fn of_run(failures: impl IntoIterator<Item = Failure>) -> Exit {
        failures
            .into_iter()
            .map(Failure::exit)
            .max_by_key(|exit| match exit {
                Exit::Success => 0,
                Exit::QueryFailed => 1,
                Exit::Invalid | Exit::Busy => 2,
                Exit::Deadline => 3,
                Exit::Interrupted => 4,
            })
            .unwrap_or(Exit::Success)
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_failure_decides_the_exit_code() {
        assert_eq!(Exit::of_run([]), Exit::Success);
        assert_eq!(
            Exit::of_run([Failure::Remote, Failure::QuotaWall]),
            Exit::QueryFailed
        );
        assert_eq!(
            Exit::of_run([Failure::Remote, Failure::Auth]),
            Exit::Invalid
        );
        assert_eq!(
            Exit::of_run([Failure::Auth, Failure::Interrupted, Failure::LocalIo]),
            Exit::Interrupted
        );
    }
}
