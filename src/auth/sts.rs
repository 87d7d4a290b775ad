//! Google's Security Token Service, spoken as google-auth speaks it (`google/oauth2/sts.py`):
//! the token exchange of workload identity federation (RFC 8693: a subject token for a
//! federated access token) and the refresh grant of workforce identity logins. An OAuth
//! client, when the file has one, goes as HTTP Basic.

use std::time::{Duration, SystemTime};

use http::{header, Request};

use super::source::{ChainError, Grant, Http};
use crate::redact::register;

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

const LINK: &str = "STS";

/// The OAuth client of a file (`client_id`, `client_secret`). No `Debug`: it holds a secret.
#[derive(Clone)]
pub struct ClientAuth {
    pub id: String,
    pub secret: String,
}

impl ClientAuth {
    /// `Basic base64(id:secret)`, as google-auth builds it (the parts are not form-encoded).
    fn header(&self) -> Result<http::HeaderValue, ChainError> {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.id, self.secret));
        let mut value = http::HeaderValue::from_str(&format!("Basic {basic}"))
            .map_err(|_| ChainError::new(LINK, "cannot be sent the client", "check client_id"))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// One token exchange.
pub struct Exchange<'a> {
    pub audience: &'a str,
    pub scopes: &'a [String],
    pub subject_token: &'a str,
    pub subject_token_type: &'a str,
    /// A workforce pool's `workforce_pool_user_project` (sent only without a client).
    pub user_project: Option<&'a str>,
}

/// The form of `exchange`, fields in google-auth's order and empty ones left out.
pub fn exchange_form(exchange: &Exchange<'_>, client: Option<&ClientAuth>) -> String {
    let scope = exchange.scopes.join(" ");
    // google-auth: `urllib.parse.quote(json.dumps({"userProject": p}))`, then form-encoded.
    let options = exchange
        .user_project
        .filter(|_| client.is_none())
        .map(|project| {
            let json = format!("{{\"userProject\": {}}}", super::aws::py_json(project));
            percent_encoding::utf8_percent_encode(&json, super::aws::PY_QUOTE_SAFE).to_string()
        });
    let fields = [
        ("grant_type", TOKEN_EXCHANGE),
        ("audience", exchange.audience),
        ("scope", &scope),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        ("subject_token", exchange.subject_token),
        ("subject_token_type", exchange.subject_token_type),
        ("options", options.as_deref().unwrap_or("")),
    ];
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().filter(|(_, v)| !v.is_empty()))
        .finish()
}

/// Exchanges a subject token for a federated access token.
pub async fn exchange(
    http: &Http,
    token_url: &str,
    client: Option<&ClientAuth>,
    exchange: &Exchange<'_>,
) -> Result<Grant, ChainError> {
    let form = exchange_form(exchange, client);
    let hint = |status: u16| match status {
        429 | 500.. => "STS is unavailable; try again later".to_owned(),
        _ => format!(
            "check that the workload identity pool provider {} accepts this subject token \
             (its issuer, allowed audiences and attribute condition; the token must not have \
             expired) and the file's subject_token_type",
            crate::redact::quote(exchange.audience)
        ),
    };
    post(http, token_url, client, form, hint).await
}

/// The refresh grant of an `external_account_authorized_user` (workforce identity) login.
pub async fn refresh(
    http: &Http,
    token_url: &str,
    client: &ClientAuth,
    refresh_token: &str,
) -> Result<Grant, ChainError> {
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .finish();
    let hint = |status: u16| match status {
        429 | 500.. => "STS is unavailable; try again later".to_owned(),
        401 => "check the file's client_id and client_secret".to_owned(),
        _ => "the workforce identity login has expired or was revoked: log in again with \
              `gcloud auth application-default login --login-config=FILE`"
            .to_owned(),
    };
    post(http, token_url, Some(client), form, hint).await
}

async fn post(
    http: &Http,
    token_url: &str,
    client: Option<&ClientAuth>,
    form: String,
    hint: impl Fn(u16) -> String,
) -> Result<Grant, ChainError> {
    let mut request =
        Request::post(token_url).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(client) = client {
        request = request.header(header::AUTHORIZATION, client.header()?);
    }
    let request = request.body(form).map_err(|_| {
        ChainError::new(
            LINK,
            "cannot be asked: its token_url is not a URL",
            "check token_url",
        )
    })?;
    let obtained = SystemTime::now();
    let (response, retries) = http.send(LINK, request).await?;
    if !response.status.is_success() {
        let status = response.status.as_u16();
        return Err(ChainError::refused(LINK, &response, retries, hint(status)));
    }
    read_grant(&response.body, obtained).ok_or_else(|| {
        ChainError::new(
            LINK,
            format!(
                "answered HTTP {} without an access_token",
                response.status.as_u16()
            ),
            hint(400),
        )
    })
}

/// `{"access_token", "expires_in", "refresh_token"?}`; `expires_in` may be a JSON string
/// (some services send one, google-auth notes). Its secrets are registered.
fn read_grant(body: &[u8], obtained: SystemTime) -> Option<Grant> {
    #[derive(serde::Deserialize)]
    struct Answer {
        access_token: String,
        expires_in: Option<serde_json::Value>,
        refresh_token: Option<String>,
        scope: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body).ok()?;
    if answer.access_token.is_empty() {
        return None;
    }
    register(&answer.access_token);
    if let Some(refresh_token) = &answer.refresh_token {
        register(refresh_token);
    }
    let seconds = match &answer.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Some(Grant {
        access_token: answer.access_token,
        expires_at: seconds.map(|s| obtained + Duration::from_secs(s)),
        refresh_token: answer.refresh_token,
        scopes: answer
            .scope
            .map(|s| s.split_whitespace().map(str::to_owned).collect()),
        id_token: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(form: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(form.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn the_exchange_form_is_google_auths() {
        let scopes = vec![
            "https://www.googleapis.com/auth/drive.readonly".to_owned(),
            "https://www.googleapis.com/auth/gmail.readonly".to_owned(),
        ];
        let exchange = Exchange {
            audience: "//iam.googleapis.com/locations/global/workforcePools/p/providers/q",
            scopes: &scopes,
            subject_token: "eyJ.subject",
            subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
            user_project: Some("my-project"),
        };
        let form = exchange_form(&exchange, None);
        let expected: Vec<(String, String)> = [
            ("grant_type", TOKEN_EXCHANGE),
            ("audience", exchange.audience),
            ("scope", "https://www.googleapis.com/auth/drive.readonly https://www.googleapis.com/auth/gmail.readonly"),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("subject_token", "eyJ.subject"),
            ("subject_token_type", exchange.subject_token_type),
            ("options", "%7B%22userProject%22%3A%20%22my-project%22%7D"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(pairs(&form), expected);
        // With a client, the client names the project: no options; no scope, no field.
        let client = ClientAuth {
            id: "id".into(),
            secret: "secret".into(),
        };
        let form = exchange_form(
            &Exchange {
                scopes: &[],
                ..exchange
            },
            Some(&client),
        );
        let names: Vec<String> = pairs(&form).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "grant_type",
                "audience",
                "requested_token_type",
                "subject_token",
                "subject_token_type"
            ]
        );
    }

    #[test]
    fn expires_in_may_be_a_string() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let grant = read_grant(
            br#"{"access_token":"ya29.unit-sts-a","expires_in":"3599","token_type":"Bearer"}"#,
            now,
        )
        .unwrap();
        assert_eq!(grant.expires_at, Some(now + Duration::from_secs(3599)));
        let grant = read_grant(
            br#"{"access_token":"ya29.unit-sts-b","expires_in":60}"#,
            now,
        )
        .unwrap();
        assert_eq!(grant.expires_at, Some(now + Duration::from_secs(60)));
        assert!(read_grant(br#"{"expires_in":60}"#, now).is_none());
        assert!(read_grant(br#"{"access_token":""}"#, now).is_none());
        assert!(crate::redact::holds_secret("x ya29.unit-sts-a"));
    }
}
