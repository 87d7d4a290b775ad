//! `gscrape.toml` read by every command it has settings for: `cache-dir` and `discovery-url`
//! by each command that loads Discovery documents (run, validate, describe, new, auth login),
//! with the same order as run's other settings: flag, environment, project file, user file,
//! default. A broken file stops those commands as it stops `run`.

use std::process::Command;

use crate::support::{finish, Run, Workdir};

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\"]\n[params]\npageSize = 100\n";

/// The binary with the cache directory left to the config files (the work dir gives it in
/// the environment), and https going to a proxy that is not there: Google's own Discovery
/// service, the default URL, cannot be reached (the fake one is plain http).
fn with_cache_from_files(wd: &Workdir, args: &[&str]) -> Command {
    let mut command = wd.command(args);
    command
        .env_remove("GSCRAPE_CACHE_DIR")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1,localhost");
    command
}

/// The same with the Discovery URL left to the config files too.
fn with_discovery_from_files(wd: &Workdir, args: &[&str]) -> Command {
    let mut command = with_cache_from_files(wd, args);
    command.env_remove("GSCRAPE_DISCOVERY_URL");
    command
}

fn run(mut command: Command) -> Run {
    finish(command.output().unwrap())
}

/// The Drive v3 document is cached in `dir` (one file per document URL: `drive.v3.<hash>.json`).
fn cached_in(wd: &Workdir, dir: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(wd.path().join(dir)) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with("drive.v3.") && name.ends_with(".json")
    })
}

#[test]
fn describe_and_new_use_the_discovery_url_and_cache_dir_of_gscrape_toml() {
    let wd = Workdir::new();
    wd.write(
        "gscrape.toml",
        &format!(
            "[run]\ndiscovery-url = \"{}\"\ncache-dir = \"project-cache\"\n",
            wd.google.discovery_url()
        ),
    );
    let described = run(with_discovery_from_files(&wd, &["describe", "drive", "v3"]));
    assert_eq!(described.code, 0, "{described:?}");
    assert_eq!(
        described.stdout,
        "POST   drive.files.create                 writes\n\
         DELETE drive.files.delete                 writes\n\
         DELETE drive.files.emptyTrash             writes\n\
         GET    drive.files.get\n\
         GET    drive.files.list        paginated\n"
    );
    assert!(cached_in(&wd, "project-cache"), "the file's cache-dir");
    assert!(!cached_in(&wd, ".cache/gscrape"), "not the default one");
    assert_eq!(wd.google.seen_under("/discovery/").len(), 1);

    let new = run(with_discovery_from_files(
        &wd,
        &["new", "drive", "v3", "drive.files.list", "--name", "files"],
    ));
    assert_eq!(new.code, 0, "{new:?}");
    assert!(
        new.stdout.contains("\nname = \"files\"\n"),
        "{}",
        new.stdout
    );
    assert_eq!(
        wd.google.seen_under("/discovery/").len(),
        1,
        "the document cached in the file's cache-dir"
    );

    // The environment wins over the file.
    let mut command = with_discovery_from_files(&wd, &["describe", "drive", "v3"]);
    command.env(
        "GSCRAPE_DISCOVERY_URL",
        "https://discovery.invalid/{api}/{version}",
    );
    let elsewhere = run(command);
    assert_eq!(elsewhere.code, 2, "{elsewhere:?}");
    assert!(
        elsewhere.stderr.contains("discovery.invalid"),
        "{}",
        elsewhere.stderr
    );
}

#[test]
fn validate_takes_the_cache_dir_from_flag_environment_project_file_user_file() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let ok = "ok     files: drive.files.list → files.csv (1 columns, paginated)\n";

    wd.write("config/gscrape.toml", "[run]\ncache-dir = \"user-cache\"\n");
    let validated = run(with_cache_from_files(&wd, &["validate"]));
    assert_eq!(
        (validated.code, validated.stdout.as_str()),
        (0, ok),
        "{validated:?}"
    );
    assert!(cached_in(&wd, "user-cache"), "the user's file");

    wd.write("gscrape.toml", "[run]\ncache-dir = \"project-cache\"\n");
    let validated = run(with_cache_from_files(&wd, &["validate"]));
    assert_eq!((validated.code, validated.stdout.as_str()), (0, ok));
    assert!(
        cached_in(&wd, "project-cache"),
        "the project's file over the user's"
    );

    let mut command = with_cache_from_files(&wd, &["validate"]);
    command.env("GSCRAPE_CACHE_DIR", wd.path().join("env-cache"));
    assert_eq!(run(command).code, 0);
    assert!(
        cached_in(&wd, "env-cache"),
        "the environment over the files"
    );

    let mut command = with_cache_from_files(&wd, &["validate", "--cache-dir", "flag-cache"]);
    command.env("GSCRAPE_CACHE_DIR", wd.path().join("env-cache-2"));
    assert_eq!(run(command).code, 0);
    assert!(cached_in(&wd, "flag-cache"), "the flag over everything");
    assert!(!cached_in(&wd, "env-cache-2"));
    assert!(!cached_in(&wd, ".cache/gscrape"), "never the default");

    // --offline reads the cache the file names.
    let seen = wd.google.seen_under("/discovery/").len();
    let offline = run(with_cache_from_files(&wd, &["validate", "--offline"]));
    assert_eq!(
        (offline.code, offline.stdout.as_str()),
        (0, ok),
        "{offline:?}"
    );
    assert_eq!(wd.google.seen_under("/discovery/").len(), seen);
}

#[test]
fn run_and_login_take_the_cache_dir_of_the_user_file_in_their_config_dir() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    wd.write(
        "elsewhere/gscrape.toml",
        "[run]\ncache-dir = \"run-cache\"\n",
    );
    let ran = run(with_cache_from_files(
        &wd,
        &["run", "--config-dir", "elsewhere"],
    ));
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(cached_in(&wd, "run-cache"));

    // Login looks up the scopes of the queries' methods before it reads the client secret.
    wd.write("notjson.json", "hello");
    wd.write(
        "login-config/gscrape.toml",
        "[run]\ncache-dir = \"login-cache\"\n",
    );
    let mut command = with_cache_from_files(
        &wd,
        &[
            "auth",
            "login",
            "--client-secret",
            "notjson.json",
            "--config-dir",
            "login-config",
        ],
    );
    command.env_remove("GSCRAPE_ACCESS_TOKEN");
    let login = run(command);
    assert_eq!(
        (login.code, login.stderr.as_str()),
        (
            2,
            "error: notjson.json: not JSON (expected value at line 1 column 1)\n"
        )
    );
    assert!(cached_in(&wd, "login-cache"), "login's --config-dir");
}

#[test]
fn a_broken_config_file_stops_every_command_that_reads_it() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    wd.write("gscrape.toml", "[run]\ncache_dir = \"x\"\n");
    let message = "error: gscrape.toml: [run] unknown key `cache_dir`; did you mean `cache-dir`?\n";
    for args in [
        &["validate"][..],
        &["describe", "drive", "v3"],
        &["new", "drive", "v3", "drive.files.list"],
        &["run"],
    ] {
        let refused = wd.run(args);
        assert_eq!(
            (
                refused.code,
                refused.stdout.as_str(),
                refused.stderr.as_str()
            ),
            (2, "", message),
            "{args:?}"
        );
    }
    wd.write("config/gscrape.toml", "[run]\ncache-dir = 3\n");
    wd.write("gscrape.toml", "");
    let refused = wd.run(&["validate"]);
    let user_file = wd.path().join("config/gscrape.toml");
    assert_eq!(
        (refused.code, refused.stderr),
        (
            2,
            format!(
                "error: {}: [run] invalid type: integer `3`, expected path string\n",
                user_file.display()
            )
        ),
        "the user's file"
    );
    assert!(wd.google.seen_under("/discovery/").is_empty());
    assert!(wd.google.seen_under("/drive/").is_empty());

    // `auth status` has no setting in a config file, and does not read one.
    let status = wd.run(&["auth", "status"]);
    assert_eq!(status.code, 0, "{status:?}");
}
