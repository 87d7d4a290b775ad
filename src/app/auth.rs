//! `gscrape auth login|status|logout`, and choosing the credentials of a run.

use std::time::Duration;

use super::AppError;
use crate::auth::credentials::{self, AuthSettings, Credential};
use crate::auth::login::{self, LoginRequest};
use crate::auth::source::Granted;
use crate::auth::{cache, oauth, scopes, AuthError, Authorizers, TokenCache};
use crate::cli::{AuthCommand, LoginArgs, LogoutArgs, StatusArgs};
use crate::error::Exit;
use crate::http::retry::RetryPolicy;
use crate::http::HyperClient;
use crate::plan::QueryPlan;
use crate::query::{load_queries, query_files};
use crate::redact::quote;
use crate::run::JobAuth;
use crate::settings::{auth_settings, config_dir, retry_policy, DiscoverySettings};
use crate::template::{is_template, Templates};

/// `gscrape auth …`; `login_matches` are `auth login`'s own (its Discovery flags go over the
/// config files').
pub(super) async fn command(
    command: AuthCommand,
    login_matches: Option<&clap::ArgMatches>,
    client: HyperClient,
) -> Result<Exit, AppError> {
    match command {
        AuthCommand::Login(args) => login(args, login_matches, client).await,
        AuthCommand::Status(args) => status(args, client).await,
        AuthCommand::Logout(args) => logout(args, client).await,
    }
}

/// How each plan authenticates: one authorizer per delegated subject, each holding a token
/// already (fetched once here, before any request fans out) — except a fan-out whose
/// `subject` is a template, which gets its subjects' tokens as its parent's records arrive.
pub(super) async fn authorizers_for(
    plans: &[QueryPlan],
    settings: &AuthSettings,
    flag_subject: Option<&str>,
    client: &HyperClient,
    timeout: Duration,
    retry: RetryPolicy,
    templates: &Templates,
) -> Result<Vec<JobAuth>, AppError> {
    let http = crate::auth::source::Http {
        client: client.clone(),
        timeout,
        retry: retry.clone(),
    };
    let credential = run_credential(plans, settings, &http).await?;
    if let Some(login) = credential.granted() {
        login_covers(&login, plans)?;
    }
    let wanted = scopes::with_destinations(
        scopes::scopes_for(plans.iter().map(|p| &p.method)),
        plans.iter().flat_map(|p| p.query.destination_scopes()),
    );
    let describe = credential.describe();
    let quota = settings.quota_project_of(&credential).map(|(p, _)| p);
    let authorizers = Authorizers::new(credential, wanted, quota, client.clone(), timeout, retry)?;
    let mut auths = Vec::with_capacity(plans.len());
    for plan in plans {
        let subject = plan
            .query
            .subject
            .clone()
            .or_else(|| flag_subject.map(str::to_owned));
        auths.push(job_auth(plan, subject, &authorizers, &describe, templates).await?);
    }
    Ok(auths)
}

/// The credential of a run. Public methods (no scope listed, like Google's API directory) need
/// none: a first run works before any login. A method with a scope still needs one, at once.
async fn run_credential(
    plans: &[QueryPlan],
    settings: &AuthSettings,
    http: &crate::auth::source::Http,
) -> Result<Credential, AppError> {
    match credentials::resolve(settings, http).await {
        Ok(credential) => Ok(credential),
        Err(AuthError::NoCredentials)
            if plans
                .iter()
                .all(|p| p.method.scopes.is_empty() && p.query.destination_scopes().is_empty()) =>
        {
            Ok(Credential::public())
        }
        Err(err) => Err(err.into()),
    }
}

/// How `plan` authenticates, acting as `subject` (its own, else `--subject`): a template
/// subject of a fan-out per record, else one authorizer holding its token already.
async fn job_auth(
    plan: &QueryPlan,
    subject: Option<String>,
    authorizers: &Authorizers,
    describe: &str,
    templates: &Templates,
) -> Result<JobAuth, AppError> {
    if plan.query.subject.is_some() && !authorizers.can_delegate() {
        return Err(AppError::Usage(format!(
            "{}: subject: acting as a user (domain-wide delegation) needs a service \
             account — a key (--credentials FILE or GOOGLE_APPLICATION_CREDENTIALS), the \
             metadata server's, or an impersonated one (--impersonate-service-account) — \
             but the credential is the {describe}",
            plan.query.file.display()
        )));
    }
    if subject.is_some() && !authorizers.can_delegate() {
        return Err(AuthError::SubjectNeedsServiceAccount(describe.to_owned()).into());
    }
    let subject = match subject {
        Some(template) if plan.query.for_each.is_some() && is_template(&template) => {
            return Ok(JobAuth::PerRecord {
                subject: template,
                authorizers: authorizers.clone(),
            });
        }
        Some(template) => match templates.render(&template, &plan.context(None)) {
            Ok(subject) => Some(subject.trim().to_owned()),
            Err(message) => {
                return Err(AppError::Usage(format!(
                    "{}: subject: {message}",
                    plan.query.file.display()
                )));
            }
        },
        None => None,
    };
    let authorizer = authorizers.for_subject(subject.as_deref())?;
    authorizer.access_token().await?;
    Ok(JobAuth::Fixed(authorizer))
}

/// A cached login must have been granted a scope each method accepts (and the scope of each
/// destination, `[sheet]`, `[bigquery]`): which are missing, one line each, before any request.
fn login_covers(login: &Granted<'_>, plans: &[QueryPlan]) -> Result<(), AppError> {
    let account = quote(login.account.unwrap_or("the cached account"));
    let mut missing = Vec::new();
    for plan in plans
        .iter()
        .filter(|p| !scopes::covers(login.scopes, &p.method))
    {
        missing.push(format!(
            "{}: the login of {account} was not granted a scope that {} accepts ({}); \
             log in again: gscrape auth login --client-secret FILE",
            plan.query.name,
            plan.method.id,
            scopes::least_privilege(&plan.method.scopes).unwrap_or("see `gscrape describe`")
        ));
    }
    for plan in plans {
        for scope in plan.query.destination_scopes() {
            if login.scopes.iter().any(|s| s == scope) {
                continue;
            }
            let (table, may_not) = match scope {
                scopes::SHEETS_WRITE => ("[sheet]", "write Google Sheets"),
                _ => ("[bigquery]", "load BigQuery tables"),
            };
            missing.push(format!(
                "{}: {table}: the login of {account} may not {may_not} ({scope}); log in \
                 again with this query: gscrape auth login --client-secret FILE {}",
                plan.query.name,
                plan.query.file.display()
            ));
        }
    }
    if !missing.is_empty() {
        // One line each, as the problems of queries are.
        return Err(AuthError::MissingScope(missing.join("\nerror: ")).into());
    }
    Ok(())
}

async fn login(
    args: LoginArgs,
    matches: Option<&clap::ArgMatches>,
    client: HyperClient,
) -> Result<Exit, AppError> {
    let discovery = super::discovery_settings(&args.discovery, matches, &args.config)?;
    let needs = needs_of_queries(&args, &discovery, &client).await;
    let mut wanted = scopes::with_destinations(
        scopes::scopes_for(needs.iter().filter_map(|n| n.method.as_ref())),
        needs.iter().flat_map(|n| n.destinations.iter().copied()),
    );
    for scope in &args.scopes {
        let scope = scope_url(scope);
        if !wanted.contains(&scope) {
            wanted.push(scope);
        }
    }
    if wanted.is_empty() {
        return Err(AppError::Usage(format!(
            "no scopes to ask for: no query found in {} — name query files, or add --scope (e.g. --scope drive.readonly)",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let cache = TokenCache::new(&config_dir(&args.config));
    let request = LoginRequest {
        client_secret: &args.client_secret,
        scopes: wanted,
        port: args.port,
        no_browser: args.no_browser,
        timeout: Duration::from_secs(args.timeout),
        retry: retry_policy(None),
    };
    let done = login::login(request, &cache, client).await?;
    let mut said = format!(
        "Logged in as {}.\nScopes:\n",
        quote(done.account.as_deref().unwrap_or("an unknown account"))
    );
    for scope in &done.scopes {
        said += &format!("  {}\n", quote(scope));
    }
    if !done.kept.is_empty() {
        said += &format!(
            "(Asked again for the {} of the login saved before, so that it only grows.)\n",
            plural_scopes(done.kept.len())
        );
    }
    said += &format!(
        "The login is saved in {} (readable only by you); runs refresh it silently.",
        done.path.display()
    );
    crate::say!("{said}");
    for scope in &done.unticked {
        let lacking: Vec<&str> = needs
            .iter()
            .filter(|n| !n.covered_by(&done.scopes))
            .filter(|n| n.accepts(scope))
            .map(|n| n.name.as_str())
            .collect();
        let who = match lacking.as_slice() {
            [] => "no query here needs it".to_owned(),
            names => format!("{} cannot run without it", names.join(", ")),
        };
        crate::say!(
            "warning: {} was not granted (unticked on the consent screen): {who}; run \
             `gscrape auth login` again and leave it ticked",
            quote(scope)
        );
    }
    Ok(Exit::Success)
}

fn plural_scopes(n: usize) -> String {
    match n {
        1 => "1 scope".to_owned(),
        n => format!("{n} scopes"),
    }
}

/// What one query needs of a login: a scope its method accepts, and its destinations'.
struct Needs {
    name: String,
    /// `None`: its Discovery document could not be read (`validate` says why).
    method: Option<crate::discovery::Method>,
    destinations: Vec<&'static str>,
}

impl Needs {
    /// True when `granted` lets the query run.
    fn covered_by(&self, granted: &[String]) -> bool {
        self.method
            .as_ref()
            .is_none_or(|m| scopes::covers(granted, m))
            && (self.destinations.iter()).all(|d| granted.iter().any(|g| g == d))
    }

    /// True when `scope` would serve the query.
    fn accepts(&self, scope: &str) -> bool {
        self.method
            .as_ref()
            .is_some_and(|m| m.scopes.iter().any(|s| s == scope))
            || self.destinations.contains(&scope)
    }
}

/// What the queries under `args.paths` need of a login. Queries that cannot be read are
/// skipped here (`gscrape validate` reports them).
async fn needs_of_queries(
    args: &LoginArgs,
    discovery: &DiscoverySettings,
    client: &HyperClient,
) -> Vec<Needs> {
    let Ok(files) = query_files(&args.paths) else {
        return Vec::new();
    };
    let (queries, _) = load_queries(&files, &[]);
    let Ok(source) = super::discovery_source(discovery, client.clone(), retry_policy(None)) else {
        return Vec::new();
    };
    let mut needs = Vec::new();
    for query in &queries {
        let doc = match &query.discovery {
            Some(path) => source.load_file(path),
            None => source.load(&query.api, &query.version).await,
        };
        needs.push(Needs {
            name: query.name.clone(),
            method: doc
                .ok()
                .and_then(|d| d.method(&query.method.value).cloned()),
            destinations: query.destination_scopes(),
        });
    }
    needs
}

async fn status(args: StatusArgs, client: HyperClient) -> Result<Exit, AppError> {
    let settings = auth_settings(&args.credentials, &args.config);
    let retry = retry_policy(None);
    let timeout = Duration::from_secs(60);
    let http = crate::auth::source::Http {
        client: client.clone(),
        timeout,
        retry: retry.clone(),
    };
    let credential = credentials::resolve(&settings, &http).await?;
    let mut out = format!("credential: {}\n", credential.describe());
    out += &format!("why: {}\n", credential.why());
    out += &credential.status(args.credentials.subject.as_deref());
    if let Some((project, origin)) = settings.quota_project_of(&credential) {
        out += &format!(
            "quota project: {} (from {origin}; sent as x-goog-user-project)\n",
            quote(&project)
        );
    }
    if args.check {
        out += &check(credential, &settings, &args, http).await?;
    }
    super::to_stdout(&out, Exit::Success)
}

/// A scope as the flag gives it: a full URL, an identity scope, or a short name
/// (`drive.readonly`).
fn scope_url(scope: &str) -> String {
    if scope.contains("://") || login::IDENTITY_SCOPES.contains(&scope) {
        scope.to_owned()
    } else {
        format!("https://www.googleapis.com/auth/{scope}")
    }
}

/// `auth status --check`: a real token through the whole chain, for `--scope`s (else
/// cloud-platform), and who it is for — never the token itself.
async fn check(
    credential: Credential,
    settings: &AuthSettings,
    args: &StatusArgs,
    http: crate::auth::source::Http,
) -> Result<String, AppError> {
    let wanted: Vec<String> = match args.scopes.is_empty() {
        true => vec![crate::auth::impersonate::CLOUD_PLATFORM.to_owned()],
        false => args.scopes.iter().map(|s| scope_url(s)).collect(),
    };
    let quota = settings.quota_project_of(&credential).map(|(p, _)| p);
    // A token given as is was fetched by someone else: having it proves nothing.
    let given = matches!(
        credential.source().sends(),
        crate::auth::source::Sends::Token { refreshable: false }
    );
    if given {
        return Ok(
            "check: not done: the token is given as is, so gscrape cannot tell whether Google \
             still takes it (an access token lasts about an hour) until an API call answers; a \
             run fails at once with 401 if it does not\n"
                .to_owned(),
        );
    }
    let authorizers = Authorizers::new(
        credential,
        wanted.clone(),
        quota,
        http.client,
        http.timeout,
        http.retry,
    )?;
    let authorizer = authorizers.for_subject(args.credentials.subject.as_deref())?;
    let started = std::time::Instant::now();
    let token = authorizer.access_token().await?;
    let mut out = format!(
        "check: ok, a token{} for {} in {} ms\n",
        args.credentials
            .subject
            .as_deref()
            .map(|s| format!(" acting as {}", quote(s)))
            .unwrap_or_default(),
        quote(&wanted.join(" ")),
        started.elapsed().as_millis()
    );
    if token.is_none() {
        out = "check: this credential needs no token (an API key, or public methods)\n".to_owned();
    }
    Ok(out)
}

async fn logout(args: LogoutArgs, client: HyperClient) -> Result<Exit, AppError> {
    let cache = TokenCache::new(&config_dir(&args.config));
    let current = match cache.current(args.account.as_deref()) {
        Ok(current) => current,
        Err(cache::CacheError::Corrupt { path, .. }) => {
            // Nothing in it can be revoked; remove it so the next login starts clean.
            return remove(&path, "the corrupt login");
        }
        Err(err) => return Err(AppError::Cache(err)),
    };
    let Some((path, login)) = current else {
        crate::say!(
            "Not logged in: no login is cached in {}.",
            cache.dir().display()
        );
        return Ok(Exit::Success);
    };
    let account = quote(login.account.as_deref().unwrap_or("the cached account")).to_string();
    match oauth::revoke(
        &client,
        &login.token_uri,
        &login.refresh_token,
        Duration::from_secs(30),
    )
    .await
    {
        Ok(true) => crate::say!("Revoked the token of {account}."),
        Ok(false) => crate::say!(
            "warning: no revocation endpoint is known for {}; the token was not revoked",
            quote(&login.token_uri)
        ),
        Err(err) => crate::say!("warning: could not revoke the token: {err}"),
    }
    remove(&path, &format!("the login of {account}"))
}

fn remove(path: &std::path::Path, what: &str) -> Result<Exit, AppError> {
    std::fs::remove_file(path)
        .map_err(|err| AppError::io(format!("cannot remove {}", path.display()), err))?;
    crate::say!("Removed {what} ({}).", path.display());
    Ok(Exit::Success)
}
