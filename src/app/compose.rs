//! `gscrape compose OUTPUT`: the parts a sharded run wrote joined into OUTPUT (the library's
//! `crate::compose`, on the local file system), and a line saying what it wrote.

use super::{to_stdout, AppError};
use crate::cli::ComposeArgs;
use crate::compose::{local, Layout};
use crate::error::Exit;

pub(super) fn compose(args: ComposeArgs) -> Result<Exit, AppError> {
    let layout = Layout::of(&args.output, args.format, !args.no_header)?;
    let (parts, paths) = local::find(&args.output, args.count)?;
    if !parts.other_counts.is_empty() {
        crate::say!(
            "note: left aside, of another number of shards than {}: {}",
            parts.count,
            parts.other_counts.join(", ")
        );
    }
    let joined = local::compose(&paths, &args.output, layout)?;
    let mut line = format!(
        "composed {} from {} parts: {} rows, {} bytes, sha256 {}",
        args.output.display(),
        joined.parts,
        joined.rows,
        joined.bytes,
        joined.sha256
    );
    if args.remove_parts {
        local::remove(&paths)?;
        line.push_str("; the parts removed");
    }
    line.push('\n');
    to_stdout(&line, Exit::Success)
}
