//! End-to-end tests: the built binary, run in a temporary directory against the fake Google.

mod support;

mod auth;
mod bigquery;
mod config;
mod conventions;
mod csv_options;
mod describe;
mod emulator;
mod endpoints;
mod engine;
mod examples;
mod federation;
mod fields;
mod filters;
mod formats;
mod gcs;
mod inputs;
mod json_truth;
mod keyless;
mod login_state;
mod lose_nothing;
mod network;
mod reports;
mod resume;
mod run;
mod schedule;
mod secrets;
mod shards;
mod shards_gcs;
mod sheets;
mod strict;
mod summary;
mod validate;
mod validate_means_run;
mod xlsx;
