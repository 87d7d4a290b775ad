//! The run lock in Cloud Storage: an object created only if absent, holding who holds it and
//! until when. The holder renews the lease (each renewal a write of the generation it holds,
//! so a run that lost the lock learns it); a lease not renewed in time is taken over by a
//! write of the generation read, so two runs taking over at once cannot both win. Released by
//! removing the generation held.
//!
//! Leases compare the holder's clock with the reader's: machines kept in time (NTP, as every
//! cloud machine is) differ by far less than a lease.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{LockError, LockWait};
use crate::gcs::io::Gcs;
use crate::gcs::{ObjectUrl, Precondition, StorageError};

/// How long a lease lasts unless renewed: three minutes (renewed every minute), or
/// `GSCRAPE_LOCK_LEASE_SECONDS`.
const LEASE: Duration = Duration::from_secs(180);

fn lease() -> Duration {
    std::env::var("GSCRAPE_LOCK_LEASE_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
        .unwrap_or(LEASE)
}

/// Who holds the lock as the job platform names it: a retry of the same task is known by
/// these, not by host and process (PID 1 in every container).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Platform {
    /// A Cloud Run Job's task: `CLOUD_RUN_EXECUTION`, `CLOUD_RUN_TASK_INDEX`,
    /// `CLOUD_RUN_TASK_ATTEMPT`.
    CloudRun {
        execution: String,
        task: u32,
        attempt: u32,
    },
    /// A Kubernetes Job's pod: its name (`HOSTNAME`), its `JOB_COMPLETION_INDEX`, and the Job's
    /// name when `GSCRAPE_JOB_NAME` gives it (from the pod's `batch.kubernetes.io/job-name`
    /// label, through the downward API).
    Kubernetes {
        pod: String,
        index: Option<u32>,
        job: Option<String>,
    },
}

impl Platform {
    /// This process's, from the platform's variables (`env`).
    pub(super) fn of(env: &dyn Fn(&str) -> Option<String>) -> Option<Platform> {
        let var = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &str| var(name).and_then(|v| v.parse::<u32>().ok());
        if let Some(execution) = var("CLOUD_RUN_EXECUTION") {
            return Some(Platform::CloudRun {
                execution,
                task: number("CLOUD_RUN_TASK_INDEX").unwrap_or(0),
                attempt: number("CLOUD_RUN_TASK_ATTEMPT").unwrap_or(0),
            });
        }
        if var("KUBERNETES_SERVICE_HOST").is_some() {
            if let Some(pod) = var("HOSTNAME") {
                return Some(Platform::Kubernetes {
                    pod,
                    index: number("JOB_COMPLETION_INDEX"),
                    job: var("GSCRAPE_JOB_NAME"),
                });
            }
        }
        None
    }

    /// When `self` is a later attempt of `held`'s task, which the platform starts only once
    /// that attempt ended: why it may take the lock at once. Cloud Run: the same execution and
    /// task, a higher attempt. Kubernetes: the same Job (named by `GSCRAPE_JOB_NAME`) and
    /// completion index, another pod.
    pub(super) fn retries(&self, held: &Platform) -> Option<String> {
        match (self, held) {
            (
                Platform::CloudRun {
                    execution,
                    task,
                    attempt,
                },
                Platform::CloudRun {
                    execution: e,
                    task: t,
                    attempt: a,
                },
            ) if execution == e && task == t && attempt > a => Some(format!(
                "this is attempt {attempt} of the same Cloud Run task (execution {execution}, task {task}), which Cloud Run starts only after attempt {a} ended"
            )),
            (
                Platform::Kubernetes {
                    pod,
                    index: Some(index),
                    job: Some(job),
                },
                Platform::Kubernetes {
                    pod: p,
                    index: Some(i),
                    job: Some(j),
                },
            ) if job == j && index == i && pod != p => Some(format!(
                "this pod ({pod}) replaces {p} for completion index {index} of the Kubernetes Job {job}"
            )),
            _ => None,
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Platform::CloudRun {
                execution,
                task,
                attempt,
            } => format!("Cloud Run execution {execution}, task {task}, attempt {attempt}"),
            Platform::Kubernetes { pod, index, job } => format!(
                "Kubernetes pod {pod}{}{}",
                job.as_deref()
                    .map(|j| format!(" of Job {j}"))
                    .unwrap_or_default(),
                index
                    .map(|i| format!(", completion index {i}"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// What the lock object holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    host: String,
    pid: u32,
    /// The job platform's name for the holder, when it runs on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
    /// Random: tells this run's lock from another's on the same host and pid.
    run: String,
    started_at: DateTime<Utc>,
    renewed_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl Holder {
    fn describe(&self) -> String {
        match &self.platform {
            Some(platform) => format!(
                "{}; host {}, process {}",
                platform.describe(),
                self.host,
                self.pid
            ),
            None => format!("host {}, process {}", self.host, self.pid),
        }
    }
}

/// The held lock; dropping it stops the renewals and removes it.
#[derive(Debug)]
pub struct CloudLock {
    gcs: GcsHandle,
    object: ObjectUrl,
    generation: Arc<AtomicI64>,
    renewing: tokio::task::JoinHandle<()>,
}

/// [`Gcs`] without `Debug`, for the lock's.
struct GcsHandle(Gcs);

impl std::fmt::Debug for GcsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gcs")
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".to_owned())
}

fn encode(holder: &Holder) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(holder).unwrap_or_default())
}

/// Takes the lock `object`: at once, by taking over a lease that ran out, or (with `wait`)
/// once its holder releases it or lets its lease run out.
pub(super) async fn acquire(
    object: ObjectUrl,
    wait: LockWait,
    waiting: impl FnOnce(&LockError),
) -> Result<CloudLock, LockError> {
    let shown = object.to_string();
    let failed = |source: StorageError| LockError::Cloud {
        lock: shown.clone(),
        source: Box::new(source),
    };
    let gcs = crate::gcs::io::get().map_err(failed)?.clone();
    let lease = lease();
    let now = Utc::now();
    let mine = Holder {
        host: host_name(),
        pid: std::process::id(),
        platform: Platform::of(&|name| std::env::var(name).ok()),
        run: format!("{:016x}", fastrand::u64(..)),
        started_at: now,
        renewed_at: now,
        expires_at: now + lease,
    };
    let started = tokio::time::Instant::now();
    let mut waiting = Some(waiting);
    loop {
        let attempt = {
            let (object, mine) = (object.clone(), mine.clone());
            gcs.run(move |s| async move { try_take(&s, &object, &mine, lease).await })
                .await
                .map_err(failed)?
        };
        let holder = match attempt {
            Taken::Yes(generation) => {
                let generation = Arc::new(AtomicI64::new(generation));
                let renewing = renew(&gcs, object.clone(), mine, generation.clone(), lease);
                return Ok(CloudLock {
                    gcs: GcsHandle(gcs),
                    object,
                    generation,
                    renewing,
                });
            }
            Taken::No(holder) => holder,
        };
        let busy = LockError::CloudBusy {
            lock: shown.clone(),
            holder: holder.describe(),
            until: holder.expires_at.to_rfc3339(),
        };
        let limit = match wait {
            LockWait::No => return Err(busy),
            LockWait::Forever => None,
            LockWait::AtMost(limit) => Some(limit),
        };
        if let Some(waiting) = waiting.take() {
            waiting(&busy);
        }
        if limit.is_some_and(|limit| started.elapsed() >= limit) {
            return Err(LockError::CloudStillBusy {
                lock: shown,
                holder: holder.describe(),
                waited: limit.unwrap_or_default(),
            });
        }
        // Again when the lease would run out, but at least every few seconds.
        let pause = (holder.expires_at - Utc::now())
            .to_std()
            .unwrap_or_default()
            .clamp(Duration::from_millis(200), Duration::from_secs(5));
        tokio::time::sleep(pause).await;
    }
}

enum Taken {
    Yes(i64),
    No(Holder),
}

/// One try: create the lock, or take over a lease that ran out.
async fn try_take(
    storage: &crate::gcs::Storage,
    object: &ObjectUrl,
    mine: &Holder,
    lease: Duration,
) -> Result<Taken, StorageError> {
    match storage
        .write(
            object,
            encode(mine),
            "application/json",
            Precondition::Absent,
        )
        .await
    {
        Ok(meta) => return Ok(Taken::Yes(meta.generation)),
        Err(StorageError::Changed { .. }) => {}
        Err(err) => return Err(err),
    }
    let Some((bytes, meta)) = storage.read(object).await? else {
        // Released in between: the next try creates it.
        return Ok(Taken::No(Holder {
            expires_at: Utc::now(),
            ..mine.clone()
        }));
    };
    let holder: Holder = match serde_json::from_slice(&bytes) {
        Ok(holder) => holder,
        // Not a lock gscrape wrote: left alone, as a held one.
        Err(_) => {
            return Err(StorageError::BadAnswer {
                url: object.to_string(),
                why: "it is not a lock gscrape wrote; remove it if no run holds it".to_owned(),
            })
        }
    };
    let retry = match (&mine.platform, &holder.platform) {
        (Some(me), Some(held)) => me.retries(held),
        _ => None,
    };
    if holder.expires_at > Utc::now() && retry.is_none() {
        return Ok(Taken::No(holder));
    }
    let now = Utc::now();
    let taking = Holder {
        renewed_at: now,
        expires_at: now + lease,
        ..mine.clone()
    };
    match storage
        .write(
            object,
            encode(&taking),
            "application/json",
            Precondition::Generation(meta.generation),
        )
        .await
    {
        Ok(taken) if holder.expires_at > now => {
            crate::say!(
                "took over the run lock {object} at once from {} (its lease ran until {}): {}",
                holder.describe(),
                holder.expires_at.to_rfc3339(),
                retry.unwrap_or_default()
            );
            Ok(Taken::Yes(taken.generation))
        }
        Ok(taken) => {
            crate::say!(
                "took over the run lock {object}: its holder ({}) last renewed its lease at {}, {} s ago (stopped without releasing it: killed?)",
                holder.describe(),
                holder.renewed_at.to_rfc3339(),
                (now - holder.renewed_at).num_seconds()
            );
            Ok(Taken::Yes(taken.generation))
        }
        // Another run took it over first.
        Err(StorageError::Changed { .. }) => Ok(Taken::No(holder)),
        Err(err) => Err(err),
    }
}

/// Renews the lease every third of it, on the Cloud Storage thread, until dropped.
fn renew(
    gcs: &Gcs,
    object: ObjectUrl,
    mine: Holder,
    generation: Arc<AtomicI64>,
    lease: Duration,
) -> tokio::task::JoinHandle<()> {
    gcs.spawn(move |storage| async move {
        loop {
            tokio::time::sleep(lease / 3).await;
            let now = Utc::now();
            let renewed = Holder {
                renewed_at: now,
                expires_at: now + lease,
                ..mine.clone()
            };
            let held = Precondition::Generation(generation.load(Ordering::SeqCst));
            match storage
                .write(&object, encode(&renewed), "application/json", held)
                .await
            {
                Ok(meta) => generation.store(meta.generation, Ordering::SeqCst),
                Err(StorageError::Changed { .. }) => {
                    let holder = match storage.read(&object).await {
                        Ok(Some((bytes, _))) => serde_json::from_slice::<Holder>(&bytes)
                            .map(|h| format!(" ({})", h.describe()))
                            .unwrap_or_default(),
                        _ => String::new(),
                    };
                    let why = format!(
                        "lost the run lock {object}: another run{holder} took it over (this run's lease was not renewed in time); this run stopped writing"
                    );
                    crate::say!("error: {why}");
                    super::lose(why);
                    return;
                }
                Err(err) => tracing::warn!("cannot renew the run lock {object}: {err}"),
            }
        }
    })
}

/// How long a release may take: best effort (a lock left behind runs out, or is taken over by
/// the platform's retry), so a run that failed on a storage outage does not hang at its end.
const RELEASE_LIMIT: Duration = Duration::from_secs(10);

impl Drop for CloudLock {
    fn drop(&mut self) {
        self.renewing.abort();
        if super::lost().is_cancelled() {
            return;
        }
        let (object, generation) = (self.object.clone(), self.generation.load(Ordering::SeqCst));
        let shown = object.to_string();
        let released = self.gcs.0.block(move |s| async move {
            tokio::time::timeout(RELEASE_LIMIT, s.delete(&object, Some(generation))).await
        });
        match released {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => crate::say!(
                "warning: cannot release the run lock {shown}: {err}; its lease runs out by itself"
            ),
            Err(_) => crate::say!(
                "warning: cannot release the run lock {shown} within {} s; its lease runs out by itself",
                RELEASE_LIMIT.as_secs()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Option<Platform> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Platform::of(&move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn a_later_attempt_of_the_same_task_takes_over_and_nothing_else_does() {
        let run = |e: &str, t: &str, a: &str| {
            env(&[
                ("CLOUD_RUN_EXECUTION", e),
                ("CLOUD_RUN_TASK_INDEX", t),
                ("CLOUD_RUN_TASK_ATTEMPT", a),
            ])
            .unwrap()
        };
        assert!(run("job-x", "2", "1")
            .retries(&run("job-x", "2", "0"))
            .is_some());
        assert!(run("job-x", "2", "0")
            .retries(&run("job-x", "2", "0"))
            .is_none());
        assert!(run("job-x", "2", "0")
            .retries(&run("job-x", "2", "1"))
            .is_none());
        assert!(run("job-x", "1", "1")
            .retries(&run("job-x", "2", "0"))
            .is_none());
        assert!(run("job-y", "2", "1")
            .retries(&run("job-x", "2", "0"))
            .is_none());

        let pod = |name: &str, index: &str, job: Option<&str>| {
            let mut vars = vec![
                ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
                ("HOSTNAME", name),
                ("JOB_COMPLETION_INDEX", index),
            ];
            if let Some(job) = job {
                vars.push(("GSCRAPE_JOB_NAME", job));
            }
            env(&vars).unwrap()
        };
        let held = pod("daily-1-abcde", "1", Some("daily"));
        assert!(pod("daily-1-fghij", "1", Some("daily"))
            .retries(&held)
            .is_some());
        assert!(pod("daily-1-abcde", "1", Some("daily"))
            .retries(&held)
            .is_none());
        assert!(pod("daily-2-fghij", "2", Some("daily"))
            .retries(&held)
            .is_none());
        assert!(pod("other-1-fghij", "1", Some("other"))
            .retries(&held)
            .is_none());
        assert!(pod("daily-1-fghij", "1", None)
            .retries(&pod("daily-1-abcde", "1", None))
            .is_none());
        assert_eq!(env(&[("HOSTNAME", "laptop")]), None);
    }

    #[test]
    fn a_lock_without_a_platform_still_reads() {
        let old = r#"{"host":"h","pid":1,"run":"r","started_at":"2026-01-01T00:00:00Z","renewed_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:03:00Z"}"#;
        let holder: Holder = serde_json::from_str(old).unwrap();
        assert_eq!(holder.platform, None);
        let mut mine = holder.clone();
        mine.platform = Some(Platform::CloudRun {
            execution: "e".into(),
            task: 0,
            attempt: 1,
        });
        let back: Holder = serde_json::from_slice(&encode(&mine)).unwrap();
        assert_eq!(back.platform, mine.platform);
        assert_eq!(
            back.describe(),
            "Cloud Run execution e, task 0, attempt 1; host h, process 1"
        );
    }
}
