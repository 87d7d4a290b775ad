//! `where` filters: record values typed by the Discovery schema (int64 strings as integers,
//! date-times as instants), and the fields an expression reads checked before any request.

use crate::support::{csv_line, Workdir};

const DRIVE: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n";

/// A Drive page with big int64 sizes and date-times written with offsets and fractions.
const PAGE: &str = r#"{"kind": "drive#fileList", "files": [
  {"id": "a", "size": "600", "createdTime": "2024-05-01T10:00:00Z", "modifiedTime": "2024-05-01T10:00:00.250Z"},
  {"id": "b", "size": "9000000000", "createdTime": "2024-05-01T12:00:00+02:00", "modifiedTime": "2024-05-01T11:00:00Z"},
  {"id": "c", "size": "12345678901234567890123", "createdTime": "2023-12-31T00:00:00Z", "modifiedTime": "2024-01-01T00:30:00+01:00"},
  {"id": "d", "createdTime": "2024-02-01T00:00:00Z", "modifiedTime": "2024-02-01T00:00:00.000Z"},
  {"id": "e", "size": "5000000000", "createdTime": "2024-03-01T10:00:00.999Z", "modifiedTime": "2024-03-01T10:00:01Z"}
]}"#;

fn ids(ids: &[&str]) -> String {
    let mut csv = csv_line(&["id"]);
    for id in ids {
        csv.push_str(&csv_line(&[id]));
    }
    csv
}

#[test]
fn a_where_filter_compares_int64_strings_as_numbers_and_date_times_as_instants() {
    let wd = Workdir::new();
    wd.google
        .configure(|c| c.drive_raw_page = Some(PAGE.to_owned()));
    wd.write(
        "queries/big.toml",
        &format!("{DRIVE}columns = [\"id\"]\nwhere = \"size > 5000000000\"\n"),
    );
    wd.write(
        "queries/later.toml",
        &format!(
            "{DRIVE}columns = [\"id\"]\n\
             where = \"modifiedTime > '2024-01-01' and modifiedTime > createdTime\"\n"
        ),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.read("output/big.csv"),
        ids(&["b", "c"]),
        "sizes compared as integers, a 23-digit one exactly"
    );
    assert_eq!(
        wd.read("output/later.csv"),
        ids(&["a", "b", "e"]),
        "instants compared whatever their offsets and fractional digits"
    );
}

#[test]
fn a_where_filter_refuses_an_integer_it_cannot_compare_exactly() {
    let wd = Workdir::new();
    let page = r#"{"files": [{"id": "a", "size": "7"},
                              {"id": "b", "size": "1234567890123456789012345678901234567890"}]}"#;
    wd.google
        .configure(|c| c.drive_raw_page = Some(page.to_owned()));
    wd.write(
        "queries/big.toml",
        &format!("{DRIVE}columns = [\"id\"]\nwhere = \"size > 5\"\n"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.starts_with(
            "error: big: `where = \"size > 5\"`: `size` is 1234567890123456789012345678901234567890, \
             an integer longer than 128 bits, which a `where` cannot compare exactly"
        ),
        "{}",
        run.stderr
    );
    assert!(!wd.exists("output/big.csv"));
}

#[test]
fn a_where_reading_a_field_the_record_lacks_is_refused_before_any_request() {
    let wd = Workdir::new();
    wd.write(
        "queries/big.toml",
        &format!("{DRIVE}columns = [\"id\"]\nwhere = \"sise > 5000000000\"\n"),
    );
    let said =
        "queries/big.toml:5: where: `sise`: the record has no field `sise`; did you mean `size`?";
    let validate = wd.run(&["validate"]);
    assert_eq!(validate.code, 2, "{validate:?}");
    assert_eq!(validate.stdout, format!("error  {said}\n"));
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(said), "{}", run.stderr);
    assert!(wd.google.seen_under("/drive/").is_empty(), "no request");

    // A nested field is checked too.
    wd.write(
        "queries/big.toml",
        &format!("{DRIVE}columns = [\"id\"]\nwhere = \"lastModifyingUser.emailAdress == 'x' or capabilities.canEdit\"\n"),
    );
    let validate = wd.run(&["validate"]);
    assert_eq!(validate.code, 2, "{validate:?}");
    assert_eq!(
        validate.stdout,
        "error  queries/big.toml:5: where: `lastModifyingUser.emailAdress`: `lastModifyingUser` has no field `emailAdress`; did you mean `emailAddress`?\n"
    );
}

#[test]
fn a_where_over_a_report_without_a_record_schema_is_not_refused() {
    let wd = Workdir::new();
    wd.write(
        "queries/ga4.toml",
        "api = \"analyticsdata\"\nversion = \"v1beta\"\nmethod = \"analyticsdata.properties.runReport\"\n\
         where = \"country != 'FR'\"\n\
         [params]\nproperty = \"properties/1\"\n\
         [body]\ndateRanges = [{ startDate = \"2024-01-01\", endDate = \"2024-01-31\" }]\n\
         dimensions = [{ name = \"country\" }]\nmetrics = [{ name = \"sessions\" }]\n",
    );
    let validate = wd.run(&["validate"]);
    assert_eq!(validate.code, 0, "{validate:?}");
}
