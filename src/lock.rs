//! One run at a time per output directory: two overlapping cron runs would race on the same
//! files. In a local state directory the lock is an advisory lock (flock) on `run.lock`, which
//! holds the process id of its holder for the message a second run prints; the kernel releases
//! it when the holder ends, however it ends.
//!
//! In Cloud Storage (`--state gs://…`, [`crate::state`]) no kernel sees both runs: the lock is
//! the object `run.lock`, created only if absent (`ifGenerationMatch=0`), naming its holder
//! (host, process, and the job platform's name for it: Cloud Run execution, task and attempt;
//! Kubernetes pod, Job and completion index) and a lease the holder renews ([`cloud`]). A lease
//! left to run out — a pod killed with SIGKILL — is taken over, with a message; a later attempt
//! of the same task (which the platform starts only once the earlier attempt ended) takes it
//! over at once. A run whose renewal finds the lock taken over stops writing ([`lost`]).

mod cloud;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Cancelled when this run lost its lock in Cloud Storage to another run (its lease ran out
/// unrenewed and was taken over): every query stops writing and fails (`lock lost`).
pub fn lost() -> &'static tokio_util::sync::CancellationToken {
    static LOST: std::sync::LazyLock<tokio_util::sync::CancellationToken> =
        std::sync::LazyLock::new(tokio_util::sync::CancellationToken::new);
    &LOST
}

/// What was said when the lock was lost.
pub fn lost_why() -> Option<&'static str> {
    LOST_WHY.get().map(String::as_str)
}

static LOST_WHY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn lose(why: String) {
    let _ = LOST_WHY.set(why);
    lost().cancel();
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
#[expect(
    dead_code,
    reason = "held, never read: dropping the lock is what releases it"
)]
pub enum RunLock {
    File(File),
    Cloud(Box<cloud::CloudLock>),
}

/// What a run does when another holds the lock (`--wait-lock[=SECONDS]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockWait {
    /// Exit at once (75).
    #[default]
    No,
    Forever,
    /// Wait this long, then exit 75.
    AtMost(std::time::Duration),
}

impl LockWait {
    /// `--wait-lock`'s value: a number of seconds (`0`: do not wait), or `true`/`false` (as a
    /// config file or `GSCRAPE_WAIT_LOCK` may say); the flag alone waits as long as it takes.
    pub fn parse(text: &str) -> Result<LockWait, String> {
        match text.trim() {
            "" | "true" | "yes" | "on" | "forever" => Ok(LockWait::Forever),
            "false" | "no" | "off" | "0" => Ok(LockWait::No),
            seconds => seconds
                .parse::<u64>()
                .map(|s| LockWait::AtMost(std::time::Duration::from_secs(s)))
                .map_err(|_| format!("{seconds:?} is not a number of seconds (or true/false)")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another gscrape run{} is writing into {}; wait for it to end, or run with --wait-lock to wait here", who(*.pid, .platform.as_deref()), .dir.display())]
    Busy {
        dir: PathBuf,
        pid: Option<u32>,
        platform: Option<String>,
    },
    #[error("another gscrape run{} still held {} after waiting {} s (--wait-lock); it may be stuck: see that process, or wait longer", who(*.pid, .platform.as_deref()), .dir.display(), .waited.as_secs())]
    StillBusy {
        dir: PathBuf,
        pid: Option<u32>,
        platform: Option<String>,
        waited: std::time::Duration,
    },
    #[error("cannot lock {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another gscrape run ({holder}) holds {lock}, its lease until {until}; wait for it to end, or run with --wait-lock to wait here (a run killed without releasing it is taken over once its lease runs out)")]
    CloudBusy {
        lock: String,
        holder: String,
        until: String,
    },
    #[error("another gscrape run ({holder}) still held {lock} after waiting {} s (--wait-lock), renewing its lease; see that run, or wait longer", .waited.as_secs())]
    CloudStillBusy {
        lock: String,
        holder: String,
        waited: std::time::Duration,
    },
    #[error("cannot take the run lock {lock}: {source}")]
    Cloud {
        lock: String,
        #[source]
        source: Box<crate::gcs::StorageError>,
    },
}

/// ` (process 4242)`, ` (process 1; Cloud Run execution …)`: the holder of a local lock.
fn who(pid: Option<u32>, platform: Option<&str>) -> String {
    match (pid, platform) {
        (Some(pid), Some(platform)) => format!(" (process {pid}; {platform})"),
        (Some(pid), None) => format!(" (process {pid})"),
        (None, Some(platform)) => format!(" ({platform})"),
        (None, None) => String::new(),
    }
}

/// The lock's name in the state directory: `run.lock`, or a shard's own
/// (`run-shard-00003-of-00010.lock`), so that the tasks of a sharded run share a state directory.
fn lock_name(shard: Option<crate::shard::Shard>) -> String {
    match shard {
        None => "run.lock".to_owned(),
        Some(s) => format!("run-shard-{:05}-of-{:05}.lock", s.index, s.count),
    }
}

/// How often a wait of limited length tries the lock again.
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Takes the lock of `out_dir` (of one shard of a sharded run: each shard has its own): at
/// once, or `Busy` naming the holder; with `wait`, waits for it (telling `waiting` who holds it
/// first), forever or up to its limit (`StillBusy`).
pub async fn acquire_for(
    out_dir: &Path,
    shard: Option<crate::shard::Shard>,
    wait: LockWait,
    waiting: impl FnOnce(&LockError),
) -> Result<RunLock, LockError> {
    let dir = match crate::state::of(out_dir) {
        crate::state::StateDir::Local(dir) => dir,
        crate::state::StateDir::Cloud(prefix) => {
            return cloud::acquire(prefix.object(&lock_name(shard)), wait, waiting)
                .await
                .map(|lock| RunLock::Cloud(Box::new(lock)))
        }
    };
    let path = dir.join(lock_name(shard));
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let (pid, platform) = holder(&mut file);
            let busy = LockError::Busy {
                dir: out_dir.to_owned(),
                pid,
                platform,
            };
            let limit = match wait {
                LockWait::No => return Err(busy),
                LockWait::Forever => None,
                LockWait::AtMost(limit) => Some(limit),
            };
            waiting(&busy);
            file = match limit {
                None => tokio::task::spawn_blocking(move || file.lock().map(|()| file))
                    .await
                    .map_err(|e| io(std::io::Error::other(e)))?
                    .map_err(io)?,
                Some(limit) => {
                    let deadline = tokio::time::Instant::now() + limit;
                    loop {
                        match file.try_lock() {
                            Ok(()) => break file,
                            Err(std::fs::TryLockError::WouldBlock) => {}
                            Err(std::fs::TryLockError::Error(err)) => return Err(io(err)),
                        }
                        if tokio::time::Instant::now() >= deadline {
                            let (pid, platform) = holder(&mut file);
                            return Err(LockError::StillBusy {
                                dir: out_dir.to_owned(),
                                pid,
                                platform,
                                waited: limit,
                            });
                        }
                        tokio::time::sleep(RETRY_EVERY).await;
                    }
                }
            };
        }
        Err(std::fs::TryLockError::Error(err)) => return Err(io(err)),
    }
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    // The job platform's name for this run, on a line of its own, for the message of another.
    if let Some(platform) = cloud::Platform::of(&|name| std::env::var(name).ok()) {
        write!(file, "\n{}", platform.describe()).map_err(io)?;
    }
    file.flush().map_err(io)?;
    Ok(RunLock::File(file))
}

/// The process id the holder wrote, and its job platform's name for it, if they can be read.
fn holder(file: &mut File) -> (Option<u32>, Option<String>) {
    let mut text = String::new();
    if file.seek(SeekFrom::Start(0)).is_err() || file.read_to_string(&mut text).is_err() {
        return (None, None);
    }
    let mut lines = text.lines();
    let pid = lines.next().and_then(|l| l.trim().parse().ok());
    let platform = lines
        .next()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty() && !l.chars().any(char::is_control));
    (pid, platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_lock_names_its_holder_by_process_and_platform() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.lock");
        std::fs::write(&path, "42\nCloud Run execution e, task 0, attempt 1").unwrap();
        let mut file = File::open(&path).unwrap();
        let (pid, platform) = holder(&mut file);
        assert_eq!(pid, Some(42));
        let busy = LockError::Busy {
            dir: PathBuf::from("output"),
            pid,
            platform,
        };
        assert_eq!(
            busy.to_string(),
            "another gscrape run (process 42; Cloud Run execution e, task 0, attempt 1) is writing into output; wait for it to end, or run with --wait-lock to wait here"
        );
        std::fs::write(&path, "42").unwrap();
        let mut file = File::open(&path).unwrap();
        assert_eq!(holder(&mut file), (Some(42), None));
    }
}
