//! Workload identity federation end to end: `external_account` files with url, file,
//! executable and AWS subject-token sources, the STS exchange, generateAccessToken when a
//! service account is impersonated, `external_account_authorized_user` refreshes — against
//! the fakes of `support::fake_sts`, checking what they received, that the API calls carried
//! the token they issued, that failures are one line naming the link, and that no secret is
//! printed (with `-vv` too).

use std::process::Stdio;

use crate::support::fake_oauth::encoded_forms;
use crate::support::fake_sts::{
    FakeSts, Issued, StsConfig, ACCESS_TOKEN_TYPE, AUDIENCE, AWS_TYPE, IMDS_SESSION_TOKEN, ISSUED,
    JWT_TYPE, SA, SUBJECT_TOKEN, TOKEN_EXCHANGE,
};
use crate::support::{finish, Run, Workdir};

const DRIVE_QUERY: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\"]\n[params]\npageSize = 100\n";
const DRIVE_READONLY: &str = "https://www.googleapis.com/auth/drive.readonly";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The request token of GitHub Actions (`ACTIONS_ID_TOKEN_REQUEST_TOKEN`), a header's value.
const GHA_REQUEST_TOKEN: &str = "gha-request-token-never-printed";
const CLIENT_ID: &str = "wf-client-id";
const CLIENT_SECRET: &str = "wf-client-secret-never-printed";
const WORKFORCE: &str = "//iam.googleapis.com/locations/global/workforcePools/staff/providers/okta";

struct Fed {
    wd: Workdir,
    sts: FakeSts,
}

impl Fed {
    fn new(config: StsConfig) -> Self {
        let wd = Workdir::new();
        wd.write("queries/files.toml", DRIVE_QUERY);
        let sts = FakeSts::start(config, wd.google.accepted_tokens());
        Fed { wd, sts }
    }

    fn root(&self) -> String {
        self.sts.root_url()
    }

    /// `service_account_impersonation_url` of [`SA`] at the fake.
    fn impersonation_url(&self) -> String {
        format!(
            "{}v1/projects/-/serviceAccounts/{SA}:generateAccessToken",
            self.root()
        )
    }

    fn write_credentials(&self, file: serde_json::Value) {
        self.wd.write("wif.json", &file.to_string());
    }

    /// Runs gscrape with no access token and `envs`; nothing it printed holds a secret.
    fn run(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let mut command = self.wd.command(args);
        command
            .env_remove("GSCRAPE_ACCESS_TOKEN")
            .env("GSCRAPE_ENDPOINT_STS", self.root())
            .env("GSCRAPE_ENDPOINT_IAMCREDENTIALS", self.root())
            .stdin(Stdio::null());
        for (name, value) in envs {
            command.env(name, value);
        }
        let run = finish(command.output().unwrap());
        let config = StsConfig::default();
        let mut secrets = vec![
            SUBJECT_TOKEN.to_owned(),
            GHA_REQUEST_TOKEN.to_owned(),
            CLIENT_SECRET.to_owned(),
            IMDS_SESSION_TOKEN.to_owned(),
            config.aws.secret_access_key.clone(),
            config.aws.session_token.clone().unwrap(),
            config.refresh_token.clone(),
        ];
        // What STS was sent as subject tokens (an AWS one is a signed request), decoded too.
        for exchange in self.sts.seen_at("/v1/token") {
            if let Some(subject) = exchange.field("subject_token") {
                let decoded = percent_encoding::percent_decode_str(&subject)
                    .decode_utf8_lossy()
                    .into_owned();
                secrets.extend([subject, decoded]);
            }
        }
        secrets = secrets.iter().flat_map(|s| encoded_forms(s)).collect();
        secrets.push(ISSUED.to_owned());
        for secret in &secrets {
            assert!(
                !run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()),
                "a secret ({secret}) was printed: {run:?}"
            );
        }
        run
    }

    /// The Drive requests' tokens were issued by the fake, as `issued`.
    fn drive_used(&self, issued: Issued) {
        let drive = self.wd.google.seen_under("/drive/");
        assert!(!drive.is_empty(), "no Drive request");
        for request in drive {
            let token = request
                .authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "))
                .expect("a bearer token");
            assert_eq!(self.sts.issued(token), Some(issued.clone()), "{token}");
        }
    }
}

fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The one line a failed run prints, `error: …` (among the log lines of `-v`).
fn one_error_line(run: &Run) -> &str {
    assert_eq!(run.code, 2, "{run:?}");
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(run.stderr.ends_with('\n'), "{}", run.stderr);
    errors[0]
}

#[test]
fn a_github_actions_file_exchanges_the_url_token_and_impersonates() {
    let fed = Fed::new(StsConfig {
        subject_header: Some((
            "authorization".to_owned(),
            format!("Bearer {GHA_REQUEST_TOKEN}"),
        )),
        ..StsConfig::default()
    });
    // What google-github-actions/auth writes, but for the URLs (and no token_url:
    // GSCRAPE_ENDPOINT_STS says where STS is).
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": JWT_TYPE,
        "service_account_impersonation_url": fed.impersonation_url(),
        "service_account_impersonation": {"token_lifetime_seconds": 1800},
        "credential_source": {
            "url": format!("{}subject-token.json?api-version=2.0&audience=x", fed.root()),
            "headers": {"Authorization": format!("Bearer {GHA_REQUEST_TOKEN}")},
            "format": {"type": "json", "subject_token_field_name": "value"}
        }
    }));
    let run = fed.run(&["-vv", "run", "--credentials", "wif.json"], &[]);
    assert_eq!(run.code, 0, "{run:?}");

    let subject = fed.sts.seen_at("/subject-token.json");
    assert_eq!(subject.len(), 1);
    assert_eq!(
        subject[0].header("authorization"),
        Some(format!("Bearer {GHA_REQUEST_TOKEN}").as_str()),
        "the headers of credential_source were sent"
    );
    let exchange = fed.sts.seen_at("/v1/token");
    assert_eq!(exchange.len(), 1);
    assert_eq!(
        exchange[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        exchange[0].header("authorization"),
        None,
        "no client, no Basic"
    );
    assert_eq!(
        exchange[0].form(),
        pairs(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("audience", AUDIENCE),
            ("scope", CLOUD_PLATFORM),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("subject_token", SUBJECT_TOKEN),
            ("subject_token_type", JWT_TYPE),
        ]),
        "impersonating, the federated token asks for cloud-platform only"
    );
    let generate = fed.sts.seen_at(&FakeSts::generate_path(SA));
    assert_eq!(generate.len(), 1);
    let bearer = generate[0]
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap();
    assert_eq!(
        fed.sts.issued(bearer),
        Some(Issued::Federated(CLOUD_PLATFORM.to_owned())),
        "generateAccessToken is called with the federated token"
    );
    assert_eq!(
        generate[0].json(),
        serde_json::json!({"scope": [DRIVE_READONLY], "lifetime": "1800s"})
    );
    fed.drive_used(Issued::ServiceAccount(SA.to_owned()));

    let status = fed.run(&["auth", "status", "--credentials", "wif.json"], &[]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(
        status.stdout.contains(&format!("account: {SA}\n")),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(&format!(
            "credential: workload identity federation (wif.json from --credentials): pool \
             provider {AUDIENCE}, subject token from http://"
        )),
        "{}",
        status.stdout
    );
    assert!(status
        .stdout
        .contains(&format!(", as the service account {SA}\n")));
}

#[test]
fn a_file_token_used_directly_asks_sts_for_the_runs_scopes_with_the_client() {
    let fed = Fed::new(StsConfig {
        client: Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())),
        ..StsConfig::default()
    });
    // Written by `echo`: the line break is not part of the token.
    fed.wd.write("token.jwt", &format!("{SUBJECT_TOKEN}\n"));
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": JWT_TYPE,
        "token_url": format!("{}v1/token", fed.root()),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "credential_source": {"file": fed.wd.path().join("token.jwt")}
    }));
    let run = fed.run(&["run"], &[("GOOGLE_APPLICATION_CREDENTIALS", "wif.json")]);
    assert_eq!(run.code, 0, "{run:?}");
    let exchange = fed.sts.seen_at("/v1/token");
    assert_eq!(exchange.len(), 1);
    use base64::Engine;
    assert_eq!(
        exchange[0].header("authorization"),
        Some(
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
            )
            .as_str()
        )
    );
    assert_eq!(exchange[0].field("scope").as_deref(), Some(DRIVE_READONLY));
    assert_eq!(
        exchange[0].field("subject_token").as_deref(),
        Some(SUBJECT_TOKEN)
    );
    assert!(fed
        .sts
        .seen()
        .iter()
        .all(|s| !s.path().ends_with(":generateAccessToken")));
    fed.drive_used(Issued::Federated(DRIVE_READONLY.to_owned()));
}

#[test]
fn a_workforce_pool_sends_its_user_project_in_options() {
    let fed = Fed::new(StsConfig {
        audience: WORKFORCE.to_owned(),
        ..StsConfig::default()
    });
    fed.wd.write(
        "token.json",
        &serde_json::json!({"id_token": SUBJECT_TOKEN}).to_string(),
    );
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": WORKFORCE,
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "workforce_pool_user_project": "billing-project",
        "credential_source": {
            "file": "token.json",
            "format": {"type": "json", "subject_token_field_name": "id_token"}
        }
    }));
    let run = fed.run(&["run", "--credentials", "wif.json"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let exchange = fed.sts.seen_at("/v1/token");
    // google-auth: quote(json.dumps({"userProject": …})), then form-encoded once more.
    assert_eq!(
        exchange[0].field("options").as_deref(),
        Some("%7B%22userProject%22%3A%20%22billing-project%22%7D")
    );
    assert!(exchange[0]
        .body
        .contains("options=%257B%2522userProject%2522"));
    fed.drive_used(Issued::Federated(DRIVE_READONLY.to_owned()));
}

/// A credentials file whose source is `script.sh` in the work dir (which logs its
/// environment to `ran.log` and prints `response`).
fn write_executable(fed: &Fed, response: &str, output_file: Option<&str>) {
    use std::os::unix::fs::PermissionsExt;
    let script = format!(
        "#!/bin/sh\nenv | grep '^GOOGLE_EXTERNAL_ACCOUNT_' | sort >> '{log}'\necho --- >> '{log}'\n\
         echo 'a diagnostic on stderr' >&2\nprintf '%s' '{response}'\n",
        log = fed.wd.path().join("ran.log").display()
    );
    let path = fed.wd.write("script.sh", &script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut executable = serde_json::json!({
        "command": format!("{} --flag 'two words'", path.display()),
        "timeout_millis": 5000,
    });
    if let Some(file) = output_file {
        executable["output_file"] = fed.wd.path().join(file).display().to_string().into();
    }
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": JWT_TYPE,
        "service_account_impersonation_url": fed.impersonation_url(),
        "credential_source": {"executable": executable}
    }));
}

fn valid_response(expires: u64) -> String {
    serde_json::json!({
        "version": 1,
        "success": true,
        "token_type": JWT_TYPE,
        "id_token": SUBJECT_TOKEN,
        "expiration_time": expires,
    })
    .to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn an_executable_runs_only_when_allowed_and_is_told_what_to_fetch() {
    let fed = Fed::new(StsConfig::default());
    write_executable(&fed, &valid_response(unix_now() + 3600), Some("cache.json"));

    let run = fed.run(&["run", "--credentials", "wif.json"], &[]);
    let line = one_error_line(&run);
    assert!(
        line.starts_with("the executable \"") && line.contains("script.sh\" was not run"),
        "{line}"
    );
    assert!(line.ends_with(
        "set GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 to allow it (as google-auth requires)"
    ));
    assert!(!fed.wd.exists("ran.log"), "the program was not run");
    assert!(fed.sts.seen().is_empty());

    let allow = [("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")];
    let run = fed.run(&["run", "--credentials", "wif.json"], &allow);
    assert_eq!(run.code, 0, "{run:?}");
    let cache = fed.wd.path().join("cache.json").display().to_string();
    assert_eq!(
        fed.wd.read("ran.log"),
        format!(
            "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1\n\
             GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE={AUDIENCE}\n\
             GOOGLE_EXTERNAL_ACCOUNT_ID={SA}\n\
             GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL={SA}\n\
             GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE=0\n\
             GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE={cache}\n\
             GOOGLE_EXTERNAL_ACCOUNT_REVOKE=0\n\
             GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE={JWT_TYPE}\n---\n"
        )
    );
    assert_eq!(
        fed.sts.seen_at("/v1/token")[0]
            .field("subject_token")
            .as_deref(),
        Some(SUBJECT_TOKEN)
    );
    fed.drive_used(Issued::ServiceAccount(SA.to_owned()));
}

#[test]
fn an_executables_output_file_is_used_while_it_is_valid() {
    let fed = Fed::new(StsConfig::default());
    let allow = [("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")];
    write_executable(&fed, &valid_response(unix_now() + 3600), Some("cache.json"));
    fed.wd
        .write("cache.json", &valid_response(unix_now() + 3600));
    let run = fed.run(&["run", "--credentials", "wif.json"], &allow);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !fed.wd.exists("ran.log"),
        "a valid cached response: not run"
    );
    assert_eq!(fed.sts.seen_at("/v1/token").len(), 1);

    fed.wd.write("cache.json", &valid_response(unix_now() - 10));
    let run = fed.run(&["run", "--credentials", "wif.json"], &allow);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        fed.wd.read("ran.log").matches("---").count(),
        1,
        "expired: run"
    );

    // A cached response that is not one is an error, not a reason to run the program.
    fed.wd.write("cache.json", r#"{"success": true}"#);
    let run = fed.run(&["run", "--credentials", "wif.json"], &allow);
    let line = one_error_line(&run);
    assert!(
        line.contains("left a response in its output file") && line.contains("no version"),
        "{line}"
    );
    assert_eq!(fed.wd.read("ran.log").matches("---").count(), 1);
}

#[test]
fn an_unsuccessful_executable_is_one_line_with_its_code_and_message() {
    let fed = Fed::new(StsConfig::default());
    write_executable(
        &fed,
        r#"{"version": 1, "success": false, "code": "401", "message": "Caller not authorized."}"#,
        None,
    );
    let run = fed.run(
        &["run", "--credentials", "wif.json"],
        &[("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")],
    );
    let line = one_error_line(&run);
    assert!(
        line.ends_with(
            "script.sh\" answered it failed: code 401, message Caller not authorized.; see the \
             program's own documentation for the code"
        ),
        "{line}"
    );
    assert!(fed.sts.seen().is_empty());
}

fn write_aws(fed: &Fed, imds: bool) {
    let root = fed.root();
    let mut source = serde_json::json!({
        "environment_id": "aws1",
        "regional_cred_verification_url":
            "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
    });
    if imds {
        source["region_url"] = format!("{root}latest/meta-data/placement/availability-zone").into();
        source["url"] = format!("{root}latest/meta-data/iam/security-credentials").into();
        source["imdsv2_session_token_url"] = format!("{root}latest/api/token").into();
    }
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": AWS_TYPE,
        "token_url": format!("{root}v1/token"),
        "service_account_impersonation_url": fed.impersonation_url(),
        "credential_source": source
    }));
}

#[test]
fn aws_signs_get_caller_identity_with_imdsv2_credentials() {
    let fed = Fed::new(StsConfig::default());
    write_aws(&fed, true);
    let run = fed.run(&["-vv", "run", "--credentials", "wif.json"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        fed.sts.aws_checks(),
        vec![Ok(())],
        "the fake recomputed the signature"
    );
    let imds: Vec<(String, String)> = fed
        .sts
        .seen()
        .into_iter()
        .filter(|s| s.path().starts_with("/latest/"))
        .map(|s| (s.method.clone(), s.path().to_owned()))
        .collect();
    assert_eq!(
        imds,
        pairs(&[
            ("PUT", "/latest/api/token"),
            ("GET", "/latest/meta-data/placement/availability-zone"),
            ("GET", "/latest/meta-data/iam/security-credentials"),
            (
                "GET",
                "/latest/meta-data/iam/security-credentials/gscrape-runner-role"
            ),
        ]),
        "one session token, then the region and the role's credentials"
    );
    let put = &fed.sts.seen_at("/latest/api/token")[0];
    assert_eq!(
        put.header("x-aws-ec2-metadata-token-ttl-seconds"),
        Some("300")
    );
    assert_eq!(
        fed.sts.seen_at("/v1/token")[0]
            .field("subject_token_type")
            .as_deref(),
        Some(AWS_TYPE)
    );
    fed.drive_used(Issued::ServiceAccount(SA.to_owned()));
}

#[test]
fn an_aws_subject_token_quoted_back_by_sts_is_redacted() {
    let fed = Fed::new(StsConfig {
        sts_error: Some((
            400,
            "invalid_grant".to_owned(),
            "Invalid AWS request {subject}".to_owned(),
        )),
        ..StsConfig::default()
    });
    write_aws(&fed, true);
    let run = fed.run(&["run", "--credentials", "wif.json"], &[]);
    let line = one_error_line(&run);
    assert!(
        line.starts_with("STS answered HTTP 400 invalid_grant: Invalid AWS request REDACTED"),
        "{line}"
    );
    assert!(!line.contains("AWS4-HMAC-SHA256"), "{line}");
}

#[test]
fn aws_keys_from_the_environment_need_no_instance_metadata() {
    let keys = StsConfig::default().aws;
    let fed = Fed::new(StsConfig::default());
    write_aws(&fed, true);
    let run = fed.run(
        &["run", "--credentials", "wif.json"],
        &[
            ("AWS_REGION", "us-east-2"),
            ("AWS_ACCESS_KEY_ID", &keys.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &keys.secret_access_key),
            ("AWS_SESSION_TOKEN", keys.session_token.as_deref().unwrap()),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(fed.sts.aws_checks(), vec![Ok(())]);
    assert!(fed
        .sts
        .seen()
        .iter()
        .all(|s| !s.path().starts_with("/latest/")));

    // Without them and without the metadata URLs, the error says what to set.
    let fed = Fed::new(StsConfig::default());
    write_aws(&fed, false);
    let run = fed.run(&["run", "--credentials", "wif.json"], &[]);
    let line = one_error_line(&run);
    assert_eq!(
        line,
        "AWS instance metadata was not asked for the region: the file names no \
         credential_source.region_url; set AWS_REGION (or AWS_DEFAULT_REGION), or add region_url \
         to the file"
    );
}

#[test]
fn an_sts_refusal_is_one_line_naming_sts_and_its_reason() {
    let fed = Fed::new(StsConfig {
        sts_error: Some((
            400,
            "invalid_grant".to_owned(),
            // Servers quote what they got: the secret in it must not be printed.
            format!(
                "The audience in ID Token {SUBJECT_TOKEN} does not match the expected audience."
            ),
        )),
        ..StsConfig::default()
    });
    fed.wd.write("token.jwt", SUBJECT_TOKEN);
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": JWT_TYPE,
        "credential_source": {"file": "token.jwt"}
    }));
    let run = fed.run(&["run", "--credentials", "wif.json"], &[]);
    assert_eq!(
        one_error_line(&run),
        format!(
            "STS answered HTTP 400 invalid_grant: The audience in ID Token REDACTED does not \
             match the expected audience.; check that the workload identity pool provider {AUDIENCE} \
             accepts this subject token (its issuer, allowed audiences and attribute condition; \
             the token must not have expired) and the file's subject_token_type"
        )
    );
    assert_eq!(
        fed.sts.seen_at("/v1/token").len(),
        1,
        "a 400 is not retried"
    );
    assert!(fed.wd.google.seen_under("/drive/").is_empty());
}

#[test]
fn a_denied_generate_access_token_names_the_link_and_the_role_to_grant() {
    let fed = Fed::new(StsConfig {
        iam_deny: true,
        ..StsConfig::default()
    });
    fed.wd.write("token.jwt", SUBJECT_TOKEN);
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": JWT_TYPE,
        "service_account_impersonation_url": fed.impersonation_url(),
        "credential_source": {"file": "token.jwt"}
    }));
    let run = fed.run(&["run", "--credentials", "wif.json"], &[]);
    let line = one_error_line(&run);
    assert!(
        line.starts_with(&format!(
            "generateAccessToken for {SA} answered HTTP 403 PERMISSION_DENIED \
             (IAM_PERMISSION_DENIED): Permission 'iam.serviceAccounts.getAccessToken' denied"
        )),
        "{line}"
    );
    assert!(
        line.ends_with(&format!(
            "; grant the pool's principals the Workload Identity User role \
             (roles/iam.workloadIdentityUser) on {SA}, and enable the IAM Service Account \
             Credentials API (iamcredentials.googleapis.com) in its project"
        )),
        "{line}"
    );
}

#[test]
fn a_missing_subject_token_file_says_which_file() {
    let fed = Fed::new(StsConfig::default());
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": JWT_TYPE,
        "credential_source": {"file": "/var/run/secrets/tokens/gcp-ksa/token"}
    }));
    let run = fed.run(&["run", "--credentials", "wif.json"], &[]);
    let line = one_error_line(&run);
    assert!(
        line.starts_with(
            "the subject-token file /var/run/secrets/tokens/gcp-ksa/token cannot be read: "
        ),
        "{line}"
    );
    assert!(line.ends_with("check credential_source.file, and that what writes the token (a projected service-account token, a sidecar) has written it"));
    assert!(fed.sts.seen().is_empty());
}

#[test]
fn a_bad_file_is_refused_by_field_before_anything_is_sent() {
    let fed = Fed::new(StsConfig::default());
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": JWT_TYPE,
        "credential_source": {
            "url": "http://token.example.com/idtoken",
            "headers": {"Authorization": format!("Bearer {GHA_REQUEST_TOKEN}")}
        }
    }));
    let run = fed.run(&["run", "--credentials", "wif.json"], &[]);
    let line = one_error_line(&run);
    assert!(
        line.starts_with(
            "wif.json: not a usable external_account file (its `credential_source.url` \
             \"http://token.example.com/idtoken\" is not https"
        ),
        "{line}"
    );
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": JWT_TYPE,
        "credential_source": {"file": "t", "formt": {"type": "json"}}
    }));
    let run = fed.run(&["run", "--credentials", "wif.json"], &[]);
    assert_eq!(
        one_error_line(&run),
        "wif.json: not a usable external_account file (`credential_source.formt` is not a \
         field of this file format; expected some of: file, format)"
    );
    assert!(fed.sts.seen().is_empty());
}

#[test]
fn a_workforce_login_refreshes_with_basic_auth() {
    let fed = Fed::new(StsConfig {
        client: Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())),
        ..StsConfig::default()
    });
    let refresh_token = StsConfig::default().refresh_token;
    fed.write_credentials(serde_json::json!({
        "type": "external_account_authorized_user",
        "audience": WORKFORCE,
        "refresh_token": refresh_token,
        "token_url": format!("{}v1/oauth/token", fed.root()),
        "token_info_url": format!("{}v1/introspect", fed.root()),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "quota_project_id": "billing-project"
    }));
    let run = fed.run(&["-vv", "run", "--credentials", "wif.json"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let refresh = fed.sts.seen_at("/v1/oauth/token");
    assert_eq!(refresh.len(), 1);
    use base64::Engine;
    assert_eq!(
        refresh[0].header("authorization").unwrap(),
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
        )
    );
    assert_eq!(
        refresh[0].form(),
        pairs(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token)
        ])
    );
    fed.drive_used(Issued::Workforce);

    let status = fed.run(&["auth", "status", "--credentials", "wif.json"], &[]);
    assert!(
        status.stdout.contains(&format!(
            "credential: workforce identity login (wif.json from --credentials): pool provider \
             {WORKFORCE}"
        )),
        "{}",
        status.stdout
    );
}

#[test]
fn a_refusing_subject_token_url_is_one_line_and_its_header_stays_secret() {
    let fed = Fed::new(StsConfig {
        subject_refuse_echo: true,
        ..StsConfig::default()
    });
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": JWT_TYPE,
        "credential_source": {
            "url": format!("{}subject-token", fed.root()),
            "headers": {"Authorization": format!("Bearer {GHA_REQUEST_TOKEN}")}
        }
    }));
    let run = fed.run(&["-vv", "run", "--credentials", "wif.json"], &[]);
    let line = one_error_line(&run);
    assert_eq!(
        line,
        format!(
            "the subject-token URL {}subject-token answered HTTP 403: {{\"message\":\"The request \
             token REDACTED has expired\"}}; check credential_source.url and its headers (in GitHub Actions \
             the job needs `permissions: id-token: write`, and the request token lives only as \
             long as the job)",
            fed.root()
        )
    );
    assert_eq!(
        fed.sts.seen_at("/subject-token").len(),
        1,
        "a 403 is not retried"
    );
    assert!(fed.sts.seen_at("/v1/token").is_empty());
}

#[test]
fn an_executable_that_hangs_is_stopped_at_its_timeout() {
    use std::os::unix::fs::PermissionsExt;
    let fed = Fed::new(StsConfig::default());
    let path = fed.wd.write("slow.sh", "#!/bin/sh\nexec sleep 60\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    fed.write_credentials(serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": JWT_TYPE,
        "credential_source": {"executable": {"command": path, "timeout_millis": 5000}}
    }));
    let started = std::time::Instant::now();
    let run = fed.run(
        &["run", "--credentials", "wif.json"],
        &[("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let line = one_error_line(&run);
    assert!(
        line.ends_with(
            "slow.sh\" did not finish within 5 s and was stopped; make it faster, or raise \
             credential_source.executable.timeout_millis (at most 120000)"
        ),
        "{line}"
    );
}
