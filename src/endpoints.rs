//! Where each Google API is reached: by default the root URL its Discovery document (or, for
//! gscrape's own calls — IAM Credentials, STS, the token endpoint — Google's) gives, unless
//! an override says otherwise, as google-api-core's `api_endpoint` and gcloud's
//! `api_endpoint_overrides` do. The first of these wins:
//!
//! 1. a query's `endpoint` (applied by planning, not here);
//! 2. `GSCRAPE_ENDPOINT_<API>`: the Discovery name in upper case (`GSCRAPE_ENDPOINT_DRIVE`,
//!    `GSCRAPE_ENDPOINT_IAMCREDENTIALS`, `GSCRAPE_ENDPOINT_STS`, `GSCRAPE_ENDPOINT_OAUTH2` for
//!    the token endpoint);
//! 3. for `storage`, `STORAGE_EMULATOR_HOST`, as Google's Cloud Storage libraries read it (a
//!    host, or a URL; a host means plain http);
//! 4. the `[endpoints]` table of the project's `gscrape.toml`, then of the user's;
//! 5. the default root, with `googleapis.com` replaced by `GOOGLE_CLOUD_UNIVERSE_DOMAIN`.
//!
//! The overrides are resolved once per process ([`install`]): the token sources that call
//! [`of`] sit deep under the authorizers and are given no settings, and one table for the
//! whole run is what the environment is anyway. Which URLs may carry a token is not decided
//! here: the callers keep the bearer guard (`crate::http::may_carry_bearer`).

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// IAM Credentials (generateAccessToken, signJwt).
pub const IAM_CREDENTIALS: (&str, &str) =
    ("iamcredentials", "https://iamcredentials.googleapis.com/");
/// The Security Token Service of workload identity federation.
pub const STS: (&str, &str) = ("sts", "https://sts.googleapis.com/");
/// Google's OAuth 2.0 token endpoint's root (`token` below it).
pub const OAUTH2: (&str, &str) = ("oauth2", "https://oauth2.googleapis.com/");
/// BigQuery, for the load jobs of `[bigquery]` (its reads go through its Discovery document,
/// whose `rootUrl` is this one).
pub const BIGQUERY: (&str, &str) = ("bigquery", "https://bigquery.googleapis.com/");
/// The APIs gscrape calls itself (not through a Discovery document), every call with a secret.
pub const OWN_CALLS: [(&str, &str); 3] = [OAUTH2, STS, IAM_CREDENTIALS];

/// The prefix of the environment variables that override a root.
const PREFIX: &str = "GSCRAPE_ENDPOINT_";
const UNIVERSE: &str = "GOOGLE_CLOUD_UNIVERSE_DOMAIN";
const STORAGE_EMULATOR: &str = "STORAGE_EMULATOR_HOST";
const GOOGLE_UNIVERSE: &str = "googleapis.com";

/// Where an override was set, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An environment variable.
    Variable(String),
    /// The `[endpoints]` key `api` of a config file.
    File { path: PathBuf, api: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Variable(name) => f.write_str(name),
            Origin::File { path, api } => write!(f, "{} [endpoints] {api}", path.display()),
        }
    }
}

/// An override that cannot be used: one line naming the variable and what to give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct EndpointError {
    pub origin: String,
    pub message: String,
}

/// The `[endpoints]` table of one config file: (API name, root URL) in the file's order,
/// each root already checked by [`check_root`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub path: PathBuf,
    pub entries: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Override {
    /// The API name as [`key`] spells it.
    api: String,
    /// A checked root URL ending in `/`.
    root: String,
    origin: Origin,
}

/// The overrides in force, first one first, and the universe domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    overrides: Vec<Override>,
    universe: Option<String>,
}

impl Endpoints {
    /// The environment's overrides over the config files' tables (the project's first).
    pub fn resolve(files: &[Table]) -> Result<Self, EndpointError> {
        let (endpoints, mut errors) = Self::collect(&environment(), files);
        match errors.is_empty() {
            true => Ok(endpoints),
            false => Err(errors.remove(0)),
        }
    }

    /// The overrides of `vars` (name, value) and `files`, and the values that cannot be used.
    fn collect(vars: &[(String, String)], files: &[Table]) -> (Self, Vec<EndpointError>) {
        let mut overrides = Vec::new();
        let mut errors = Vec::new();
        let error = |origin: &str, message: String| EndpointError {
            origin: origin.to_owned(),
            message,
        };
        let mut named: Vec<&(String, String)> = vars
            .iter()
            .filter(|(name, value)| name.starts_with(PREFIX) && !value.trim().is_empty())
            .collect();
        named.sort();
        for (name, value) in named {
            let api = key(&name[PREFIX.len()..]);
            if api.is_empty() {
                continue;
            }
            match check_root(value.trim()) {
                Ok(root) => overrides.push(Override {
                    api,
                    root,
                    origin: Origin::Variable(name.clone()),
                }),
                Err(message) => errors.push(error(name, message)),
            }
        }
        let var = |wanted: &str| {
            vars.iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        if let Some(host) = var(STORAGE_EMULATOR) {
            // As google-cloud-go and python-storage: a bare `host:port` is plain http.
            let url = match host.contains("://") {
                true => host,
                false => format!("http://{host}"),
            };
            match check_root(&url) {
                Ok(root) => overrides.push(Override {
                    api: "storage".to_owned(),
                    root,
                    origin: Origin::Variable(STORAGE_EMULATOR.to_owned()),
                }),
                Err(message) => errors.push(error(STORAGE_EMULATOR, message)),
            }
        }
        for table in files {
            for (api, root) in &table.entries {
                overrides.push(Override {
                    api: key(api),
                    root: root.clone(),
                    origin: Origin::File {
                        path: table.path.clone(),
                        api: api.clone(),
                    },
                });
            }
        }
        let universe = match var(UNIVERSE) {
            Some(domain) if domain == GOOGLE_UNIVERSE => None,
            Some(domain) if is_domain(&domain) => Some(domain),
            Some(domain) => {
                errors.push(error(
                    UNIVERSE,
                    format!(
                        "{domain:?} is not a domain name: give the universe's domain, such as \
                         \"example-universe.net\" (Google's is googleapis.com)"
                    ),
                ));
                None
            }
            None => None,
        };
        (
            Endpoints {
                overrides,
                universe,
            },
            errors,
        )
    }

    /// The root URL (ending in `/`) of the API named `api`, whose own root is `default`.
    pub fn root(&self, api: &str, default: &str) -> String {
        match self.overridden(api) {
            Some((root, _)) => root.to_owned(),
            None => with_slash(&in_universe(default, self.universe.as_deref())),
        }
    }

    /// The override of `api` and where it was set, if any.
    pub fn overridden(&self, api: &str) -> Option<(&str, &Origin)> {
        let api = key(api);
        self.overrides
            .iter()
            .find(|o| o.api == api)
            .map(|o| (o.root.as_str(), &o.origin))
    }
}

static INSTALLED: OnceLock<Endpoints> = OnceLock::new();

/// Sets the overrides of this process, once, from the command's settings, before anything
/// reads a root (a process runs one command; a later call changes nothing).
pub fn install(endpoints: Endpoints) {
    let _ = INSTALLED.set(endpoints);
}

/// The overrides of this process: the ones [`install`]ed, else the environment's alone (a
/// value that cannot be used left out: the commands that reach Google install theirs first,
/// and refuse it).
fn installed() -> &'static Endpoints {
    INSTALLED.get_or_init(|| Endpoints::collect(&environment(), &[]).0)
}

/// The root URL (ending in `/`) of the API named `api` whose own root is `default`.
pub fn root_url(api: &str, default: &str) -> String {
    installed().root(api, default)
}

/// `(api, default)` of a `const` above, resolved.
pub fn of((api, default): (&str, &str)) -> String {
    root_url(api, default)
}

/// Where the root of `api` was overridden, if it was (for messages and `describe`).
pub fn origin(api: &str) -> Option<Origin> {
    installed()
        .overridden(api)
        .map(|(_, origin)| origin.clone())
}

/// A root URL as an override gives it: absolute http(s) with a host, no user, query or
/// fragment; a path (a prefix) is kept, and `/` appended when it does not end in one.
pub fn check_root(text: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!(
            "{text:?} is not a root URL ({why}): give one such as \"https://drive.example.com/\""
        )
    };
    let uri: http::Uri = text.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => return Err(bad("http or https is needed")),
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad("a user name is not sent"));
    }
    if authority.host().is_empty() {
        return Err(bad("no host"));
    }
    if uri.query().is_some() || text.contains('#') {
        return Err(bad("a query or fragment cannot be a root"));
    }
    Ok(with_slash(text))
}

/// A Discovery API name as the variables and tables are matched: case does not matter, and
/// `-` or `.` count as `_` (names of environment variables cannot hold them).
fn key(api: &str) -> String {
    api.to_ascii_lowercase().replace(['-', '.'], "_")
}

/// The environment, as far as it is text.
fn environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// `root` with a host under `googleapis.com` moved to `universe`'s (google-api-core's rule for
/// the default endpoint); other roots, and all roots without a universe, as they are.
fn in_universe(root: &str, universe: Option<&str>) -> String {
    let Some(universe) = universe else {
        return root.to_owned();
    };
    let Some((scheme, rest)) = root.split_once("://") else {
        return root.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, format!(":{port}")),
        None => (authority, String::new()),
    };
    let moved = match host.strip_suffix(GOOGLE_UNIVERSE) {
        Some("") => universe.to_owned(),
        Some(sub) if sub.ends_with('.') => format!("{sub}{universe}"),
        _ => return root.to_owned(),
    };
    format!("{scheme}://{moved}{port}{path}")
}

/// A DNS name: dot-separated labels of letters, digits and `-`.
fn is_domain(text: &str) -> bool {
    text.split('.').count() >= 2
        && text.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn with_slash(root: &str) -> String {
    match root.ends_with('/') {
        true => root.to_owned(),
        false => format!("{root}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn table(path: &str, entries: &[(&str, &str)]) -> Table {
        Table {
            path: PathBuf::from(path),
            entries: entries
                .iter()
                .map(|(api, root)| (api.to_string(), check_root(root).unwrap()))
                .collect(),
        }
    }

    fn resolved(env: &[(&str, &str)], files: &[Table]) -> Endpoints {
        let (endpoints, errors) = Endpoints::collect(&vars(env), files);
        assert_eq!(errors, []);
        endpoints
    }

    const DRIVE: &str = "https://www.googleapis.com/";

    #[test]
    fn the_variable_wins_over_the_files_and_the_project_over_the_user() {
        let project = table("gscrape.toml", &[("drive", "https://project.example/")]);
        let user = table(
            "/home/u/.config/gscrape/gscrape.toml",
            &[
                ("drive", "https://user.example/"),
                ("sheets", "https://s.example"),
            ],
        );
        let files = [project, user];
        let env = [("GSCRAPE_ENDPOINT_DRIVE", "https://env.example/p")];
        let endpoints = resolved(&env, &files);
        assert_eq!(endpoints.root("drive", DRIVE), "https://env.example/p/");
        assert_eq!(
            endpoints.overridden("Drive").unwrap().1,
            &Origin::Variable("GSCRAPE_ENDPOINT_DRIVE".into())
        );
        let endpoints = resolved(&[], &files);
        assert_eq!(endpoints.root("drive", DRIVE), "https://project.example/");
        assert_eq!(
            endpoints.overridden("drive").unwrap().1.to_string(),
            "gscrape.toml [endpoints] drive"
        );
        assert_eq!(endpoints.root("sheets", DRIVE), "https://s.example/");
        assert_eq!(endpoints.root("gmail", DRIVE), DRIVE);
    }

    #[test]
    fn names_match_whatever_their_case() {
        let env = [("GSCRAPE_ENDPOINT_YOUTUBEANALYTICS", "http://127.0.0.1:9/")];
        let endpoints = resolved(&env, &[]);
        assert_eq!(
            endpoints.root("youtubeAnalytics", DRIVE),
            "http://127.0.0.1:9/"
        );
        let files = [table(
            "g.toml",
            &[("youtubeAnalytics", "https://y.example/")],
        )];
        assert_eq!(
            resolved(&[], &files).root("youtubeanalytics", DRIVE),
            "https://y.example/"
        );
    }

    #[test]
    fn the_storage_emulator_is_a_host_or_a_url() {
        let storage = "https://storage.googleapis.com/";
        let endpoints = resolved(&[("STORAGE_EMULATOR_HOST", "localhost:9023")], &[]);
        assert_eq!(endpoints.root("storage", storage), "http://localhost:9023/");
        assert_eq!(endpoints.root("drive", DRIVE), DRIVE, "storage only");
        let endpoints = resolved(&[("STORAGE_EMULATOR_HOST", "https://gcs.test:4443")], &[]);
        assert_eq!(endpoints.root("storage", storage), "https://gcs.test:4443/");
        let endpoints = resolved(
            &[
                ("STORAGE_EMULATOR_HOST", "localhost:9023"),
                ("GSCRAPE_ENDPOINT_STORAGE", "https://psc.example/"),
            ],
            &[table(
                "gscrape.toml",
                &[("storage", "https://file.example/")],
            )],
        );
        assert_eq!(endpoints.root("storage", storage), "https://psc.example/");
        let endpoints = resolved(
            &[("STORAGE_EMULATOR_HOST", "localhost:9023")],
            &[table(
                "gscrape.toml",
                &[("storage", "https://file.example/")],
            )],
        );
        assert_eq!(
            endpoints.root("storage", storage),
            "http://localhost:9023/",
            "an environment variable over the files, as every setting"
        );
    }

    #[test]
    fn the_universe_domain_replaces_googleapis_com_in_default_roots_only() {
        let env = [("GOOGLE_CLOUD_UNIVERSE_DOMAIN", "example-universe.net")];
        let endpoints = resolved(&env, &[]);
        assert_eq!(
            endpoints.root("drive", DRIVE),
            "https://www.example-universe.net/"
        );
        assert_eq!(
            endpoints.root("oauth2", OAUTH2.1),
            "https://oauth2.example-universe.net/"
        );
        assert_eq!(
            endpoints.root("x", "https://googleapis.com:443/x/"),
            "https://example-universe.net:443/x/"
        );
        for other in [
            "https://notgoogleapis.com/",
            "http://127.0.0.1:8080/",
            "https://www.googleapis.com.evil.example/",
        ] {
            assert_eq!(endpoints.root("x", other), other);
        }
        let env = [
            ("GOOGLE_CLOUD_UNIVERSE_DOMAIN", "example-universe.net"),
            ("GSCRAPE_ENDPOINT_DRIVE", "https://drive.psc.example/"),
        ];
        assert_eq!(
            resolved(&env, &[]).root("drive", DRIVE),
            "https://drive.psc.example/",
            "an override is used as it is"
        );
        let env = [("GOOGLE_CLOUD_UNIVERSE_DOMAIN", "googleapis.com")];
        assert_eq!(resolved(&env, &[]), Endpoints::default());
    }

    #[test]
    fn values_that_are_no_root_url_are_one_line_naming_the_variable() {
        for (name, value, why) in [
            (
                "GSCRAPE_ENDPOINT_DRIVE",
                "drive.example.com",
                "http or https",
            ),
            ("GSCRAPE_ENDPOINT_DRIVE", "https://", "not a URL"),
            (
                "GSCRAPE_ENDPOINT_DRIVE",
                "ftp://drive.example.com/",
                "http or https",
            ),
            (
                "GSCRAPE_ENDPOINT_DRIVE",
                "https://u:p@drive.example.com/",
                "user name",
            ),
            (
                "GSCRAPE_ENDPOINT_DRIVE",
                "https://drive.example.com/?a=1",
                "query",
            ),
            ("STORAGE_EMULATOR_HOST", "not a host", "not a URL"),
            (
                "GOOGLE_CLOUD_UNIVERSE_DOMAIN",
                "https://x.net/",
                "not a domain",
            ),
        ] {
            let (_, errors) = Endpoints::collect(&vars(&[(name, value)]), &[]);
            assert_eq!(errors.len(), 1, "{name}={value}");
            let line = errors[0].to_string();
            assert!(line.starts_with(&format!("{name}: ")), "{line}");
            assert!(line.contains(why), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
        let (endpoints, errors) =
            Endpoints::collect(&vars(&[("GSCRAPE_ENDPOINT_DRIVE", "  ")]), &[]);
        assert_eq!(
            (endpoints, errors),
            (Endpoints::default(), vec![]),
            "empty: unset"
        );
    }

    #[test]
    fn a_root_keeps_its_path_and_ends_in_a_slash() {
        assert_eq!(
            check_root("http://127.0.0.1:8080/prefix"),
            Ok("http://127.0.0.1:8080/prefix/".into())
        );
        assert_eq!(
            check_root("https://storage-x.p.googleapis.com"),
            Ok("https://storage-x.p.googleapis.com/".into())
        );
    }
}
