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
