//! gscrape: saved TOML query files → any Google API described by Discovery → paginated,
//! streamed CSV.
//!
//! The flow of a run, one module per step (README, "How it works", says more):
//! [`settings`] (flags, environment, config files) → [`query`] (files → `Query`) →
//! [`discovery`] (documents) → [`plan`] (query checked against its method, with [`apis`]) →
//! [`auth`] (tokens) → [`api`] (requests, pagination, sending, over [`http`]) → [`records`]
//! (pages → rows) → [`sink`] (outputs, replaced only when complete), driven by [`run`] and
//! shown by [`report`]. [`app`] is the command layer the binary calls.

pub(crate) mod api;
pub(crate) mod apis;
pub mod app;
pub(crate) mod auth;
pub(crate) mod backfill;
pub mod cli;
pub(crate) mod compose;
pub(crate) mod counters;
pub(crate) mod datapackage;
pub mod describe;
pub mod discovery;
pub(crate) mod endpoints;
pub(crate) mod error;
pub(crate) mod gcs;
pub(crate) mod http;
pub(crate) mod incremental;
pub(crate) mod lock;
pub mod log_format;
pub(crate) mod merge;
pub mod plan;
pub mod query;
pub(crate) mod quota;
pub mod records;
pub mod redact;
pub(crate) mod report;
pub(crate) mod run;
pub mod scaffold;
pub(crate) mod settings;
pub(crate) mod shard;
pub(crate) mod sink;
pub(crate) mod state;
pub mod template;
pub(crate) mod util;

pub use error::Exit;
