//! The run's one Cloud Storage connection, on a thread of its own with its own small runtime.
//!
//! Why a thread: the sinks and the state files are synchronous, and run on the main thread
//! (which drives plain exports) as well as on the runtime's workers. Waiting there for the
//! runtime that thread drives would deadlock or stall it; waiting for another runtime is
//! safe from any thread. Async callers await the same work without blocking ([`Gcs::run`]).
//! Installed once per process by the command that needs it ([`install`]), like the endpoints.

use std::future::Future;
use std::sync::OnceLock;

use super::{Storage, StorageError};

/// A handle to the Cloud Storage thread. Cheap to clone.
#[derive(Clone)]
pub struct Gcs {
    storage: Storage,
    runtime: tokio::runtime::Handle,
}

static GCS: OnceLock<Gcs> = OnceLock::new();

impl Gcs {
    /// Starts the thread for `storage`.
    pub fn start(storage: Storage) -> std::io::Result<Gcs> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("gscrape-gcs".to_owned())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        Ok(Gcs {
            storage,
            runtime: handle,
        })
    }

    /// Runs `work` on the Cloud Storage thread and waits for it, from synchronous code on any
    /// thread.
    pub fn block<T, F, Fut>(&self, work: F) -> T
    where
        F: FnOnce(Storage) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let future = work(self.storage.clone());
        self.runtime.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv()
            .expect("the Cloud Storage thread runs as long as the process")
    }

    /// Runs `work` on the Cloud Storage thread, awaited from async code.
    pub async fn run<T, F, Fut>(&self, work: F) -> T
    where
        F: FnOnce(Storage) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let task = self.runtime.spawn(work(self.storage.clone()));
        task.await
            .expect("a Cloud Storage task does not panic or get cancelled")
    }

    /// Starts `work` on the Cloud Storage thread and leaves it running (a lease renewal).
    pub fn spawn<F, Fut>(&self, work: F) -> tokio::task::JoinHandle<()>
    where
        F: FnOnce(Storage) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(work(self.storage.clone()))
    }
}

/// Makes `gcs` the process's Cloud Storage connection (a second call keeps the first).
pub fn install(gcs: Gcs) {
    let _ = GCS.set(gcs);
}

/// The process's Cloud Storage connection, if a command set one up.
pub fn get() -> Result<&'static Gcs, StorageError> {
    GCS.get().ok_or(StorageError::NotConnected)
}

/// True once a connection is installed.
pub fn installed() -> bool {
    GCS.get().is_some()
}
