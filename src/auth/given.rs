//! Credentials given as they are: an access token (used until Google refuses it), an API key
//! (sent as `key=`), or none at all (public methods).

use super::source::{Grant, Http, Sends, TokenSource};
use super::AuthError;

/// `--access-token` or `GSCRAPE_ACCESS_TOKEN`: it cannot be refreshed.
pub struct AccessToken {
    pub token: String,
    pub origin: &'static str,
}

#[async_trait::async_trait]
impl TokenSource for AccessToken {
    async fn fetch(&self, _: &Http, _: &[String]) -> Result<Grant, AuthError> {
        Err(AuthError::Token("nothing to refresh".into()))
    }

    fn sends(&self) -> Sends<'_> {
        Sends::Token { refreshable: false }
    }

    fn initial(&self) -> Option<Grant> {
        Some(Grant {
            access_token: self.token.clone(),
            expires_at: None,
            refresh_token: None,
            scopes: None,
            id_token: None,
        })
    }

    fn describe(&self) -> String {
        format!("access token from {}", self.origin)
    }

    fn why(&self) -> String {
        "an access token is given, and it comes first".to_owned()
    }

    fn status(&self, _: Option<&str>) -> String {
        String::new()
    }
}

/// `--api-key` or `GSCRAPE_API_KEY`.
pub struct ApiKey {
    pub key: String,
    pub origin: &'static str,
}

#[async_trait::async_trait]
impl TokenSource for ApiKey {
    async fn fetch(&self, _: &Http, _: &[String]) -> Result<Grant, AuthError> {
        Err(AuthError::Token("nothing to refresh".into()))
    }

    fn sends(&self) -> Sends<'_> {
        Sends::Key(&self.key)
    }

    fn describe(&self) -> String {
        format!("API key from {} (sent as key=)", self.origin)
    }

    fn why(&self) -> String {
        "no OAuth credential was found".to_owned()
    }

    fn status(&self, _: Option<&str>) -> String {
        String::new()
    }
}

/// None: every method the run calls is public (its Discovery entry lists no scope), such as
/// Google's API directory.
pub struct Public;

#[async_trait::async_trait]
impl TokenSource for Public {
    async fn fetch(&self, _: &Http, _: &[String]) -> Result<Grant, AuthError> {
        Err(AuthError::Token("nothing to refresh".into()))
    }

    fn sends(&self) -> Sends<'_> {
        Sends::Nothing
    }

    fn describe(&self) -> String {
        "no credential (every method of the run is public: it lists no scope)".to_owned()
    }

    fn why(&self) -> String {
        "no credential was found".to_owned()
    }

    fn status(&self, _: Option<&str>) -> String {
        String::new()
    }
}
