//! Exit codes, and the one table that maps an outcome to them.
//!
//! Library errors live beside the code that raises them (each module has its own `thiserror`
//! enum); this module only decides what the process tells its caller.

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
    /// Interrupted (Ctrl-C / SIGTERM).
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}
