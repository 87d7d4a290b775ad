//! One JSON truth: the structural scan of plain list exports (cells taken from the page text)
//! against the general path (serde_json reads the page into a `Value`, cells from the
//! records), on generated pages — hostile ones too: nesting to 10,000 levels, repeated keys,
//! escapes and surrogate pairs falling across the scan's 16- and 64-byte steps, big and odd
//! numbers, invalid tokens in fields the columns read and in fields they skip, bodies that are
//! not objects, records that are not an array. The rows (every cell of CSV, TSV, xlsx and
//! typed NDJSON is made from them), the page's other fields and record count, or the error
//! (its kind and serde_json's words, positions in the page) must be the same.

use gscrape::records::{Column, Decoder, FieldPath, Page, PageError, PageReader, Row, Stopped};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

/// What reading a page gives: its rows and outline, or why not.
#[derive(Debug, PartialEq)]
enum Read {
    Rows {
        rows: Vec<Vec<(usize, String)>>,
        count: usize,
        next: Option<serde_json::Value>,
    },
    NotJson(String),
    NotRecords(String),
}

fn read(reader: &PageReader, text: &str, columns: &[Column]) -> Read {
    let page: Page = match reader.read(text) {
        Ok(page) => page,
        Err(PageError::NotJson(e)) => return Read::NotJson(e.to_string()),
        Err(PageError::NotRecords(why)) => return Read::NotRecords(why),
    };
    let count = page.count();
    let next = page.fields().get("nextPageToken").cloned();
    let mut rows = Vec::new();
    let result = reader.rows(text, page, columns, &[], |row: &Row, _| {
        rows.push(row.cells().map(|(i, t)| (i, t.to_owned())).collect());
        Ok::<_, ()>(true)
    });
    match result {
        Ok(()) => Read::Rows { rows, count, next },
        Err(Stopped::Json(e)) => Read::NotJson(e.to_string()),
        Err(Stopped::Row(())) => unreachable!("the row callback does not fail"),
    }
}

/// Reads `text` by the scan and by serde_json and asserts they agree.
fn same_reading(text: &str, paths: &[&str]) -> Result<(), TestCaseError> {
    let columns: Vec<Column> = paths
        .iter()
        .map(|p| Column::from_path(FieldPath::parse(p).unwrap()))
        .collect();
    let decoder = Decoder::Records(Some(FieldPath::parse("files").unwrap()));
    // Keeping the records whole (as a fan-out or a `where` filter does) is the general path.
    let scan = PageReader::new(&decoder, None, &columns, false, false);
    let general = PageReader::new(&decoder, None, &columns, true, false);
    let fast = read(&scan, text, &columns);
    let slow = read(&general, text, &columns);
    prop_assert_eq!(&fast, &slow, "page: {}", shorten(text));
    Ok(())
}

fn shorten(text: &str) -> String {
    if text.len() <= 2000 {
        return text.to_owned();
    }
    let mut cut = 2000;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", &text[..cut], text.len())
}

const PATHS: &[&str] = &[
    "id",
    "name",
    "a",
    "b",
    "a.b",
    "b.a",
    "a.a.a",
    "owners",
    "owners.emailAddress",
    "owners[0].emailAddress",
    "owners[1]",
    "a[0]",
    "a[1].b",
    "é",
    "ab",
    "size",
];

const KEYS: &[&str] = &[
    "\"id\"",
    "\"name\"",
    "\"a\"",
    "\"b\"",
    "\"owners\"",
    "\"emailAddress\"",
    "\"é\"",
    "\"a\\u0062\"", // "ab", escaped
    "\"size\"",
    "\"kind\"",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "7",
    "-12",
    "1.5",
    "1.50",
    "-0.0",
    "1e5",
    "1E5",
    "1.5e-3",
    "2E+10",
    "1e400",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "0.30000000000000004",
];

const STRING_PIECES: &[&str] = &[
    "x",
    "plain text ",
    "\\n",
    "\\\"",
    "\\\\",
    "\\/",
    "\\t",
    "\\u00e9",
    "\\u0000",
    "\\ud83d\\ude00",
    "é",
    "字",
    "😀",
    ",",
    "]}",
    ":",
];

/// Tokens serde_json refuses, each placed where a value goes.
const INVALID: &[&str] = &[
    "tru",
    "nul",
    "NaN",
    "Infinity",
    "01",
    "-",
    "1.",
    ".5",
    "+1",
    "1e",
    "[1}",
    "[1,,2]",
    "[1,]",
    "{\"a\" 1}",
    "{\"a\":1,}",
    "\"\\x41\"",
    "\"a\u{1}b\"",
    "\"tab\there\"",
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud800\\u0041\"",
    "\"\\u12g4\"",
    "\"open",
    "{\"a\":1",
    "[1 2]",
    "truex",
];

fn ws() -> impl Strategy<Value = &'static str> + Clone {
    prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\n  "), 1 => Just("\t\r\n")]
}

fn string() -> impl Strategy<Value = String> + Clone {
    (
        prop::collection::vec(prop::sample::select(STRING_PIECES), 0..6),
        0usize..70,
    )
        .prop_map(|(pieces, pad)| {
            // Padding moves what follows across the 16- and 64-byte steps.
            let mut s = String::from("\"");
            s.push_str(&"p".repeat(pad));
            for piece in pieces {
                s.push_str(piece);
            }
            s.push('"');
            s
        })
}

fn scalar(hostile: bool) -> BoxedStrategy<String> {
    let valid = prop_oneof![
        1 => Just("null".to_owned()),
        1 => Just("true".to_owned()),
        1 => Just("false".to_owned()),
        3 => prop::sample::select(NUMBERS).prop_map(str::to_owned),
        5 => string(),
    ];
    if !hostile {
        return valid.boxed();
    }
    // Now and then a token serde_json refuses, or nesting past its limit.
    prop_oneof![
        60 => valid,
        1 => prop::sample::select(INVALID).prop_map(str::to_owned),
        1 => deep(),
    ]
    .boxed()
}

/// `depth` arrays or objects, one in the other, around a number.
fn deep() -> impl Strategy<Value = String> + Clone {
    (
        prop_oneof![Just(1usize), 120usize..=130, Just(10_000usize)],
        any::<bool>(),
    )
        .prop_map(|(depth, objects)| {
            let (open, close) = if objects {
                ("{\"a\":", "}")
            } else {
                ("[", "]")
            };
            format!("{}1{}", open.repeat(depth), close.repeat(depth))
        })
}

fn value(hostile: bool) -> BoxedStrategy<String> {
    scalar(hostile)
        .prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec((ws(), inner.clone()), 0..5).prop_map(|items| {
                    let items: Vec<String> =
                        items.into_iter().map(|(w, v)| format!("{w}{v}")).collect();
                    format!("[{}]", items.join(","))
                }),
                object(inner),
            ]
        })
        .boxed()
}

fn object(inner: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = String> + Clone {
    prop::collection::vec((prop::sample::select(KEYS), ws(), inner), 0..6).prop_map(|fields| {
        let fields: Vec<String> = fields
            .into_iter()
            .map(|(k, w, v)| format!("{w}{k}{w}:{w}{v}"))
            .collect();
        format!("{{{}}}", fields.join(","))
    })
}

fn records(hostile: bool) -> BoxedStrategy<String> {
    let record = prop_oneof![
        30 => object(value(hostile)),
        // Rarely: a record that is not an object.
        1 => scalar(hostile),
    ];
    let array = prop::collection::vec((ws(), record), 0..5).prop_map(|items| {
        let items: Vec<String> = items.into_iter().map(|(w, r)| format!("{w}{r}")).collect();
        format!("[{}]", items.join(","))
    });
    prop_oneof![
        30 => array,
        1 => Just("null".to_owned()),
        // Not an array of records.
        1 => object(value(hostile)),
        1 => string(),
    ]
    .boxed()
}

fn page(hostile: bool) -> BoxedStrategy<String> {
    let fields = (
        records(hostile),
        prop::option::weighted(0.05, records(hostile)), // the records field a second time
        prop::option::of(string()),                     // nextPageToken
        prop::option::of(value(hostile)),               // another field, skipped
        any::<bool>(),                                  // the other field before the records
        ws(),
    );
    let object_page = fields.prop_map(|(records, again, token, other, before, w)| {
        let mut parts = vec![format!("{w}\"kind\":{w}\"drive#fileList\"")];
        if let (Some(other), true) = (&other, before) {
            parts.push(format!("\"incompleteSearch\":{other}"));
        }
        parts.push(format!("\"files\":{w}{records}"));
        if let Some(token) = token {
            parts.push(format!("\"nextPageToken\":{token}"));
        }
        if let (Some(other), false) = (&other, before) {
            parts.push(format!("\"incompleteSearch\":{other}"));
        }
        if let Some(again) = again {
            parts.push(format!("\"files\":{again}"));
        }
        format!("{{{}}}{w}", parts.join(","))
    });
    if !hostile {
        return object_page.boxed();
    }
    prop_oneof![
        30 => object_page,
        // Bodies that are not objects.
        1 => value(hostile),
        // Something after the page.
        1 => records(hostile).prop_map(|r| format!("{{\"files\":{r}}} x")),
    ]
    .boxed()
}

fn runner(cases: u32, seed: u64) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    })
}

#[test]
fn the_scan_reads_every_page_as_serde_json_does() {
    let columns = prop::sample::subsequence(PATHS, 1..6);
    runner(4000, 19)
        .run(&(page(true), columns), |(text, paths)| {
            same_reading(&text, &paths)
        })
        .unwrap();
}

#[test]
fn records_of_valid_json_are_read_alike_with_every_column() {
    // Pages without invalid tokens, so that the rows (not only the errors) are compared often.
    runner(2000, 20)
        .run(&page(false), |text| same_reading(&text, PATHS))
        .unwrap();
}

#[test]
fn a_million_levels_fail_as_serde_json_fails_on_both_paths() {
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let deep = format!("{}1{}", open.repeat(1_000_000), close.repeat(1_000_000));
        for text in [
            format!("{{\"files\":[{{\"a\":{deep}}}]}}"),
            format!("{{\"files\":[{{\"owners\":{deep}}}]}}"),
            format!("{{\"files\":[{{\"x\":{deep}}}]}}"),
            format!("{{\"files\":[], \"x\":{deep}}}"),
            deep.clone(),
        ] {
            same_reading(&text, &["a", "owners.emailAddress", "a.a"]).unwrap();
            let columns = [Column::from_path(FieldPath::parse("a").unwrap())];
            let decoder = Decoder::Records(Some(FieldPath::parse("files").unwrap()));
            let scan = PageReader::new(&decoder, None, &columns, false, false);
            match read(&scan, &text, &columns) {
                Read::NotJson(e) => assert!(e.starts_with("recursion limit exceeded"), "{e}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
