//! `gscrape compose OUTPUT`: the parts a sharded run wrote joined into OUTPUT (the library's
//! `crate::compose`: on the local file system, or in Cloud Storage for a `gs://` OUTPUT), and
//! a line saying what it wrote.

use std::time::Duration;

use super::{to_stdout, AppError};
use crate::cli::ComposeArgs;
use crate::compose::{local, object, Layout};
use crate::error::Exit;
use crate::gcs::ObjectUrl;

pub(super) async fn compose(args: ComposeArgs) -> Result<Exit, AppError> {
    let layout = Layout::of(&args.output, args.format, !args.no_header)?;
    let text = args.output.to_string_lossy().into_owned();
    if crate::gcs::is_gs(&text) {
        let output = ObjectUrl::parse(&text).map_err(AppError::Usage)?;
        return compose_object(&args, &output, layout).await;
    }
    let run = run_of(&args);
    let (parts, paths) = match local::find(&args.output, args.count) {
        // A retried `compose --remove-parts` of this run, whose first try composed and removed
        // the parts: done already.
        Err(crate::compose::ComposeError::NoParts { .. })
            if args.remove_parts
                && run.is_some()
                && args.output.is_file()
                && crate::shard::recorded_run(&args.output) == run =>
        {
            let line = format!(
                "already composed {text} from the parts of run {}; its parts were removed\n",
                run.unwrap_or_default()
            );
            return to_stdout(&line, Exit::Success);
        }
        found => found?,
    };
    note_others(&parts);
    let composed_run = local::check_runs(&paths, run.as_deref(), &text)?;
    let joined = local::compose(&paths, &args.output, layout)?;
    if let Err(err) = crate::shard::record_run(&args.output, composed_run.as_deref()) {
        crate::say!("warning: cannot record the run beside {text}: {err}");
    }
    let mut line = proof_line(&text, &joined);
    if args.remove_parts {
        local::remove(&paths)?;
        line.push_str("; the parts removed");
    }
    line.push('\n');
    to_stdout(&line, Exit::Success)
}

/// A `gs://` OUTPUT: its parts composed by Cloud Storage, over the run's credential.
async fn compose_object(
    args: &ComposeArgs,
    output: &ObjectUrl,
    layout: Layout,
) -> Result<Exit, AppError> {
    super::install_endpoints(&[])?;
    let http = crate::auth::source::Http {
        client: crate::http::build_client()?,
        timeout: Duration::from_secs(60),
        retry: crate::settings::retry_policy(None),
    };
    let auth = crate::settings::auth_settings(&args.credentials, &args.config);
    super::storage::connect(&auth, &http).await?;
    let gcs = crate::gcs::io::get()?.clone();
    let (count, output, remove_parts) = (args.count, output.clone(), args.remove_parts);
    // The compose blocks on the Cloud Storage thread: off the runtime's.
    let run = run_of(args);
    let work = tokio::task::spawn_blocking(move || {
        let shown = output.to_string();
        let storage = |source| crate::compose::ComposeError::Storage {
            output: shown.clone(),
            source: Box::new(source),
        };
        let (parts, metas) = match object::find(&gcs, &output, count) {
            // A retried `compose --remove-parts` of this run: done already.
            Err(crate::compose::ComposeError::NoParts { .. })
                if remove_parts
                    && run.is_some()
                    && object::recorded_run(&gcs, &output).map_err(storage)? == run =>
            {
                return Ok(format!(
                    "already composed {output} from the parts of run {}; its parts were removed\n",
                    run.unwrap_or_default()
                ));
            }
            found => found?,
        };
        note_others(&parts);
        let composed_run = object::check_runs(&gcs, &metas, run.as_deref(), &output)?;
        let composed = object::compose(&gcs, &metas, &output, layout)?;
        if let Err(err) = object::record_run(&gcs, &output, composed_run.as_deref()) {
            crate::say!("warning: cannot record the run beside {output}: {err}");
        }
        let mut line = proof_line(&output.to_string(), &composed.joined);
        line.push_str(&format!(
            ", generation {}, crc32c {}",
            composed.object.generation,
            composed.object.crc32c.as_deref().unwrap_or("(none given)")
        ));
        if remove_parts {
            object::remove(&gcs, &metas, &output)?;
            line.push_str("; the parts removed");
        }
        line.push('\n');
        Ok::<_, crate::compose::ComposeError>(line)
    });
    let line = work
        .await
        .map_err(|e| AppError::Usage(format!("the compose stopped: {e}")))??;
    to_stdout(&line, Exit::Success)
}

/// The run whose parts to join: `--run-id` / `GSCRAPE_RUN_ID` (a compose step is often an
/// execution of its own), else `CLOUD_RUN_EXECUTION`.
fn run_of(args: &ComposeArgs) -> Option<String> {
    let env = |name: &str| std::env::var(name).ok();
    let given = |name: &str| match name {
        "GSCRAPE_RUN_ID" => args.run_id.clone(),
        _ => None,
    };
    crate::shard::run_id(None, &given).or_else(|| crate::shard::run_id(None, &env))
}

fn note_others(parts: &crate::compose::Parts) {
    if !parts.other_counts.is_empty() {
        crate::say!(
            "note: left aside, of another number of shards than {}: {}",
            parts.count,
            parts.other_counts.join(", ")
        );
    }
}

/// `composed OUTPUT from N parts: R rows, B bytes, sha256 H`, as both stores say it.
fn proof_line(output: &str, joined: &crate::compose::Joined) -> String {
    format!(
        "composed {output} from {} parts: {} rows, {} bytes, sha256 {}",
        joined.parts, joined.rows, joined.bytes, joined.sha256
    )
}
