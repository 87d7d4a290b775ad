//! One run at a time per output directory: two overlapping cron runs would race on the same
//! files. The lock is an advisory lock (flock) on `<out-dir>/.gscrape/run.lock`, which holds
//! the process id of its holder for the message a second run prints; the kernel releases it
//! when the holder ends, however it ends.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another gscrape run{} is writing into {}; wait for it to end, or run with --wait-lock to wait here", .pid.map(|p| format!(" (process {p})")).unwrap_or_default(), .dir.display())]
    Busy { dir: PathBuf, pid: Option<u32> },
    #[error("cannot lock {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lock file of `out_dir`.
fn lock_path(out_dir: &Path) -> PathBuf {
    out_dir.join(".gscrape").join("run.lock")
}

/// Takes the lock of `out_dir`: at once, or `Busy` naming the holder; with `wait`, waits for
/// it (telling `waiting` who holds it first).
pub async fn acquire(
    out_dir: &Path,
    wait: bool,
    waiting: impl FnOnce(&LockError),
) -> Result<RunLock, LockError> {
    let path = lock_path(out_dir);
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
            let busy = LockError::Busy {
                dir: out_dir.to_owned(),
                pid: holder(&mut file),
            };
            if !wait {
                return Err(busy);
            }
            waiting(&busy);
            file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
                .await
                .map_err(|e| io(std::io::Error::other(e)))?
                .map_err(io)?;
        }
        Err(std::fs::TryLockError::Error(err)) => return Err(io(err)),
    }
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(RunLock { _file: file })
}

/// The process id the holder wrote, if it can be read.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
