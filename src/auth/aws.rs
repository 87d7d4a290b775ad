//! The AWS subject token of workload identity federation, as google-auth builds it
//! (`google/auth/aws.py`): a GetCallerIdentity request signed with AWS Signature Version 4,
//! which Google's STS sends on to AWS to learn who the caller is. gscrape never calls AWS STS
//! itself. The keys come from `AWS_*` variables or the EC2 instance metadata service (IMDSv2
//! when the file names its session-token URL); the region from `AWS_REGION`,
//! `AWS_DEFAULT_REGION` or the instance metadata.

use std::time::SystemTime;

use http::Request;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use ring::{digest, hmac};

use super::source::{ChainError, Http};
use crate::redact::{quote, register};
use crate::util::hex;

/// What SigV4 leaves unencoded in a canonical query: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What Python's `urllib.parse.quote` leaves unencoded (its default `safe="/"`): the subject
/// token must be byte for byte what google-auth sends.
pub(super) const PY_QUOTE_SAFE: &AsciiSet = &UNRESERVED.remove(b'/');

/// How long an IMDSv2 session token lives: it is used at once (google-auth's value).
const IMDSV2_TTL_SECONDS: &str = "300";

const LINK: &str = "AWS instance metadata";

const IMDS_HINT: &str = "run gscrape on EC2 (or ECS/EKS) with an IAM role attached to the \
     instance, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION)";

/// An `aws1` credential source: where the region and the keys come from, and the URL whose
/// signed request is the subject token.
#[derive(Clone)]
pub struct Aws {
    pub region_url: Option<String>,
    pub credentials_url: Option<String>,
    /// `https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15`.
    pub verification_url: String,
    pub imdsv2_session_token_url: Option<String>,
}

/// AWS security credentials. No `Debug`: they are secrets.
#[derive(Clone)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// A signed request: its URL, method and headers in google-auth's order (`Authorization`,
/// `host`, `x-amz-date`, `x-amz-security-token`).
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    pub url: String,
    pub method: &'static str,
    pub headers: Vec<(String, String)>,
}

impl Aws {
    /// The subject token for the workload identity pool provider `audience`.
    pub async fn subject_token(&self, http: &Http, audience: &str) -> Result<String, ChainError> {
        let mut session = Session::default();
        let region = match env_nonempty("AWS_REGION").or_else(|| env_nonempty("AWS_DEFAULT_REGION"))
        {
            Some(region) => region,
            None => self.region_from_imds(http, &mut session).await?,
        };
        let keys = match (
            env_nonempty("AWS_ACCESS_KEY_ID"),
            env_nonempty("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(access_key_id), Some(secret_access_key)) => Keys {
                access_key_id,
                secret_access_key,
                session_token: env_nonempty("AWS_SESSION_TOKEN"),
            },
            _ => self.keys_from_imds(http, &mut session).await?,
        };
        register(&keys.secret_access_key);
        if let Some(token) = &keys.session_token {
            register(token);
        }
        let url = self.verification_url.replace("{region}", &region);
        let signed = sign(&keys, &region, &url, SystemTime::now()).map_err(|why| {
            ChainError::new(
                "the AWS subject token",
                format!("cannot be signed: {why}"),
                "check credential_source.regional_cred_verification_url",
            )
        })?;
        // The signed request can be replayed to STS for a while: a secret, in each form a
        // server may echo it (the signature alone, the JSON, the quoted JSON).
        for (name, value) in &signed.headers {
            if name == "Authorization" {
                register(value);
            }
        }
        let token = subject_token(&signed, audience);
        register(&percent_encoding::percent_decode_str(&token).decode_utf8_lossy());
        register(&token);
        Ok(token)
    }

    async fn region_from_imds(
        &self,
        http: &Http,
        session: &mut Session,
    ) -> Result<String, ChainError> {
        let Some(url) = &self.region_url else {
            return Err(ChainError::new(
                LINK,
                "was not asked for the region: the file names no credential_source.region_url",
                "set AWS_REGION (or AWS_DEFAULT_REGION), or add region_url to the file",
            ));
        };
        let zone = self.imds_get(http, session, url, "the region").await?;
        // An availability zone (`us-east-2b`): the region is all but its last letter.
        let mut region = zone.trim().to_owned();
        region.pop();
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ChainError::new(
                LINK,
                format!(
                    "answered an availability zone that is not one at {}",
                    quote(url)
                ),
                "set AWS_REGION",
            ));
        }
        Ok(region)
    }

    async fn keys_from_imds(&self, http: &Http, session: &mut Session) -> Result<Keys, ChainError> {
        let Some(url) = &self.credentials_url else {
            return Err(ChainError::new(
                LINK,
                "was not asked for credentials: the file names no credential_source.url",
                IMDS_HINT,
            ));
        };
        let role = self.imds_get(http, session, url, "the role name").await?;
        let role = role.lines().next().unwrap_or_default().trim().to_owned();
        if role.is_empty() || role.contains(['/', '?', '#']) {
            return Err(ChainError::new(
                LINK,
                format!("named no usable IAM role at {}", quote(url)),
                IMDS_HINT,
            ));
        }
        let role_url = format!("{}/{role}", url.trim_end_matches('/'));
        let body = self
            .imds_get(http, session, &role_url, "the role's credentials")
            .await?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Answer {
            access_key_id: Option<String>,
            secret_access_key: Option<String>,
            token: Option<String>,
        }
        let answer: Option<Answer> = serde_json::from_str(&body).ok();
        match answer {
            Some(Answer {
                access_key_id: Some(access_key_id),
                secret_access_key: Some(secret_access_key),
                token,
            }) if !access_key_id.is_empty() && !secret_access_key.is_empty() => {
                register(&secret_access_key);
                if let Some(token) = &token {
                    register(token);
                }
                Ok(Keys {
                    access_key_id,
                    secret_access_key,
                    session_token: token.filter(|t| !t.is_empty()),
                })
            }
            _ => Err(ChainError::new(
                LINK,
                format!(
                    "answered credentials without AccessKeyId and SecretAccessKey at {}",
                    quote(&role_url)
                ),
                IMDS_HINT,
            )),
        }
    }

    /// A GET of the instance metadata, with the IMDSv2 session token when the file names
    /// where to get one.
    async fn imds_get(
        &self,
        http: &Http,
        session: &mut Session,
        url: &str,
        what: &str,
    ) -> Result<String, ChainError> {
        let token = self.session_token(http, session).await?;
        let mut request = Request::get(url);
        if let Some(token) = &token {
            request = request.header("X-aws-ec2-metadata-token", sensitive(token)?);
        }
        let request = request.body(String::new()).map_err(|_| bad_url(url))?;
        let link = format!("{LINK} ({what})");
        let (response, retries) = http.send(&link, request).await?;
        if !response.status.is_success() {
            return Err(ChainError::refused(&link, &response, retries, IMDS_HINT));
        }
        String::from_utf8(response.body.to_vec()).map_err(|_| {
            ChainError::new(
                &link,
                format!("answered what is not text at {}", quote(url)),
                IMDS_HINT,
            )
        })
    }

    /// The IMDSv2 session token, fetched once per subject token.
    async fn session_token(
        &self,
        http: &Http,
        session: &mut Session,
    ) -> Result<Option<String>, ChainError> {
        let Some(url) = &self.imdsv2_session_token_url else {
            return Ok(None);
        };
        if let Some(token) = &session.0 {
            return Ok(Some(token.clone()));
        }
        let request = Request::put(url)
            .header("X-aws-ec2-metadata-token-ttl-seconds", IMDSV2_TTL_SECONDS)
            .body(String::new())
            .map_err(|_| bad_url(url))?;
        let link = format!("{LINK} (the IMDSv2 session token)");
        let (response, retries) = http.send(&link, request).await?;
        if !response.status.is_success() {
            return Err(ChainError::refused(&link, &response, retries, IMDS_HINT));
        }
        let token = String::from_utf8_lossy(&response.body).trim().to_owned();
        register(&token);
        session.0 = Some(token.clone());
        Ok(Some(token))
    }
}

#[derive(Default)]
struct Session(Option<String>);

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn sensitive(value: &str) -> Result<http::HeaderValue, ChainError> {
    let mut value = http::HeaderValue::from_str(value).map_err(|_| {
        ChainError::new(
            LINK,
            "answered a session token that a header cannot carry",
            IMDS_HINT,
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn bad_url(url: &str) -> ChainError {
    ChainError::new(
        LINK,
        format!("cannot be asked at {}: not a URL", quote(url)),
        "check the URLs of credential_source",
    )
}

/// Signs a `POST` of `url` with an empty body (SigV4, as google-auth's `RequestSigner` does).
pub fn sign(keys: &Keys, region: &str, url: &str, now: SystemTime) -> Result<Signed, String> {
    let uri: http::Uri = url.parse().map_err(|_| "it is not a URL".to_owned())?;
    let host = match (uri.scheme_str(), uri.host()) {
        (Some("https"), Some(host)) => host.to_ascii_lowercase(),
        _ => return Err("it is not an https URL".to_owned()),
    };
    let service = host.split('.').next().unwrap_or_default().to_owned();
    let seconds = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let time = chrono::DateTime::from_timestamp(i64::try_from(seconds).unwrap_or(0), 0)
        .ok_or_else(|| "the clock is out of range".to_owned())?;
    let amz_date = time.format("%Y%m%dT%H%M%SZ").to_string();
    let date = time.format("%Y%m%d").to_string();

    let mut headers = vec![("host", host.clone()), ("x-amz-date", amz_date.clone())];
    if let Some(token) = &keys.session_token {
        headers.push(("x-amz-security-token", token.clone()));
    }
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "POST\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        canonical_path(uri.path()),
        canonical_query(uri.query().unwrap_or_default()),
        hex(digest::digest(&digest::SHA256, b"").as_ref()),
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let mut key = hmac_sha256(
        format!("AWS4{}", keys.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [region, &service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        keys.access_key_id
    );
    let mut out = vec![
        ("Authorization".to_owned(), authorization),
        ("host".to_owned(), host),
        ("x-amz-date".to_owned(), amz_date),
    ];
    if let Some(token) = &keys.session_token {
        out.push(("x-amz-security-token".to_owned(), token.clone()));
    }
    Ok(Signed {
        url: url.to_owned(),
        method: "POST",
        headers: out,
    })
}

/// The subject token: the signed request with the unsigned `x-goog-cloud-target-resource`
/// header, as compact JSON with sorted keys and ASCII only (Python's `json.dumps(…,
/// separators=(",", ":"), sort_keys=True)`), percent-encoded as `urllib.parse.quote` does.
pub fn subject_token(signed: &Signed, audience: &str) -> String {
    let mut headers: Vec<String> = signed
        .headers
        .iter()
        .map(|(k, v)| format!(r#"{{"key":{},"value":{}}}"#, py_json(k), py_json(v)))
        .collect();
    headers.push(format!(
        r#"{{"key":"x-goog-cloud-target-resource","value":{}}}"#,
        py_json(audience)
    ));
    let json = format!(
        r#"{{"headers":[{}],"method":{},"url":{}}}"#,
        headers.join(","),
        py_json(signed.method),
        py_json(&signed.url)
    );
    percent_encoding::utf8_percent_encode(&json, PY_QUOTE_SAFE).to_string()
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii`): printable ASCII as is,
/// the rest escaped, lower-case hex.
pub(super) fn py_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// The path with `.` and `..` segments resolved (`posixpath.normpath`), `/` when empty.
fn canonical_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    format!("/{}", segments.join("/"))
}

/// The query as SigV4 wants it: decoded, re-encoded keeping only unreserved characters,
/// sorted by key then value (empty values dropped, as Python's `parse_qs` does).
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            (
                percent_encoding::utf8_percent_encode(&k, UNRESERVED).to_string(),
                percent_encoding::utf8_percent_encode(&v, UNRESERVED).to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // google-auth's tests/test_aws.py: the fictitious credentials of AWS's documentation.
    const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "AQoEXAMPLEH4aoAH0gNCAPyJxz4BlCFFxWNE1OPTgk5TthT+FvwqnKwRcOIfrRh3c/LTo6UDdyJwOOvEVPvLXCrrrUtdnniCEXAMPLE/IvU1dYUg2RVAJBanLiHb4IgRmpRV3zrkuWJOgQs8IZZaIv2BXIa2R4OlgkBN9bkUDNCJiBeb/AXlzBBko7b15fjrBs2+cTQtpZ3CYWFXG8C5zqx37wnOE49mRl/+OtkIKGO7fAE";
    const URL: &str =
        "https://sts.us-east-2.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";

    /// 2020-08-11T06:55:22Z
    fn then() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_597_128_922)
    }

    fn keys(session_token: Option<&str>) -> Keys {
        Keys {
            access_key_id: ACCESS_KEY_ID.to_owned(),
            secret_access_key: SECRET_ACCESS_KEY.to_owned(),
            session_token: session_token.map(str::to_owned),
        }
    }

    #[test]
    fn sigv4_matches_google_auths_vectors() {
        let signed = sign(&keys(Some(TOKEN)), "us-east-2", URL, then()).unwrap();
        assert_eq!(
            signed.headers,
            vec![
                (
                    "Authorization".to_owned(),
                    format!(
                        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20200811/us-east-2/sts/aws4_request, \
                         SignedHeaders=host;x-amz-date;x-amz-security-token, \
                         Signature=596aa990b792d763465d73703e684ca273c45536c6d322c31be01a41d02e5b60"
                    )
                ),
                ("host".to_owned(), "sts.us-east-2.amazonaws.com".to_owned()),
                ("x-amz-date".to_owned(), "20200811T065522Z".to_owned()),
                ("x-amz-security-token".to_owned(), TOKEN.to_owned()),
            ]
        );
        assert_eq!(signed.url, URL);
        assert_eq!(signed.method, "POST");

        let signed = sign(&keys(None), "us-east-2", URL, then()).unwrap();
        assert_eq!(
            signed.headers[0].1,
            format!(
                "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20200811/us-east-2/sts/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=9e722e5b7bfa163447e2a14df118b45ebd283c5aea72019bdf921d6e7dc01a9a"
            )
        );
        assert_eq!(signed.headers.len(), 3);
    }

    #[test]
    fn only_https_urls_are_signed() {
        for url in ["http://sts.us-east-2.amazonaws.com?Action=x", "not a url"] {
            assert!(
                sign(&keys(None), "us-east-2", url, then()).is_err(),
                "{url}"
            );
        }
    }

    #[test]
    fn the_subject_token_is_what_google_auth_serialises() {
        let signed = sign(&keys(Some(TOKEN)), "us-east-2", URL, then()).unwrap();
        let audience = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p/providers/aws";
        let token = subject_token(&signed, audience);
        let expected = format!(
            concat!(
                r#"{{"headers":[{{"key":"Authorization","value":"{}"}},"#,
                r#"{{"key":"host","value":"sts.us-east-2.amazonaws.com"}},"#,
                r#"{{"key":"x-amz-date","value":"20200811T065522Z"}},"#,
                r#"{{"key":"x-amz-security-token","value":"{}"}},"#,
                r#"{{"key":"x-goog-cloud-target-resource","value":"{}"}}],"#,
                r#""method":"POST","url":"{}"}}"#
            ),
            signed.headers[0].1, TOKEN, audience, URL
        );
        assert_eq!(
            percent_encoding::percent_decode_str(&token)
                .decode_utf8()
                .unwrap(),
            expected
        );
        // `urllib.parse.quote`: `/` stays, `{`, `"`, `:`, `,`, `=`, `+`, `&`, `?` and space do not.
        assert!(token.starts_with("%7B%22headers%22%3A%5B%7B%22key%22%3A%22Authorization%22"));
        assert!(token.contains("//iam.googleapis.com/projects/123/"));
        assert!(!token.contains(['{', '"', ':', ',', '=', '+', '&', '?', ' ']));
    }

    #[test]
    fn json_strings_are_pythons() {
        assert_eq!(
            py_json("a\"b\\c\n\u{7f}é😀"),
            r#""a\"b\\c\n\u007f\u00e9\ud83d\ude00""#
        );
    }

    #[test]
    fn canonical_parts() {
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_path("/a/./b/../c/"), "/a/c");
        assert_eq!(
            canonical_query("Version=2011-06-15&Action=GetCallerIdentity&b=a+b&a=%2F&e="),
            "Action=GetCallerIdentity&Version=2011-06-15&a=%2F&b=a%20b"
        );
    }
}
