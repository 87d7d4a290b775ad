//! Keyless credentials: the metadata server, impersonation (a flag, a gcloud file), keyless
//! domain-wide delegation through IAM signJwt, and the quota project — against test doubles
//! of the metadata server and IAM Credentials (support/fake_cloud.rs), checking what they
//! received, and that no token is ever shown.

use std::process::Command;

use serde_json::json;

use crate::support::fake_cloud::{FakeCloud, IMPERSONATED_TOKEN, METADATA_TOKEN};
use crate::support::fake_oauth::SA_EMAIL;
use crate::support::{finish, Run, Workdir, TOKEN};

const DRIVE: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\"]\n[params]\npageSize = 100\n";
const DRIVE_READONLY: &str = "https://www.googleapis.com/auth/drive.readonly";

fn workdir() -> (Workdir, FakeCloud) {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE);
    let cloud = FakeCloud::start(&wd.google);
    (wd, cloud)
}

/// The binary with no credential but the metadata server (the fake), IAM Credentials and the
/// token endpoint pointed at the doubles.
fn on_google_cloud(wd: &Workdir, cloud: &FakeCloud, args: &[&str]) -> Command {
    let mut cmd = wd.command(args);
    cmd.env_remove("GSCRAPE_ACCESS_TOKEN")
        .env_remove("NO_GCE_CHECK")
        .env("GCE_METADATA_HOST", cloud.addr.to_string())
        .env("GCE_METADATA_IP", cloud.addr.to_string())
        .env("GSCRAPE_ENDPOINT_IAMCREDENTIALS", cloud.root())
        .env("GSCRAPE_ENDPOINT_OAUTH2", wd.google.root_url());
    cmd
}

fn run(mut cmd: Command) -> Run {
    let run = finish(cmd.stdin(std::process::Stdio::null()).output().unwrap());
    for secret in [METADATA_TOKEN, IMPERSONATED_TOKEN, TOKEN] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a token was shown: {run:?}"
        );
    }
    run
}

/// The bearer tokens the Drive requests carried.
fn drive_tokens(wd: &Workdir) -> Vec<String> {
    let mut tokens: Vec<String> = wd
        .google
        .seen_under("/drive/")
        .iter()
        .filter_map(|s| s.authorization.clone())
        .collect();
    tokens.dedup();
    tokens
}

#[test]
fn on_google_cloud_the_metadata_server_gives_the_token() {
    let (wd, cloud) = workdir();
    let done = run(on_google_cloud(&wd, &cloud, &["run", "-v"]));
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(drive_tokens(&wd), [format!("Bearer {METADATA_TOKEN}")]);
    let asked = cloud.received("/computeMetadata/v1/instance/service-accounts/default/token");
    assert_eq!(asked.len(), 1, "one token for the run");
    assert_eq!(asked[0].header("metadata-flavor"), Some("Google"));
    let scopes = asked[0].target.split_once("scopes=").unwrap().1;
    assert_eq!(
        percent_encoding::percent_decode_str(scopes)
            .decode_utf8()
            .unwrap(),
        DRIVE_READONLY,
        "the run's least-privilege scopes"
    );

    let status = run(on_google_cloud(&wd, &cloud, &["auth", "status", "--check"]));
    assert_eq!(status.code, 0, "{status:?}");
    let said = &status.stdout;
    assert!(
        said.contains(&format!("credential: the metadata server ({}): service account {SA_EMAIL}, project test-project\n", cloud.addr)),
        "{said}"
    );
    assert!(said.contains(&format!("account: {SA_EMAIL}\n")), "{said}");
    assert!(said.contains("project: test-project\n"), "{said}");
    assert!(
        said.contains("check: ok, a token for https://www.googleapis.com/auth/cloud-platform in "),
        "{said}"
    );

    // Off Google Cloud (nothing answers), no credential: the usual message, at once.
    let started = std::time::Instant::now();
    let mut cmd = wd.command(&["run"]);
    cmd.env_remove("GSCRAPE_ACCESS_TOKEN")
        .env_remove("NO_GCE_CHECK")
        .env("GCE_METADATA_IP", "127.0.0.1:9")
        .env("GCE_METADATA_HOST", "127.0.0.1:9");
    let off = run(cmd);
    assert_eq!(off.code, 2, "{off:?}");
    assert!(
        off.stderr.starts_with("error: no credentials found"),
        "{off:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// A metadata server that answers the probe after 2 s (a GKE pod just started) is used: each
/// try waits up to 3 s by default, as google-auth's.
#[test]
fn a_slow_metadata_server_is_waited_for() {
    let (wd, cloud) = workdir();
    cloud.config.lock().unwrap().probe_delay = std::time::Duration::from_secs(2);
    let mut cmd = on_google_cloud(&wd, &cloud, &["run"]);
    cmd.env_remove("GCE_METADATA_TIMEOUT");
    let done = run(cmd);
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(drive_tokens(&wd), [format!("Bearer {METADATA_TOKEN}")]);
    assert_eq!(
        cloud
            .received("/")
            .iter()
            .filter(|r| r.target == "/")
            .count(),
        1
    );

    // With a shorter limit per try (GCE_METADATA_TIMEOUT), each of the 3 tries misses it: not
    // on Google Cloud.
    let mut cmd = on_google_cloud(&wd, &cloud, &["run"]);
    cmd.env("GCE_METADATA_TIMEOUT", "0.2");
    let missed = run(cmd);
    assert_eq!(missed.code, 2, "{missed:?}");
    assert!(missed.stderr.starts_with("error: no credentials found. Without a key: on Google Cloud, run as a service account (the metadata server"), "{missed:?}");
    for keyless in [
        "workload identity federation",
        "--impersonate-service-account",
        "GCE_METADATA_IP",
    ] {
        assert!(missed.stderr.contains(keyless), "{missed:?}");
    }
    assert_eq!(
        cloud
            .received("/")
            .iter()
            .filter(|r| r.target == "/")
            .count(),
        4,
        "3 more tries"
    );
}

/// A metadata server that answers the probe 503 and then 200 is used; one that answers 503 to
/// every try was seen but failed: a transient failure (exit 1) that says so.
#[test]
fn a_flaky_metadata_server_is_tried_again() {
    let (wd, cloud) = workdir();
    cloud.config.lock().unwrap().probe_failures = 1;
    let done = run(on_google_cloud(&wd, &cloud, &["run"]));
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(drive_tokens(&wd), [format!("Bearer {METADATA_TOKEN}")]);
    assert_eq!(
        cloud
            .received("/")
            .iter()
            .filter(|r| r.target == "/")
            .count(),
        2
    );

    cloud.config.lock().unwrap().probe_failures = 3;
    let failed = run(on_google_cloud(&wd, &cloud, &["run"]));
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(
        failed.stderr.contains(&format!(
            "the metadata server was seen but failed: it answered the probe at {} HTTP 503 in each of 3 tries; ",
            cloud.addr
        )),
        "{failed:?}"
    );
}

/// The probe goes to GCE_METADATA_IP, as google-auth's: GCE_METADATA_HOST is for the data only.
#[test]
fn the_probe_goes_to_gce_metadata_ip_not_host() {
    let (wd, cloud) = workdir();
    let mut cmd = on_google_cloud(&wd, &cloud, &["run"]);
    cmd.env("GCE_METADATA_IP", "127.0.0.1:9");
    let off = run(cmd);
    assert_eq!(off.code, 2, "{off:?}");
    assert!(
        off.stderr.starts_with("error: no credentials found"),
        "{off:?}"
    );
    assert!(
        cloud.received("/").is_empty(),
        "the data host was not probed"
    );
}

#[test]
fn a_service_account_is_impersonated_through_its_delegates() {
    let (wd, cloud) = workdir();
    let target = "reports@test-project.iam.gserviceaccount.com";
    let chain = format!("hop@test-project.iam.gserviceaccount.com,{target}");
    let mut cmd = wd.command(&["run", "--impersonate-service-account", &chain]);
    cmd.env("GSCRAPE_ENDPOINT_IAMCREDENTIALS", cloud.root());
    let done = run(cmd);
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(drive_tokens(&wd), [format!("Bearer {IMPERSONATED_TOKEN}")]);
    let calls = cloud.received("/v1/projects/-/serviceAccounts/");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].method, "POST");
    assert_eq!(
        calls[0].target,
        format!("/v1/projects/-/serviceAccounts/{target}:generateAccessToken")
    );
    assert_eq!(
        calls[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str()),
        "the source credential's token"
    );
    assert_eq!(
        calls[0].json(),
        json!({
            "delegates": ["projects/-/serviceAccounts/hop@test-project.iam.gserviceaccount.com"],
            "scope": [DRIVE_READONLY],
            "lifetime": "3600s",
        })
    );

    // Refused: one line naming the link, Google's status and reason, and what to grant.
    cloud.config.lock().unwrap().iam_denied = true;
    let mut cmd = wd.command(&["run", "--impersonate-service-account", target]);
    cmd.env("GSCRAPE_ENDPOINT_IAMCREDENTIALS", cloud.root());
    let refused = run(cmd);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert_eq!(
        refused.stderr,
        format!(
            "error: generateAccessToken for {target} answered HTTP 403 PERMISSION_DENIED \
             (IAM_PERMISSION_DENIED): Permission 'iam.serviceAccounts.getAccessToken' denied \
             on resource (or it may not exist).; grant the caller the Service Account Token \
             Creator role (roles/iam.serviceAccountTokenCreator) on the service account (and on \
             each delegate), and enable the IAM Service Account Credentials API in its project\n"
        )
    );
}

#[test]
fn a_gcloud_impersonation_file_and_its_quota_project() {
    let (wd, cloud) = workdir();
    let target = "reports@test-project.iam.gserviceaccount.com";
    let file = json!({
        "type": "impersonated_service_account",
        "service_account_impersonation_url": format!("{}v1/projects/-/serviceAccounts/{target}:generateAccessToken", cloud.root()),
        "delegates": [],
        "quota_project_id": "billing-project",
        "source_credentials": {
            "type": "service_account",
            "private_key": include_str!("../fixtures/auth/sa-private-key.pem"),
            "client_email": SA_EMAIL,
            "token_uri": wd.google.token_uri(),
        },
    });
    let path = wd.write("impersonated.json", &file.to_string());
    let run_with = |extra: &[&str]| {
        let mut cmd =
            wd.command(&[&["run", "--credentials", path.to_str().unwrap()][..], extra].concat());
        cmd.env_remove("GSCRAPE_ACCESS_TOKEN");
        run(cmd)
    };
    let done = run_with(&[]);
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(drive_tokens(&wd), [format!("Bearer {IMPERSONATED_TOKEN}")]);
    let call = &cloud.received("/v1/")[0];
    assert_eq!(call.json()["scope"], json!([DRIVE_READONLY]));
    let grant = &wd.google.grants()[0];
    assert_eq!(
        grant.claims.as_ref().unwrap()["scope"],
        "https://www.googleapis.com/auth/cloud-platform",
        "the source's token only calls IAM"
    );
    let projects: Vec<Option<String>> = wd
        .google
        .seen_under("/drive/")
        .iter()
        .map(|s| s.user_project.clone())
        .collect();
    assert!(
        projects
            .iter()
            .all(|p| p.as_deref() == Some("billing-project")),
        "{projects:?}"
    );

    // The flag wins over the file.
    let done = run_with(&["--quota-project", "other-project"]);
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(
        wd.google
            .seen_under("/drive/")
            .last()
            .unwrap()
            .user_project
            .as_deref(),
        Some("other-project")
    );
    // A plain token sends none.
    assert_eq!(wd.run(&["run"]).code, 0);
    assert_eq!(
        wd.google.seen_under("/drive/").last().unwrap().user_project,
        None
    );
}

#[test]
fn keyless_delegation_signs_through_iam_one_token_per_subject() {
    let (wd, cloud) = workdir();
    let done = run(on_google_cloud(
        &wd,
        &cloud,
        &["run", "--subject", "ann@example.com"],
    ));
    assert_eq!(done.code, 0, "{done:?}");
    let signed = cloud.received("/v1/projects/-/serviceAccounts/");
    assert_eq!(signed.len(), 1, "{signed:?}");
    assert_eq!(
        signed[0].target,
        format!("/v1/projects/-/serviceAccounts/{SA_EMAIL}:signJwt")
    );
    assert_eq!(
        signed[0].header("authorization"),
        Some(format!("Bearer {METADATA_TOKEN}").as_str()),
        "the metadata account signs for itself"
    );
    let claims: serde_json::Value =
        serde_json::from_str(signed[0].json()["payload"].as_str().unwrap()).unwrap();
    assert_eq!(claims["iss"], SA_EMAIL);
    assert_eq!(claims["sub"], "ann@example.com");
    assert_eq!(claims["scope"], DRIVE_READONLY);
    assert_eq!(claims["aud"], wd.google.token_uri());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );
    // The token endpoint took the signed JWT; the Drive requests carry the user's token.
    let tokens = drive_tokens(&wd);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let token = tokens[0].strip_prefix("Bearer ").unwrap();
    assert_eq!(
        wd.google.token_subject(token),
        Some(Some("ann@example.com".to_owned()))
    );
}

#[test]
fn an_api_that_needs_a_quota_project_says_how_to_name_one() {
    let (wd, _cloud) = workdir();
    wd.google.configure(|c| c.requires_quota_project = true);
    let refused = run(wd.command(&["run"]));
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains(
            "] — this API bills a project for a user's calls: name one with --quota-project PROJECT, \
             GOOGLE_CLOUD_QUOTA_PROJECT, or `quota_project_id` in the credential file \
             (`gcloud auth application-default set-quota-project PROJECT`)"
        ),
        "{}",
        refused.stderr
    );
    let mut cmd = wd.command(&["run"]);
    cmd.env("GOOGLE_CLOUD_QUOTA_PROJECT", "billing-project");
    let done = run(cmd);
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(
        wd.google
            .seen_under("/drive/")
            .last()
            .unwrap()
            .user_project
            .as_deref(),
        Some("billing-project")
    );
}

#[test]
fn a_plain_http_impersonation_url_is_refused_by_its_own_name() {
    let (wd, _cloud) = workdir();
    let file = json!({
        "type": "impersonated_service_account",
        "service_account_impersonation_url": "http://iamcredentials.example.com/v1/projects/-/serviceAccounts/r@p.iam.gserviceaccount.com:generateAccessToken",
        "source_credentials": {
            "type": "service_account",
            "private_key": include_str!("../fixtures/auth/sa-private-key.pem"),
            "client_email": SA_EMAIL,
            "token_uri": wd.google.token_uri(),
        },
    });
    wd.write("impersonated.json", &file.to_string());
    let mut cmd = wd.command(&["run", "--credentials", "impersonated.json"]);
    cmd.env_remove("GSCRAPE_ACCESS_TOKEN");
    let done = run(cmd);
    assert_eq!(done.code, 2, "{done:?}");
    assert!(
        done.stderr.starts_with(
            "error: impersonated.json: its service_account_impersonation_url \"http://iamcredentials.example.com/"
        ),
        "{}",
        done.stderr
    );
}

/// As google-auth: the impersonating credential calls `signJwt` on the target with its own
/// token, so the target needs no Token Creator role on itself.
#[test]
fn an_impersonated_account_acting_as_a_user_has_its_jwt_signed_by_the_caller() {
    let (wd, cloud) = workdir();
    // (The fake token endpoint takes delegation JWTs of SA_EMAIL.)
    let target = SA_EMAIL;
    let mut cmd = wd.command(&[
        "run",
        "--impersonate-service-account",
        target,
        "--subject",
        "ann@example.com",
    ]);
    cmd.env("GSCRAPE_ENDPOINT_IAMCREDENTIALS", cloud.root())
        .env("GSCRAPE_ENDPOINT_OAUTH2", wd.google.root_url());
    let done = run(cmd);
    assert_eq!(done.code, 0, "{done:?}");
    let signed: Vec<_> = cloud
        .received("/v1/projects/-/serviceAccounts/")
        .into_iter()
        .filter(|c| c.target.ends_with(":signJwt"))
        .collect();
    assert_eq!(signed.len(), 1, "{signed:?}");
    assert_eq!(
        signed[0].target,
        format!("/v1/projects/-/serviceAccounts/{target}:signJwt")
    );
    assert_eq!(
        signed[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str()),
        "the caller's own token, not the target's"
    );
    let claims: serde_json::Value =
        serde_json::from_str(signed[0].json()["payload"].as_str().unwrap()).unwrap();
    assert_eq!(claims["iss"], target);
    assert_eq!(claims["sub"], "ann@example.com");
}
