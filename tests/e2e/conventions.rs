//! The conventions people reach for: completions, a manual page, examples and exit codes in
//! `--help`.

use crate::support::Workdir;

#[test]
fn completion_scripts_load_in_their_shells() {
    let wd = Workdir::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = wd.run(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {run:?}");
        assert!(run.stdout.contains("gscrape"), "{shell}");
        assert!(
            run.stdout.contains("validate"),
            "{shell}: subcommands are completed"
        );
    }
    let script = wd.write("gscrape.bash", &wd.run(&["completions", "bash"]).stdout);
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
    // Sourced in bash, it registers a completion for gscrape.
    let registered = std::process::Command::new("bash")
        .args([
            "-c",
            &format!("source {} && complete -p gscrape", script.display()),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&registered.stdout).contains("gscrape"),
        "{registered:?}"
    );
    let run = wd.run(&["completions", "tcsh"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn the_manual_page_is_roff() {
    let wd = Workdir::new();
    let run = wd.run(&["man"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with(".ie \\n(.g .ds Aq \\(aq"),
        "{}",
        &run.stdout[..80]
    );
    assert!(
        run.stdout.contains(".TH gscrape 1"),
        "{}",
        &run.stdout[..200]
    );
    assert!(
        run.stdout.contains("gscrape\\-run(1)"),
        "its subcommands are named"
    );
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let wd = Workdir::new();
    let run = wd.run(&["--help"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("Exit codes:\n  0    every query succeeded"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("\n  75   another run holds the output directory"));
    for command in ["run", "validate", "describe"] {
        let run = wd.run(&[command, "--help"]);
        assert_eq!(run.code, 0);
        assert!(
            run.stdout.contains("\nExamples:\n  gscrape "),
            "{command}: {}",
            run.stdout
        );
    }
}

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\"]\n[params]\npageSize = 100\n";

#[test]
fn settings_come_from_flag_environment_project_file_user_file_default() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let written = |wd: &Workdir, dir: &str| wd.exists(&format!("{dir}/files.csv"));

    wd.write("config/gscrape.toml", "[run]\nout-dir = \"user-out\"\n");
    assert_eq!(wd.run(&["run"]).code, 0);
    assert!(written(&wd, "user-out"), "the user's file");

    wd.write(
        "gscrape.toml",
        "[run]\nout-dir = \"project-out\"\ndelimiter = \";\"\n",
    );
    assert_eq!(wd.run(&["run"]).code, 0);
    assert!(
        written(&wd, "project-out"),
        "the project's file over the user's"
    );
    assert!(wd
        .read("project-out/files.csv")
        .starts_with("id\r\nf0000\r\n"));

    let output = wd
        .command(&["run"])
        .env("GSCRAPE_OUT_DIR", "env-out")
        .output()
        .unwrap();
    assert_eq!(crate::support::finish(output).code, 0);
    assert!(written(&wd, "env-out"), "the environment over the files");

    let output = wd
        .command(&["run", "--out-dir", "flag-out"])
        .env("GSCRAPE_OUT_DIR", "env-out-2")
        .output()
        .unwrap();
    assert_eq!(crate::support::finish(output).code, 0);
    assert!(written(&wd, "flag-out"), "the flag over everything");
    assert!(!wd.exists("env-out-2"));
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    wd.write("gscrape.toml", "[run]\nout_dir = \"x\"\n");
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: gscrape.toml: [run] unknown key `out_dir`; did you mean `out-dir`?\n"
    );
    wd.write("gscrape.toml", "[run]\nconcurrency = 0\n");
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.starts_with("error: gscrape.toml: [run] "),
        "{}",
        run.stderr
    );
    assert!(wd.google.seen_under("/drive/").is_empty());
}

#[test]
fn new_prints_a_commented_query_that_validates_for_every_method() {
    let wd = Workdir::new();
    let apis = [
        ("drive", "v3"),
        ("gmail", "v1"),
        ("calendar", "v3"),
        ("admin", "directory_v1"),
        ("analyticsdata", "v1beta"),
        ("searchconsole", "v1"),
        ("youtubeAnalytics", "v2"),
        ("bigquery", "v2"),
        ("sheets", "v4"),
        ("customsearch", "v1"),
    ];
    let mut checked = 0;
    for (api, version) in apis {
        let list = wd.run(&["describe", api, version]);
        assert_eq!(list.code, 0, "{list:?}");
        for line in list.stdout.lines() {
            let method = line.split_whitespace().nth(1).unwrap();
            let mut new = wd.run(&["new", api, version, method, "--name", "q"]);
            if new.code == 2 && new.stderr.contains("changes data in the account") {
                new = wd.run(&["new", api, version, method, "--name", "q", "--allow-writes"]);
                assert!(new.stdout.contains("\nallow_writes = true\n"), "{method}");
            }
            assert_eq!(new.code, 0, "{method}: {new:?}");
            wd.write("queries/q.toml", &new.stdout);
            // As printed, only its placeholders are refused; filled in, it validates.
            let valid = wd.run(&["validate", "queries/q.toml"]);
            let placeholders = new
                .stdout
                .lines()
                .filter(|l| !l.starts_with('#') && l.contains("REPLACE_ME"))
                .count();
            let refused = valid
                .stdout
                .lines()
                .filter(|l| l.contains("still \"REPLACE_ME\", the placeholder `gscrape new` wrote"))
                .count();
            assert_eq!(
                valid.code,
                if placeholders > 0 { 2 } else { 0 },
                "{method}: {}",
                valid.stdout
            );
            assert_eq!(
                valid.stdout.lines().count(),
                refused.max(1),
                "{method}: only placeholders are refused: {}",
                valid.stdout
            );
            let filled = new
                .stdout
                .replace(
                    "\"REPLACE_ME\"    # required, integer",
                    "1    # required, integer",
                )
                .replace("\"REPLACE_ME\"", "\"x\"")
                .replace("REPLACE_ME", "x");
            wd.write("queries/q.toml", &filled);
            let valid = wd.run(&["validate", "queries/q.toml"]);
            assert_eq!(valid.code, 0, "{method}:\n{filled}\n{}", valid.stdout);
            checked += 1;
        }
    }
    assert_eq!(checked, 21, "every method of the trimmed fixtures");
}

#[test]
fn new_shows_parameters_placeholders_and_columns() {
    let wd = Workdir::new();
    let run = wd.run(&[
        "new",
        "gmail",
        "v1",
        "gmail.users.messages.get",
        "--name",
        "message",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = &run.stdout;
    assert!(text.contains("\napi = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\nname = \"message\"\n"), "{text}");
    assert!(
        text.contains("\nuserId = \"me\"    # required, string: "),
        "{text}"
    );
    assert!(
        text.contains("\nid = \"REPLACE_ME\"    # required, string: "),
        "{text}"
    );
    assert!(
        text.contains("\n# format = \"minimal\"    # string, one of: minimal, full, raw, metadata"),
        "{text}"
    );
    assert!(
        text.contains("\n# columns = [\"id\", \"historyId\", \"internalDate\""),
        "{text}"
    );
    let run = wd.run(&["new", "gmail", "v1", "gmail.users.messages.gt"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("did you mean gmail.users.messages.get"),
        "{}",
        run.stderr
    );
}
