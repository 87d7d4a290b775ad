//! gscrape: saved TOML query files → any Google API described by Discovery → paginated,
//! streamed CSV.
//!
//! The flow of a run, one module per step (README, "How it works", says more):
//! [`settings`] (flags, environment, config files) → [`query`] (files → `Query`) →
//! [`discovery`] (documents) → [`plan`] (query checked against its method, with [`apis`]) →
//! [`auth`] (tokens) → [`api`] (requests, pagination, sending, over [`http`]) → [`records`]
//! (pages → rows) → [`sink`] (outputs, replaced only when complete), driven by [`run`] and
//! shown by [`report`]. [`app`] is the command layer the binary calls.

pub mod api;
pub mod apis;
pub mod app;
pub mod auth;
pub mod backfill;
pub mod cli;
pub mod compose;
pub mod counters;
pub mod describe;
pub mod discovery;
pub mod endpoints;
pub mod error;
pub mod gcs;
pub mod http;
pub mod incremental;
pub mod lock;
pub mod merge;
pub mod plan;
pub mod query;
pub mod quota;
pub mod records;
pub mod redact;
pub mod report;
pub mod run;
pub mod scaffold;
pub mod settings;
pub mod shard;
pub mod sink;
pub mod state;
pub mod template;
pub mod util;

pub use error::Exit;
