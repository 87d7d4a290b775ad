//! Where each Google API is reached: by default the root URL its Discovery document (or, for
//! gscrape's own calls — IAM Credentials, STS, the token endpoint — Google's) gives, unless
//! an override says otherwise, as google-api-core's `api_endpoint` and gcloud's
//! `api_endpoint_overrides` do: `GSCRAPE_ENDPOINT_<API>` (the upper-case Discovery name:
//! `GSCRAPE_ENDPOINT_DRIVE`, `GSCRAPE_ENDPOINT_IAMCREDENTIALS`, `GSCRAPE_ENDPOINT_STS`,
//! `GSCRAPE_ENDPOINT_OAUTH2` for the token endpoint), and `GOOGLE_CLOUD_UNIVERSE_DOMAIN`,
//! which replaces `googleapis.com` in the defaults.

/// IAM Credentials (generateAccessToken, signJwt).
pub const IAM_CREDENTIALS: (&str, &str) =
    ("iamcredentials", "https://iamcredentials.googleapis.com/");
/// The Security Token Service of workload identity federation.
pub const STS: (&str, &str) = ("sts", "https://sts.googleapis.com/");
/// Google's OAuth 2.0 token endpoint's root (`token` below it).
pub const OAUTH2: (&str, &str) = ("oauth2", "https://oauth2.googleapis.com/");

/// The root URL (ending in `/`) of the API named `api` whose own root is `default`.
pub fn root_url(api: &str, default: &str) -> String {
    let variable = format!(
        "GSCRAPE_ENDPOINT_{}",
        api.to_ascii_uppercase().replace(['-', '.'], "_")
    );
    if let Some(root) = std::env::var(&variable)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return with_slash(root.trim());
    }
    let universe = std::env::var("GOOGLE_CLOUD_UNIVERSE_DOMAIN")
        .ok()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty() && u != "googleapis.com");
    match universe {
        Some(universe) => with_slash(&default.replacen("googleapis.com", &universe, 1)),
        None => with_slash(default),
    }
}

/// `(api, default)` of a `const` above, resolved.
pub fn of((api, default): (&str, &str)) -> String {
    root_url(api, default)
}

fn with_slash(root: &str) -> String {
    match root.ends_with('/') {
        true => root.to_owned(),
        false => format!("{root}/"),
    }
}
