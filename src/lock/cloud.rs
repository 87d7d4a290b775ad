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

/// What the lock object holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    host: String,
    pid: u32,
    /// Random: tells this run's lock from another's on the same host and pid.
    run: String,
    started_at: DateTime<Utc>,
    renewed_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl Holder {
    fn describe(&self) -> String {
        format!("host {}, process {}", self.host, self.pid)
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
    if holder.expires_at > Utc::now() {
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
                    crate::say!(
                        "error: lost the run lock {object}: another run took it over (this run's lease ran out); two runs now write the same outputs"
                    );
                    return;
                }
                Err(err) => tracing::warn!("cannot renew the run lock {object}: {err}"),
            }
        }
    })
}

impl Drop for CloudLock {
    fn drop(&mut self) {
        self.renewing.abort();
        let (object, generation) = (self.object.clone(), self.generation.load(Ordering::SeqCst));
        let _ = self
            .gcs
            .0
            .block(move |s| async move { s.delete(&object, Some(generation)).await });
    }
}
