//! The metadata server of Google Cloud (GCE, GKE Workload Identity, Cloud Run, Cloud
//! Functions): tokens of the attached service account, without a key. Found as google-auth
//! (google/auth/compute_engine/_metadata.py) finds it: `GCE_METADATA_HOST` (else
//! `metadata.google.internal`) for its data, `GCE_METADATA_IP` (else 169.254.169.254) for the
//! probe, `NO_GCE_CHECK=true` to skip it. The probe is made only when no other credential is
//! found, and tried [`PROBE_TRIES`] times, each within `GCE_METADATA_TIMEOUT` seconds (3 by
//! default, as google-auth's `ping`), with google-auth's backoff (1 s, then 2 s) between
//! tries. Where gscrape differs: `GCE_METADATA_TIMEOUT` may be a decimal (`0.5`), and an
//! answer of 429 or 5xx is tried again and, if the last try still gets one, is an error
//! saying the server was seen but failed (google-auth takes it for "not on Google Cloud").

use std::time::{Duration, SystemTime};

use http::Request;

use super::source::{ChainError, Grant, Http, TokenSource};
use super::AuthError;

/// How many times the probe is tried (google-auth's `ping(retry_count=3)`).
pub const PROBE_TRIES: u32 = 3;

/// The probe's limit per try when `GCE_METADATA_TIMEOUT` does not say (google-auth's
/// `_METADATA_DEFAULT_TIMEOUT`).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

const LINK: &str = "the metadata server";

/// Each try's limit: `GCE_METADATA_TIMEOUT` seconds (whole or decimal, above 0), else 3 s.
pub fn probe_timeout(setting: Option<&str>) -> Duration {
    setting
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 3600.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(PROBE_TIMEOUT)
}

/// The pause before try `n` (from 1): google-auth's exponential backoff, 1 s then 2 s.
fn backoff(n: u32) -> Duration {
    Duration::from_secs(1 << n.saturating_sub(1).min(4))
}

/// The metadata server found, and the account it gives tokens of.
#[derive(Clone)]
pub struct MetadataServer {
    /// `host[:port]` of its data requests.
    pub host: String,
    /// The default service account's email (`…/service-accounts/default/email`).
    pub email: Option<String>,
    /// The project (`…/project/project-id`).
    pub project: Option<String>,
}

/// The metadata server, when this runs on Google Cloud (or `GCE_METADATA_IP` points at one):
/// a probe answered 200 with `Metadata-Flavor: Google`. `Ok(None)` off Google Cloud (no
/// answer in any try, or an answer that is not the metadata server's); an error (transient)
/// when it answered but failed each time.
pub async fn detect(http: &Http) -> Result<Option<MetadataServer>, AuthError> {
    if std::env::var("NO_GCE_CHECK").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
        return Ok(None);
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let host = var("GCE_METADATA_HOST").unwrap_or_else(|| "metadata.google.internal".to_owned());
    let probe = var("GCE_METADATA_IP").unwrap_or_else(|| "169.254.169.254".to_owned());
    let timeout = probe_timeout(var("GCE_METADATA_TIMEOUT").as_deref());
    let mut failed: Option<String> = None;
    for n in 0..PROBE_TRIES {
        if n > 0 {
            tokio::time::sleep(backoff(n)).await;
        }
        let Ok(request) = Request::get(format!("http://{probe}/"))
            .header("metadata-flavor", "Google")
            .body(String::new())
        else {
            return Ok(None);
        };
        let answer = match crate::http::send(&http.client, request, timeout).await {
            Ok(answer) => answer,
            Err(err) => {
                tracing::debug!(
                    "metadata server probe {} of {PROBE_TRIES} at {probe}: {err}",
                    n + 1
                );
                continue;
            }
        };
        let status = answer.status.as_u16();
        if status == 429 || status >= 500 {
            failed = Some(format!("answered the probe at {probe} HTTP {status}"));
            tracing::debug!(
                "metadata server probe {} of {PROBE_TRIES}: HTTP {status}",
                n + 1
            );
            continue;
        }
        let flavor = answer
            .headers
            .get("metadata-flavor")
            .is_some_and(|v| v.as_bytes() == b"Google");
        if !(answer.status.is_success() && flavor) {
            return Ok(None);
        }
        let server = MetadataServer {
            email: text(http, &host, "instance/service-accounts/default/email").await,
            project: text(http, &host, "project/project-id").await,
            host,
        };
        return Ok(Some(server));
    }
    match failed {
        None => Ok(None),
        Some(what) => Err(ChainError {
            link: LINK.to_owned(),
            what: format!("was seen but failed: it {what} in each of {PROBE_TRIES} tries"),
            hint: "this is on Google Cloud and its metadata server is failing for now; \
                   try again later (a pod just started: its metadata server may not be ready)"
                .to_owned(),
            transient: true,
        }
        .into()),
    }
}

/// A text value of the metadata server (`None` when it does not say).
async fn text(http: &Http, host: &str, path: &str) -> Option<String> {
    let request = get(host, path).ok()?;
    let (response, _) = http.send(LINK, request).await.ok()?;
    let value = String::from_utf8(response.body.to_vec()).ok()?;
    (response.status.is_success() && !value.trim().is_empty()).then(|| value.trim().to_owned())
}

fn get(host: &str, path: &str) -> Result<Request<String>, http::Error> {
    Request::get(format!("http://{host}/computeMetadata/v1/{path}"))
        .header("metadata-flavor", "Google")
        .body(String::new())
}

#[async_trait::async_trait]
impl TokenSource for MetadataServer {
    async fn fetch(&self, http: &Http, scopes: &[String]) -> Result<Grant, AuthError> {
        let mut path = "instance/service-accounts/default/token".to_owned();
        if !scopes.is_empty() {
            let joined = scopes.join(",");
            let encoded: String = form_urlencoded::byte_serialize(joined.as_bytes()).collect();
            path += &format!("?scopes={encoded}");
        }
        let request = get(&self.host, &path).map_err(|_| {
            ChainError::new(
                LINK,
                "has an address that is not a URL",
                "check GCE_METADATA_HOST",
            )
        })?;
        let (response, retries) = http.send(LINK, request).await?;
        if !response.status.is_success() {
            return Err(ChainError::refused(
                LINK,
                &response,
                retries,
                "check that the instance, pod (Workload Identity) or job runs as a service \
                 account, and that its access scopes allow the run's scopes",
            )
            .into());
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            access_token: String,
            expires_in: Option<u64>,
        }
        let answer: Answer = serde_json::from_slice(&response.body).map_err(|_| {
            ChainError::new(
                LINK,
                "answered a token that is not JSON",
                "is GCE_METADATA_HOST a metadata server?",
            )
        })?;
        crate::redact::register(&answer.access_token);
        Ok(Grant {
            access_token: answer.access_token,
            expires_at: answer
                .expires_in
                .map(|s| SystemTime::now() + Duration::from_secs(s)),
            refresh_token: None,
            scopes: None,
            id_token: None,
        })
    }

    fn service_account(&self) -> Option<String> {
        self.email.clone()
    }

    fn why(&self) -> String {
        "no access token, key file, login or API key; this runs on Google Cloud (the metadata server answered)".to_owned()
    }

    fn status(&self, _: Option<&str>) -> String {
        let mut out = String::new();
        if let Some(email) = &self.email {
            out += &format!("account: {}\n", crate::redact::quote(email));
        }
        if let Some(project) = &self.project {
            out += &format!("project: {}\n", crate::redact::quote(project));
        }
        out + super::source::SCOPES_PER_RUN
    }

    fn describe(&self) -> String {
        format!(
            "the metadata server ({}): service account {}{}",
            self.host,
            self.email.as_deref().unwrap_or("(not named)"),
            self.project
                .as_deref()
                .map(|p| format!(", project {p}"))
                .unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_waits_as_google_auth_does_unless_told() {
        assert_eq!(PROBE_TRIES, 3);
        assert_eq!(probe_timeout(None), Duration::from_secs(3));
        assert_eq!(probe_timeout(Some("5")), Duration::from_secs(5));
        assert_eq!(probe_timeout(Some("0.25")), Duration::from_millis(250));
        for bad in ["", "x", "0", "-1", "nan"] {
            assert_eq!(probe_timeout(Some(bad)), Duration::from_secs(3), "{bad:?}");
        }
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
    }
}
