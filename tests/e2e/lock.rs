//! `gscrape.lock`: the Discovery documents of a project pinned as a lockfile pins packages.

use crate::support::fake_google::Revision;
use crate::support::Workdir;

/// A Drive export with the default columns: its header follows the Discovery document.
const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
                     [params]\npageSize = 100\n";
const MESSAGES: &str =
    "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
                        [params]\nuserId = \"me\"\n";

/// Google adds a field to Drive's `File`, as it does.
const REVISED: Revision = Revision {
    revision: "20261201",
    schema: "File",
    field: "aNewField",
    field_type: "string",
};

fn header(wd: &Workdir) -> String {
    wd.read("output/files.csv")
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn a_locked_project_keeps_its_header_when_google_adds_a_field_and_says_what_changed() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let run = wd.run(&["lock"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .starts_with("drive v3: pinned at revision 20261106 (sha256 "),
        "{}",
        run.stderr
    );
    let lock = wd.read("gscrape.lock");
    assert!(
        lock.contains("name = \"drive\"\nversion = \"v3\"\nrevision = \"20261106\"\n"),
        "{lock}"
    );
    assert_eq!(wd.list("discovery-lock").len(), 1);
    assert_eq!(wd.run(&["run"]).code, 0);
    let pinned = header(&wd);

    wd.google.revise_discovery("drive.v3", REVISED);
    let run = wd.run(&["run", "--refresh-discovery"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(header(&wd), pinned, "the header of the pinned document");
    assert!(
        run.stderr.contains(
            "note: files: drive v3 is pinned at revision 20261106 by gscrape.lock; Google's is \
             now 20261201: columns added: aNewField (`gscrape lock --update` moves the pin)\n"
        ),
        "{}",
        run.stderr
    );

    // Moving the pin takes the new field.
    let run = wd.run(&["lock", "--update"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .starts_with("drive v3: moved to revision 20261201 "),
        "{}",
        run.stderr
    );
    assert_eq!(
        wd.list("discovery-lock").len(),
        1,
        "the old document is removed"
    );
    assert_eq!(wd.run(&["run"]).code, 0);
    assert!(
        header(&wd).split(',').any(|c| c == "aNewField"),
        "{}",
        header(&wd)
    );
}

#[test]
fn run_locked_without_a_lock_or_without_a_pin_for_a_query_is_exit_2() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let run = wd.run(&["run", "--locked"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: --locked: there is no gscrape.lock here: run `gscrape lock` to pin the \
         Discovery documents of the queries\n"
    );
    assert_eq!(wd.run(&["lock"]).code, 0);
    wd.write("queries/messages.toml", MESSAGES);
    let run = wd.run(&["validate", "--locked"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(
            "error  queries/messages.toml: api: --locked: gscrape.lock does not pin gmail v1: \
             run `gscrape lock` to add it\n"
        ),
        "{}",
        run.stdout
    );
    assert!(!wd.exists("output/files.csv"));
    // Without --locked, an API the lock does not pin is read as always.
    assert_eq!(wd.run(&["validate"]).code, 0);
}

#[test]
fn a_pinned_document_changed_by_hand_is_refused() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    assert_eq!(wd.run(&["lock"]).code, 0);
    let name = wd.list("discovery-lock").remove(0);
    let path = format!("discovery-lock/{name}");
    wd.write(&path, &wd.read(&path).replacen("20261106", "20261107", 1));
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(
            "the document was changed; restore it (git checkout) or run `gscrape lock --update`"
        ),
        "{}",
        run.stdout
    );
}
