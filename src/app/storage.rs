//! The run's Cloud Storage connection, set up when an output or the run's state is a `gs://`
//! location: the run's own credential (never a delegated user: the exports' objects belong to
//! the job), asked for Cloud Storage's read-write scope only.

use crate::auth::credentials::AuthSettings;
use crate::auth::source::Http;
use crate::auth::{credentials, Authorizers};
use crate::gcs::io::Gcs;
use crate::gcs::Storage;

use super::error::AppError;

/// Installs the process's Cloud Storage connection (once; later calls keep it).
pub(crate) async fn connect(auth: &AuthSettings, http: &Http) -> Result<(), AppError> {
    if crate::gcs::io::installed() {
        return Ok(());
    }
    // A token would be refused at the first request: say so now, naming the override.
    let root = crate::endpoints::root_url("storage", crate::gcs::DEFAULT_ROOT);
    let insecure = (root.parse())
        .map(|uri| !crate::http::may_carry_bearer(&uri))
        .unwrap_or(true);
    if let (true, Some(origin)) = (insecure, crate::endpoints::origin("storage")) {
        return Err(AppError::Usage(format!(
            "refusing to send a bearer token over plain http to Cloud Storage at {root} (the root \
             URL of {origin}): use https, or an emulator on this machine ({})",
            crate::http::PLAIN_HTTP_RULE
        )));
    }
    let credential =
        match credentials::resolve(auth, http).await {
            Ok(credential) if credential.gives_tokens() => credential,
            Ok(_) => return Err(AppError::Usage(
                "gs:// outputs and state are written with a credential (a service account, the \
                 metadata server, a login, an access token): an API key cannot write to Cloud \
                 Storage; see `gscrape auth status`"
                    .to_owned(),
            )),
            Err(err) => return Err(err.into()),
        };
    let quota = auth.quota_project_of(&credential).map(|(p, _)| p);
    let authorizers = Authorizers::new(
        credential,
        vec![crate::gcs::SCOPE.to_owned()],
        quota,
        http.client.clone(),
        http.timeout,
        http.retry.clone(),
    )?;
    let auth = authorizers.for_subject(None)?;
    let client = crate::http::build_client()?;
    let storage = Storage::new(client, auth, http.timeout, http.retry.clone());
    let gcs = Gcs::start(storage)
        .map_err(|e| AppError::io("cannot start the Cloud Storage thread", e))?;
    crate::gcs::io::install(gcs);
    Ok(())
}

/// Installs the run's state location (`--state`, checked here as a config file's is read
/// unchecked) and, when it or the output directory is in Cloud Storage, the connection: before
/// the lock, which lives there.
pub(crate) async fn set_up(
    args: &crate::settings::RunSettings,
    client: &crate::http::HyperClient,
) -> Result<(), AppError> {
    if let Some(state) = &args.state {
        crate::state::check(state).map_err(|why| AppError::Usage(format!("--state: {why}")))?;
    }
    let out_dir = args.out_dir.to_string_lossy();
    if crate::gcs::is_gs(&out_dir) {
        crate::gcs::Prefix::parse(&out_dir)
            .map_err(|why| AppError::Usage(format!("--out-dir: {why}")))?;
    }
    crate::state::install(args.state.clone());
    let summary_in_cloud = (args.summary_json.as_deref())
        .is_some_and(|path| crate::gcs::is_gs(&path.to_string_lossy()));
    if crate::state::in_cloud(&args.out_dir) || crate::gcs::is_gs(&out_dir) || summary_in_cloud {
        let http = Http {
            client: client.clone(),
            timeout: args.timeout,
            retry: args.retry.clone(),
        };
        connect(&args.auth, &http).await?;
    }
    Ok(())
}
