//! The metadata server of Google Cloud (GCE, GKE Workload Identity, Cloud Run, Cloud
//! Functions): tokens of the attached service account, without a key. Found as google-auth
//! finds it: `GCE_METADATA_HOST` (else `metadata.google.internal`) for its data,
//! `GCE_METADATA_IP` (else 169.254.169.254) for the probe, `NO_GCE_CHECK=true` to skip it;
//! the probe is one request of at most a second, made only when no other credential is found.

use std::time::{Duration, SystemTime};

use http::Request;

use super::source::{ChainError, Grant, Http, TokenSource};
use super::AuthError;

/// The probe's limit: off Google Cloud the address does not answer, and a run must not wait.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

const LINK: &str = "the metadata server";

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

/// The metadata server, when this runs on Google Cloud (or `GCE_METADATA_HOST` points at one):
/// a probe answered 200 with `Metadata-Flavor: Google`. `None` off Google Cloud.
pub async fn detect(http: &Http) -> Option<MetadataServer> {
    if std::env::var("NO_GCE_CHECK").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
        return None;
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let host = var("GCE_METADATA_HOST").unwrap_or_else(|| "metadata.google.internal".to_owned());
    let probe = var("GCE_METADATA_IP")
        .or_else(|| var("GCE_METADATA_HOST"))
        .unwrap_or_else(|| "169.254.169.254".to_owned());
    let request = Request::get(format!("http://{probe}/"))
        .header("metadata-flavor", "Google")
        .body(String::new())
        .ok()?;
    let answer = crate::http::send(&http.client, request, PROBE_TIMEOUT)
        .await
        .ok()?;
    let flavor = answer
        .headers
        .get("metadata-flavor")
        .is_some_and(|v| v.as_bytes() == b"Google");
    if !(answer.status.is_success() && flavor) {
        return None;
    }
    let server = MetadataServer {
        email: text(http, &host, "instance/service-accounts/default/email").await,
        project: text(http, &host, "project/project-id").await,
        host,
    };
    Some(server)
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
