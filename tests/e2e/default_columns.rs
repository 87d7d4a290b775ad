//! Readable default columns (Drive's real Discovery document): identity first, then the
//! record's own fields, then nested ones; objects of only flags or links left out unless a
//! `prefix.*` column asks for them; `describe`, `new` and `run` show the same list.

use crate::support::Workdir;

/// The default columns `describe` lists for `drive.files.list`, and what it says it leaves out.
fn described(wd: &Workdir) -> (Vec<String>, String) {
    let run = wd.run(&["describe", "drive", "v3", "drive.files.list"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("Default columns ("))
        .unwrap_or_else(|| panic!("no default columns in:\n{}", run.stdout));
    let count: usize = lines[start]
        .trim_start_matches("Default columns (")
        .trim_end_matches("):")
        .parse()
        .unwrap();
    let columns: Vec<String> = lines[start + 1..start + 1 + count]
        .iter()
        .map(|l| l.trim().to_owned())
        .collect();
    let left_out = lines
        .iter()
        .find(|l| l.starts_with("Left out of the defaults"))
        .map(|l| l.to_string())
        .unwrap_or_default();
    (columns, left_out)
}

#[test]
fn drive_default_columns_start_with_identity_and_leave_out_flags_and_links() {
    let wd = Workdir::new();
    wd.google.configure(|c| c.drive_files = 3);
    let (columns, left_out) = described(&wd);
    assert_eq!(columns[..2], ["id", "name"], "{columns:?}");
    assert!(
        !columns.iter().any(|c| c.starts_with("capabilities.")),
        "{columns:?}"
    );
    assert!(!columns.iter().any(|c| c.starts_with("exportLinks")));
    assert!(left_out.contains("capabilities.*"), "{left_out}");
    assert!(left_out.contains("exportLinks.*"), "{left_out}");
    // The record's own scalars before any nested field.
    let first_nested = columns.iter().position(|c| c.contains('.')).unwrap();
    assert!(columns[..first_nested].contains(&"mimeType".to_owned()));
    assert!(columns[..first_nested].contains(&"createdTime".to_owned()));
    assert!(columns[first_nested..]
        .iter()
        .all(|c| c.contains('.') || !columns[..first_nested].contains(c)));

    // The same list, run after run, in `run`'s header...
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/files.csv");
    let header = csv.lines().next().unwrap();
    assert_eq!(header, columns.join(","));
    assert!(header.starts_with("id,name,"), "{header}");
    let (again, _) = described(&wd);
    assert_eq!(again, columns, "stable from run to run");

    // ... and in `new`'s suggestion.
    let new = wd.run(&[
        "new",
        "drive",
        "v3",
        "drive.files.list",
        "--name",
        "suggested",
    ]);
    assert_eq!(new.code, 0, "{new:?}");
    let scaffold = new.stdout;
    let suggested = scaffold
        .lines()
        .find_map(|l| l.strip_prefix("# columns = ["))
        .unwrap_or_else(|| panic!("no suggested columns in:\n{scaffold}"))
        .trim_end_matches(']');
    let suggested: Vec<String> = suggested
        .split(", ")
        .map(|c| c.trim_matches('"').to_owned())
        .collect();
    assert_eq!(suggested[..], columns[..suggested.len()], "{scaffold}");
    assert!(scaffold.contains(&format!("these are the columns ({})", columns.len())));
    assert!(scaffold.contains("capabilities.*"), "{scaffold}");
}

#[test]
fn a_prefix_star_column_asks_for_an_objects_fields() {
    let wd = Workdir::new();
    wd.google.configure(|c| c.drive_files = 3);
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\", \"capabilities.*\"]\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/files.csv");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header[0], "id");
    assert!(header.len() > 20, "{header:?}");
    assert!(
        header[1..].iter().all(|c| c.starts_with("capabilities.")),
        "{header:?}"
    );
    assert!(header.contains(&"capabilities.canEdit"));
    let mut sorted = header[1..].to_vec();
    sorted.sort();
    assert_eq!(sorted, header[1..], "in schema order");
}

#[test]
fn a_wrong_prefix_star_column_is_refused_with_a_hint() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\", \"capabilites.*\"]\n",
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains(
            "`capabilites.*`: the record has no field `capabilites`; did you mean `capabilities`?"
        ),
        "{run:?}"
    );
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("files.toml:4"),
        "{}",
        run.stderr
    );

    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\", \"name.*\"]\n",
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        format!("{}{}", run.stdout, run.stderr)
            .contains("`name.*`: `name` is a single value, not an object; list it as `name`"),
        "{run:?}"
    );
}
