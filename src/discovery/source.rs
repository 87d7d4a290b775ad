//! Where Discovery documents come from: a local file named by the query, the on-disk cache
//! (fresh for 24 h), or the Discovery service (`GSCRAPE_DISCOVERY_URL`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{Request, StatusCode};

use super::{lock, Document};
use crate::http::retry::{classify, gave_up_note, send_retrying, RetryPolicy, Verdict};
use crate::http::{self as gh, GoogleError, HyperClient};

/// The public Discovery service; `{api}` and `{version}` are filled in.
pub const DEFAULT_DISCOVERY_URL: &str =
    "https://www.googleapis.com/discovery/v1/apis/{api}/{version}/rest";

/// How long a cached document is used without asking the service again.
pub const CACHE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot fetch the Discovery document {api}:{version}: {source}{}", gave_up_note(*.retries))]
    Fetch {
        api: String,
        version: String,
        #[source]
        source: gh::HttpError,
        retries: u32,
    },
    #[error("the Discovery service answered HTTP {} for {api}:{version} ({url}){}; try again later", .status.as_u16(), gave_up_note(*.retries))]
    Unavailable {
        api: String,
        version: String,
        status: StatusCode,
        url: String,
        retries: u32,
    },
    #[error("the Discovery service has no document {api}:{version} (HTTP {status} from {url}); check `api` and `version`")]
    NotFound {
        api: String,
        version: String,
        status: StatusCode,
        url: String,
    },
    #[error("{origin} is not a valid Discovery document: {source}")]
    Invalid {
        origin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("--offline: no cached Discovery document {api}:{version} in {}; run once without --offline", .dir.display())]
    NotCached {
        api: String,
        version: String,
        dir: PathBuf,
    },
    #[error("cannot read the Discovery document {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Discovery URL template {0:?} does not make a valid URL")]
    BadUrl(String),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
}

/// How the cache is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CachePolicy {
    /// Use a fresh cached copy, else fetch (and fall back to a stale copy when fetching fails).
    #[default]
    Normal,
    /// Never fetch (`--offline`).
    Offline,
    /// Always fetch (`--refresh-discovery`).
    Refresh,
}

/// Loads documents, each at most once per process.
pub struct DiscoverySource {
    client: HyperClient,
    url_template: String,
    cache_dir: Option<PathBuf>,
    policy: CachePolicy,
    timeout: Duration,
    /// Transient failures of the Discovery service are retried like those of API calls.
    retry: RetryPolicy,
    loaded: Mutex<HashMap<String, Arc<Document>>>,
    /// The project's `gscrape.lock` and its directory: a pinned API's document is read from
    /// there, never fetched.
    lock: Option<(lock::Lock, PathBuf)>,
}

impl DiscoverySource {
    pub fn new(
        client: HyperClient,
        url_template: String,
        cache_dir: Option<PathBuf>,
        policy: CachePolicy,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Self {
        DiscoverySource {
            client,
            url_template,
            cache_dir,
            policy,
            timeout,
            retry,
            loaded: Mutex::new(HashMap::new()),
            lock: None,
        }
    }

    /// Reads pinned documents from `lock` (found in `dir`).
    pub fn with_lock(mut self, lock: lock::Lock, dir: PathBuf) -> Self {
        self.lock = Some((lock, dir));
        self
    }

    /// The lock documents are pinned by, if any.
    pub fn lock(&self) -> Option<&lock::Lock> {
        self.lock.as_ref().map(|(lock, _)| lock)
    }

    /// The document for `api` + `version`, from memory, the cache or the service.
    pub async fn load(&self, api: &str, version: &str) -> Result<Arc<Document>, DiscoveryError> {
        let key = format!("{api}:{version}");
        if let Some(doc) = self.remembered(&key) {
            return Ok(doc);
        }
        let doc = match self
            .lock
            .as_ref()
            .and_then(|(l, dir)| Some((l.pinned(api, version)?, dir)))
        {
            Some((pin, dir)) => {
                let text = lock::Lock::document(dir, pin).map_err(DiscoveryError::Lock)?;
                parse(&text, &dir.join(&pin.file).display().to_string())?
            }
            None => self.latest(api, version).await?,
        };
        let doc = Arc::new(doc);
        self.remember(key, doc.clone());
        Ok(doc)
    }

    /// The document for `api` + `version` as Google serves it now (from the cache while
    /// fresh), whatever the lock pins; with its text.
    pub async fn latest_text(
        &self,
        api: &str,
        version: &str,
    ) -> Result<(Document, String), DiscoveryError> {
        self.load_uncached(api, version).await
    }

    async fn latest(&self, api: &str, version: &str) -> Result<Document, DiscoveryError> {
        Ok(self.load_uncached(api, version).await?.0)
    }

    /// A document kept in a file (a query's `discovery = "path"`).
    pub fn load_file(&self, path: &Path) -> Result<Arc<Document>, DiscoveryError> {
        let key = format!("file:{}", path.display());
        if let Some(doc) = self.remembered(&key) {
            return Ok(doc);
        }
        let text = std::fs::read_to_string(path).map_err(|source| DiscoveryError::Read {
            path: path.to_owned(),
            source,
        })?;
        let doc = Arc::new(parse(&text, &path.display().to_string())?);
        self.remember(key, doc.clone());
        Ok(doc)
    }

    fn remembered(&self, key: &str) -> Option<Arc<Document>> {
        self.loaded.lock().ok()?.get(key).cloned()
    }

    fn remember(&self, key: String, doc: Arc<Document>) {
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(key, doc);
        }
    }

    async fn load_uncached(
        &self,
        api: &str,
        version: &str,
    ) -> Result<(Document, String), DiscoveryError> {
        let cached = self.cache_path(api, version);
        if self.policy != CachePolicy::Refresh {
            if let Some(path) = &cached {
                let fresh = is_fresh(path);
                if fresh || self.policy == CachePolicy::Offline {
                    if let Ok(text) = std::fs::read_to_string(path) {
                        if let Ok(doc) = parse(&text, &path.display().to_string()) {
                            return Ok((doc, text));
                        }
                        tracing::warn!("ignoring the corrupt cached document {}", path.display());
                    }
                }
            }
        }
        if self.policy == CachePolicy::Offline {
            return Err(DiscoveryError::NotCached {
                api: api.to_owned(),
                version: version.to_owned(),
                dir: self.cache_dir.clone().unwrap_or_default(),
            });
        }
        match self.fetch(api, version).await {
            Ok(text) => {
                let doc = parse(&text, &format!("the Discovery document {api}:{version}"))?;
                if let Some(path) = &cached {
                    if let Err(err) = crate::util::write_atomically(path, text.as_bytes()) {
                        tracing::warn!("cannot cache {}: {err}", path.display());
                    }
                }
                Ok((doc, text))
            }
            Err(err @ (DiscoveryError::Fetch { .. } | DiscoveryError::Unavailable { .. })) => {
                // A scheduled run should survive a Discovery outage when it has any copy.
                let stale = cached
                    .as_deref()
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .and_then(|text| Some((parse(&text, "cache").ok()?, text)));
                match stale {
                    Some(found) => {
                        tracing::warn!("{err}; using the older cached copy");
                        Ok(found)
                    }
                    None => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// The document's URL: the template with `{api}` and `{version}` filled in.
    fn url(&self, api: &str, version: &str) -> String {
        self.url_template
            .replace("{api}", api)
            .replace("{version}", version)
    }

    async fn fetch(&self, api: &str, version: &str) -> Result<String, DiscoveryError> {
        let url = self.url(api, version);
        let request = Request::get(&url)
            .body(String::new())
            .map_err(|_| DiscoveryError::BadUrl(self.url_template.clone()))?;
        tracing::info!("fetching the Discovery document {api}:{version} from {url}");
        let sent = send_retrying(&self.client, request, self.timeout, &self.retry).await;
        let retries = sent.retries;
        let response = sent.result.map_err(|source| DiscoveryError::Fetch {
            api: api.to_owned(),
            version: version.to_owned(),
            source,
            retries,
        })?;
        let google = || GoogleError::from_body(&response.body);
        if !response.status.is_success() && classify(response.status, &google()) == Verdict::Retry {
            return Err(DiscoveryError::Unavailable {
                api: api.to_owned(),
                version: version.to_owned(),
                status: response.status,
                url,
                retries,
            });
        }
        if !response.status.is_success() {
            return Err(DiscoveryError::NotFound {
                api: api.to_owned(),
                version: version.to_owned(),
                status: response.status,
                url,
            });
        }
        Ok(String::from_utf8_lossy(&response.body).into_owned())
    }

    /// The cache file of a document, named after its API and version (for people) and a hash
    /// of its URL, so that another Discovery endpoint never gets this one's document.
    fn cache_path(&self, api: &str, version: &str) -> Option<PathBuf> {
        let safe = |s: &str| s.replace(['/', '\\', ':'], "_");
        let url = url_hash(&self.url(api, version));
        self.cache_dir
            .as_ref()
            .map(|dir| dir.join(format!("{}.{}.{url:012x}.json", safe(api), safe(version))))
    }
}

/// 48 bits of FNV-1a of `url`: stable across builds and Rust versions (unlike std's hasher),
/// so cache files stay valid from one gscrape to the next.
fn url_hash(url: &str) -> u64 {
    let hash = url.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    hash >> 16
}

fn parse(text: &str, origin: &str) -> Result<Document, DiscoveryError> {
    let mut doc = Document::from_json(text).map_err(|source| DiscoveryError::Invalid {
        origin: origin.to_owned(),
        source,
    })?;
    doc.sha256 = crate::util::sha256_hex(text.as_bytes());
    Ok(doc)
}

fn is_fresh(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age < CACHE_TTL)
}

#[cfg(test)]
mod tests {
    use super::url_hash;

    #[test]
    fn url_hashes_are_stable_and_tell_urls_apart() {
        // FNV-1a of "a" is 0xaf63dc4c8601ec8c; the top 48 bits name the file.
        assert_eq!(url_hash("a"), 0xaf63_dc4c_8601);
        assert_ne!(
            url_hash("http://127.0.0.1:1/discovery/v1/apis/drive/v3/rest"),
            url_hash("http://127.0.0.1:2/discovery/v1/apis/drive/v3/rest")
        );
    }
}
