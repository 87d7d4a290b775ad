//! The example queries shipped in `queries/` validate and run against the fake Google.

use crate::support::Workdir;

fn copy_examples(wd: &Workdir) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            wd.write(
                &format!("queries/{name}"),
                &std::fs::read_to_string(&path).unwrap(),
            );
            names.push(name);
        }
    }
    names.sort();
    names
}

#[test]
fn shipped_examples_validate() {
    let wd = Workdir::new();
    let names = copy_examples(&wd);
    assert!(names.len() >= 4, "{names:?}");
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), names.len());
    assert!(
        run.stdout.lines().all(|l| l.starts_with("ok ")),
        "{}",
        run.stdout
    );
}

#[test]
fn shipped_examples_run() {
    let wd = Workdir::new();
    copy_examples(&wd);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.list("output"),
        [
            "calendar_events.csv",
            "drive_files.csv",
            "gmail_messages.csv",
            "workspace_users.csv"
        ]
    );
    assert!(wd
        .read("output/workspace_users.csv")
        .starts_with("id,primaryEmail,name.fullName,isAdmin,suspended,orgUnitPath,lastLoginTime\r\n100,user0@example.com,Given0 Family0,true,false,/,\r\n"));
}
