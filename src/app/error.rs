//! The one error a command returns. It wraps what the layers below raise (each keeps its own
//! `thiserror` enum and its words); [`AppError::kind`] classifies it once, and `app::main`
//! prints it once and maps its kind through [`Failure::exit`], the one exit table.

use crate::auth::login::LoginError;
use crate::auth::AuthError;
use crate::error::Failure;
use crate::http::proxy::ProxyError;
use crate::lock::LockError;
use crate::query::{LoadError, Problem};
use crate::settings::ConfigError;
use crate::template::BadToday;

/// Why a command stopped before (or instead of) doing its work.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A `gscrape.toml` that cannot be read or has an unknown key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Query files that cannot be found or read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Problems of the queries, found before any request: each one line of its own.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\nerror: "))]
    Problems(Vec<Problem>),
    /// Flags or settings that cannot work together, or an argument that names nothing.
    #[error("{0}")]
    Usage(String),
    /// The output directory's run lock: held by another run (exit 75), or not to be had.
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Login(#[from] LoginError),
    /// gscrape's login cache that cannot be read.
    #[error(transparent)]
    Cache(crate::auth::cache::CacheError),
    /// The proxy settings of the environment.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// An endpoint override (`GSCRAPE_ENDPOINT_*`, `STORAGE_EMULATOR_HOST`, the universe domain)
    /// that cannot be used.
    #[error(transparent)]
    Endpoint(#[from] crate::endpoints::EndpointError),
    /// `--shard` (or its variable, key, or job platform's variables) that cannot be used.
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardError),
    /// `gscrape compose`: parts missing (not ready), disagreeing, or not to be joined.
    #[error(transparent)]
    Compose(#[from] crate::compose::ComposeError),
    /// `GSCRAPE_TODAY` that is not a date.
    #[error(transparent)]
    Today(#[from] BadToday),
    /// A Discovery document a command needs (the Sheets API's for a `[sheet]`) and cannot have.
    #[error("{0}")]
    Discovery(String),
    /// Cloud Storage (a `gs://` output or state) refused or failed.
    #[error(transparent)]
    Storage(Box<crate::gcs::StorageError>),
    /// `--max-duration` passed before the run could start its queries.
    #[error("{0}")]
    Deadline(String),
    /// The local disk or standard output failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::gcs::StorageError> for AppError {
    fn from(err: crate::gcs::StorageError) -> Self {
        AppError::Storage(Box::new(err))
    }
}

impl AppError {
    /// What kind of failure this is: decides the exit code.
    pub fn kind(&self) -> Failure {
        match self {
            AppError::Config(_)
            | AppError::Load(_)
            | AppError::Problems(_)
            | AppError::Usage(_)
            | AppError::Proxy(_)
            | AppError::Today(_)
            | AppError::Shard(_)
            | AppError::Endpoint(_)
            | AppError::Discovery(_)
            | AppError::Cache(_) => Failure::BadInput,
            AppError::Lock(
                LockError::Busy { .. }
                | LockError::StillBusy { .. }
                | LockError::CloudBusy { .. }
                | LockError::CloudStillBusy { .. },
            ) => Failure::Busy,
            AppError::Lock(LockError::Cloud { source, .. }) => source.kind(),
            AppError::Lock(LockError::Io { .. }) | AppError::Io { .. } => Failure::LocalIo,
            AppError::Compose(err) => err.kind(),
            AppError::Auth(err) => err.kind(),
            AppError::Login(err) => err.kind(),
            AppError::Storage(err) => err.kind(),
            AppError::Deadline(_) => Failure::Deadline,
        }
    }

    /// A local I/O failure, said as `what: the error`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        AppError::Io {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's exit-code table names every kind of failure, with the code the table here
    /// gives it.
    #[test]
    fn the_readme_names_every_kind_of_failure_with_its_exit_code() {
        let readme = include_str!("../../docs/reference.md");
        let table = readme
            .split("## Exit codes")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("README has an exit-code table");
        for kind in Failure::ALL {
            let code = kind.exit() as u8;
            let row = table
                .lines()
                .find(|line| line.starts_with(&format!("| {code} |")))
                .unwrap_or_else(|| panic!("no row for exit {code} ({kind:?})"));
            assert!(
                row.contains(&format!("`{}`", kind.label())),
                "README's row for exit {code} does not name `{}`: {row}",
                kind.label()
            );
        }
    }
}
