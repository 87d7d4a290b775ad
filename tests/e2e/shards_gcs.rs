//! Shards whose parts are Cloud Storage objects, and `gscrape compose gs://…`: Cloud Storage's
//! server-side compose (32 sources at a time), one header, the output replaced only at the
//! generation it had — against the strict double (`support/fake_gcs.rs`).

use crate::shards::{rows, DETAILS, FILES, HEADER, MESSAGES};
use crate::support::fake_gcs::{FakeGcs, Faults};
use crate::support::{Config, Run, Workdir, TOKEN};

fn run_gcs(wd: &Workdir, gcs: &FakeGcs, args: &[&str]) -> Run {
    let output = wd
        .command(args)
        .env("STORAGE_EMULATOR_HOST", &gcs.url)
        .env("GSCRAPE_UPLOAD_CHUNK_KIB", "256")
        .output()
        .unwrap();
    crate::support::finish(output)
}

/// The shards' queries, the fan-out's output named `details_output`.
fn workdir(messages: usize, details_output: &str) -> Workdir {
    let wd = Workdir::with_config(Config {
        gmail_messages: messages,
        ..Config::default()
    });
    wd.write("queries/messages.toml", MESSAGES);
    wd.write(
        "queries/message_details.toml",
        &DETAILS.replace(
            "[params]",
            &format!("output = \"{details_output}\"\n[params]"),
        ),
    );
    wd.write("queries/files.toml", FILES);
    wd
}

fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn crc32c(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(crc32c::crc32c(bytes).to_be_bytes())
}

/// What the local compose makes of `parts` (file name, bytes), and the line it prints.
fn local_compose(output: &str, parts: &[(String, Vec<u8>)], extra: &[&str]) -> (Vec<u8>, String) {
    let wd = Workdir::new();
    for (name, data) in parts {
        std::fs::write(wd.path().join("output").join(name), data).unwrap();
    }
    let target = format!("output/{output}");
    let mut args = vec!["compose", target.as_str()];
    args.extend_from_slice(extra);
    let run = wd.run(&args);
    assert_eq!(run.code, 0, "{run:?}");
    (std::fs::read(wd.path().join(&target)).unwrap(), run.stdout)
}

const OUTPUT: &str = "gs://reports/shards/message_details.csv";
const PART_0: &str = "shards/message_details-part-00000-of-00003.csv";

#[test]
fn three_shards_write_parts_as_objects_that_compose_server_side_with_one_header() {
    let gcs = FakeGcs::start(TOKEN);
    let old = gcs.put(
        "reports",
        "shards/message_details.csv",
        b"the previous output\r\n",
    );
    let wd = workdir(40, OUTPUT);
    for index in [1, 2] {
        let run = run_gcs(&wd, &gcs, &["run", "--shard", &format!("{index}/3")]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    let part = |i: u32| format!("shards/message_details-part-{i:05}-of-00003.csv");
    assert!(
        gcs.object("reports", &part(1)).is_some(),
        "{:?}",
        gcs.names("reports")
    );
    assert!(gcs.object("reports", &part(2)).is_some());

    // Not ready: shard 0's part is missing; the old object is left as it was.
    // (Each shard's upload is itself composed from its checkpointed pieces.)
    let composed_by_runs = gcs.composes().len();
    let compose = run_gcs(&wd, &gcs, &["compose", OUTPUT]);
    assert_eq!(compose.code, 75, "{compose:?}");
    assert_eq!(
        compose.stderr,
        format!("error: {OUTPUT}: 1 of 3 parts missing: 0 (gs://reports/{PART_0}); the task of each has not finished (or failed): run it, then compose again ({OUTPUT} left as it was)\n")
    );
    let kept = gcs.object("reports", "shards/message_details.csv").unwrap();
    assert_eq!(
        (kept.data.as_slice(), kept.generation),
        (&b"the previous output\r\n"[..], old)
    );
    assert_eq!(gcs.composes().len(), composed_by_runs, "nothing composed");

    let run = run_gcs(&wd, &gcs, &["run", "--shard", "0/3"]);
    assert_eq!(run.code, 0, "{run:?}");
    let composed_by_runs = gcs.composes().len();
    // Each part alone is a whole CSV, its header included; together, every record once.
    let parts: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| {
            let name = part(i);
            let data = gcs.object("reports", &name).unwrap().data;
            (name.rsplit('/').next().unwrap().to_owned(), data)
        })
        .collect();
    let total: usize = parts
        .iter()
        .map(|(_, d)| rows(std::str::from_utf8(d).unwrap()).len())
        .sum();
    assert_eq!(total, 40);

    let before = gcs.requests().len();
    let compose = run_gcs(&wd, &gcs, &["compose", OUTPUT]);
    assert_eq!(compose.code, 0, "{compose:?}");
    let (expected, local_line) = local_compose("message_details.csv", &parts, &[]);
    assert!(expected.starts_with(HEADER.as_bytes()));
    assert_eq!(
        std::str::from_utf8(&expected)
            .unwrap()
            .matches(HEADER)
            .count(),
        1,
        "one header"
    );
    let object = gcs.object("reports", "shards/message_details.csv").unwrap();
    assert_eq!(object.data, expected, "byte for byte the local compose");
    assert!(object.composite, "Cloud Storage composed it");
    // The same line as the local compose, and Cloud Storage's proof of the object.
    assert_eq!(
        compose.stdout,
        format!(
            "{}, generation {}, crc32c {}\n",
            local_line
                .trim_end()
                .replace("output/message_details.csv", OUTPUT),
            object.generation,
            crc32c(&expected)
        )
    );
    assert!(compose.stdout.contains(&format!(
        "from 3 parts: 40 rows, {} bytes, sha256 {}",
        expected.len(),
        sha256(&expected)
    )));

    // What the double saw: one compose into the output, at the generation it replaced; part 0
    // as it is, the others rewritten without their header into scratch objects.
    let composes = gcs.composes()[composed_by_runs..].to_vec();
    assert_eq!(composes.len(), 1, "{composes:?}");
    let last = &composes[0];
    assert_eq!(last.destination, "shards/message_details.csv");
    assert_eq!(last.precondition, Some(old));
    assert_eq!(last.sources.len(), 3);
    assert_eq!(last.sources[0], PART_0);
    for scratch in &last.sources[1..] {
        assert!(
            scratch.starts_with("shards/.message_details.csv.") && scratch.contains(".tmp.part-"),
            "{scratch}"
        );
    }
    // The parts were read a range at a time; every write named a precondition.
    let requests = &gcs.requests()[before..];
    for read in requests.iter().filter(|r| r.target.contains("alt=media")) {
        assert!(read.header("range").is_some(), "{}", read.target);
    }
    for upload in requests
        .iter()
        .filter(|r| r.method == "POST" && r.path().starts_with("/upload/"))
    {
        assert!(
            upload.target.contains("ifGenerationMatch="),
            "{}",
            upload.target
        );
    }
    // No scratch object is left; the parts are kept unless asked otherwise.
    let mut names = gcs.names("reports");
    names.retain(|n| !n.contains("/.gscrape") && n.starts_with("shards/"));
    assert_eq!(
        names,
        [
            "shards/message_details-part-00000-of-00003.csv",
            "shards/message_details-part-00001-of-00003.csv",
            "shards/message_details-part-00002-of-00003.csv",
            "shards/message_details.csv",
        ]
    );

    let compose = run_gcs(&wd, &gcs, &["compose", OUTPUT, "--remove-parts"]);
    assert_eq!(compose.code, 0, "{compose:?}");
    assert!(
        compose.stdout.ends_with("; the parts removed\n"),
        "{}",
        compose.stdout
    );
    assert_eq!(gcs.names("reports"), ["shards/message_details.csv"]);
    let again = gcs.object("reports", "shards/message_details.csv").unwrap();
    assert_eq!(again.data, expected);
    assert_eq!(
        gcs.composes().last().unwrap().precondition,
        Some(object.generation),
        "the second compose replaced the first's generation"
    );
}

#[test]
fn ndjson_parts_in_an_out_dir_bucket_compose_as_they_are() {
    let gcs = FakeGcs::start(TOKEN);
    let wd = workdir(12, "message_details.ndjson");
    for index in 0..2 {
        let run = run_gcs(
            &wd,
            &gcs,
            &[
                "run",
                "--shard",
                &format!("{index}/2"),
                "--out-dir",
                "gs://reports/exports/",
            ],
        );
        assert_eq!(run.code, 0, "{run:?}");
    }
    let parts: Vec<(String, Vec<u8>)> = (0..2)
        .map(|i| {
            let name = format!("message_details-part-{i:05}-of-00002.ndjson");
            let data = gcs
                .object("reports", &format!("exports/{name}"))
                .unwrap_or_else(|| panic!("{name}: {:?}", gcs.names("reports")))
                .data;
            (name, data)
        })
        .collect();
    let uploads_before = gcs
        .requests()
        .iter()
        .filter(|r| r.path().starts_with("/upload/"))
        .count();
    let compose = run_gcs(
        &wd,
        &gcs,
        &["compose", "gs://reports/exports/message_details.ndjson"],
    );
    assert_eq!(compose.code, 0, "{compose:?}");
    let (expected, _) = local_compose("message_details.ndjson", &parts, &[]);
    assert_eq!(expected, [parts[0].1.clone(), parts[1].1.clone()].concat());
    let object = gcs
        .object("reports", "exports/message_details.ndjson")
        .unwrap();
    assert_eq!(object.data, expected);
    assert!(
        compose.stdout.contains("from 2 parts: 12 rows"),
        "{}",
        compose.stdout
    );
    // Nothing went up again: the parts themselves are the sources.
    let uploads = gcs
        .requests()
        .iter()
        .filter(|r| r.path().starts_with("/upload/"))
        .count();
    assert_eq!(uploads, uploads_before);
    let composes = gcs.composes();
    assert_eq!(
        composes.last().unwrap().sources,
        [
            "exports/message_details-part-00000-of-00002.ndjson",
            "exports/message_details-part-00001-of-00002.ndjson"
        ]
    );
    assert_eq!(
        composes.last().unwrap().precondition,
        Some(0),
        "it was absent"
    );
}

#[test]
fn forty_parts_compose_as_a_tree_of_at_most_32_sources() {
    let gcs = FakeGcs::start(TOKEN);
    let wd = Workdir::new();
    let put = |i: u32| {
        gcs.put(
            "reports",
            &format!("many/f-part-{i:05}-of-00040.csv"),
            format!("id,n\r\n{i},\"x\r\n{i}\"\r\n").as_bytes(),
        )
    };
    for i in (0..40).filter(|i| *i != 17) {
        put(i);
    }
    // One part missing: refused, naming it.
    let run = run_gcs(
        &wd,
        &gcs,
        &["compose", "gs://reports/many/f.csv", "--count", "40"],
    );
    assert_eq!(run.code, 75, "{run:?}");
    assert!(
        run.stderr
            .contains("1 of 40 parts missing: 17 (gs://reports/many/f-part-00017-of-00040.csv)"),
        "{}",
        run.stderr
    );
    assert!(gcs.object("reports", "many/f.csv").is_none());
    put(17);

    let run = run_gcs(
        &wd,
        &gcs,
        &["compose", "gs://reports/many/f.csv", "--count", "40"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let expected: String = std::iter::once("id,n\r\n".to_owned())
        .chain((0..40).map(|i| format!("{i},\"x\r\n{i}\"\r\n")))
        .collect();
    let object = gcs.object("reports", "many/f.csv").unwrap();
    assert_eq!(String::from_utf8(object.data).unwrap(), expected);
    assert!(
        run.stdout.starts_with(&format!(
            "composed gs://reports/many/f.csv from 40 parts: 40 rows, {} bytes, sha256 {}",
            expected.len(),
            sha256(expected.as_bytes())
        )),
        "{}",
        run.stdout
    );
    let composes = gcs.composes();
    assert!(composes.len() >= 3, "a tree: {composes:?}");
    assert!(
        composes
            .iter()
            .all(|c| c.sources.len() <= 32 && c.status == 200),
        "{composes:?}"
    );
    let (last, scratch) = composes.split_last().unwrap();
    assert_eq!(last.destination, "many/f.csv");
    assert_eq!(last.precondition, Some(0));
    assert!(
        scratch.iter().all(|c| c.precondition == Some(0)),
        "{scratch:?}"
    );
    // The scratch objects (rewritten parts, the tree's levels) are gone.
    let names = gcs.names("reports");
    assert_eq!(names.len(), 41, "{names:?}");
    assert!(names.iter().all(|n| !n.contains("/.f.csv.")), "{names:?}");
}

#[test]
fn another_writer_between_listing_and_compose_is_a_412_and_their_object_stays() {
    let gcs = FakeGcs::start(TOKEN);
    let wd = Workdir::new();
    gcs.put("reports", "f.csv", b"old\r\n");
    gcs.put("reports", "f-part-00000-of-00002.csv", b"id\r\n1\r\n");
    gcs.put("reports", "f-part-00001-of-00002.csv", b"id\r\n2\r\n");
    gcs.set_faults(Faults {
        write_before_compose: Some(("reports".to_owned(), "f.csv".to_owned())),
        ..Faults::default()
    });
    let run = run_gcs(
        &wd,
        &gcs,
        &["compose", "gs://reports/f.csv", "--remove-parts"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr, "error: gs://reports/f.csv (or one of its parts) was written by another writer while its parts were composed (HTTP 412, ifGenerationMatch): not replaced; compose again once that writer is done\n");
    assert_eq!(
        gcs.object("reports", "f.csv").unwrap().data,
        b"another writer's\r\n"
    );
    let composes = gcs.composes();
    assert_eq!(composes.len(), 1);
    assert_eq!(composes[0].status, 412);
    assert!(composes[0].precondition.is_some_and(|g| g > 0));
    // The parts stay (the compose failed), the scratch object went.
    assert_eq!(
        gcs.names("reports"),
        [
            "f-part-00000-of-00002.csv",
            "f-part-00001-of-00002.csv",
            "f.csv"
        ]
    );

    // Parts of other queries: refused before anything is written.
    gcs.put(
        "reports",
        "f-part-00001-of-00002.csv",
        b"id,size\r\n2,3\r\n",
    );
    let before = gcs.object("reports", "f.csv").unwrap();
    let run = run_gcs(&wd, &gcs, &["compose", "gs://reports/f.csv"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr, "error: gs://reports/f-part-00001-of-00002.csv: its header is not the one of gs://reports/f-part-00000-of-00002.csv: \"id,size\" against \"id\"; the shards ran other queries: run them again alike (gs://reports/f.csv left as it was)\n");
    assert_eq!(
        gcs.object("reports", "f.csv").unwrap().generation,
        before.generation
    );
    assert_eq!(gcs.names("reports").len(), 3, "{:?}", gcs.names("reports"));
}

#[test]
fn gzip_csv_parts_compose_as_gzip_members_with_one_header() {
    use std::io::{Read, Write};
    let gz = |text: &str| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let gcs = FakeGcs::start(TOKEN);
    let wd = Workdir::new();
    gcs.put(
        "reports",
        "g-part-00000-of-00003.csv.gz",
        &gz("id\r\n1\r\n"),
    );
    gcs.put("reports", "g-part-00001-of-00003.csv.gz", &gz("id\r\n"));
    gcs.put(
        "reports",
        "g-part-00002-of-00003.csv.gz",
        &gz("id\r\n2\r\n3\r\n"),
    );
    let run = run_gcs(&wd, &gcs, &["compose", "gs://reports/g.csv.gz"]);
    assert_eq!(run.code, 0, "{run:?}");
    let object = gcs.object("reports", "g.csv.gz").unwrap();
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(object.data.as_slice())
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "id\r\n1\r\n2\r\n3\r\n");
    assert!(
        run.stdout.contains(&format!(
            "from 3 parts: 3 rows, {} bytes, sha256 {}",
            object.data.len(),
            sha256(&object.data)
        )),
        "{}",
        run.stdout
    );
    // The header-only part adds no source.
    assert_eq!(gcs.composes().last().unwrap().sources.len(), 2);
}

/// Parts as objects record their run beside them (`.NAME.run` objects): a stale part is exit 2
/// naming it; a retried `compose --remove-parts` of the run that composed is exit 0.
#[test]
fn compose_in_a_bucket_refuses_a_stale_part_and_a_retried_compose_is_a_no_op() {
    let gcs = FakeGcs::start(TOKEN);
    let wd = workdir(30, OUTPUT);
    let run = |index: u32, execution: &str| {
        let mut command = wd.command(&["run", "--shard", &format!("{index}/3")]);
        command
            .env("STORAGE_EMULATOR_HOST", &gcs.url)
            .env("GSCRAPE_UPLOAD_CHUNK_KIB", "256")
            .env("CLOUD_RUN_EXECUTION", execution);
        let run = crate::support::finish(command.output().unwrap());
        assert_eq!(run.code, 0, "{run:?}");
    };
    run(1, "daily-yesterday");
    run(0, "daily-today");
    run(2, "daily-today");
    assert_eq!(
        gcs.object(
            "reports",
            "shards/.message_details-part-00001-of-00003.csv.run"
        )
        .unwrap()
        .data,
        b"daily-yesterday\n"
    );
    let stale = run_gcs(&wd, &gcs, &["compose", OUTPUT]);
    assert_eq!(stale.code, 2, "{stale:?}");
    assert_eq!(
        stale.stderr,
        format!("error: gs://reports/shards/message_details-part-00001-of-00003.csv: written by run daily-yesterday, but the parts are of run daily-today: a stale part of another run; run its task again in run daily-today ({OUTPUT} left as it was)\n")
    );
    assert!(gcs
        .object("reports", "shards/message_details.csv")
        .is_none());

    run(1, "daily-today");
    let compose = |wd: &Workdir| {
        let output = wd
            .command(&[
                "compose",
                OUTPUT,
                "--remove-parts",
                "--run-id",
                "daily-today",
            ])
            .env("STORAGE_EMULATOR_HOST", &gcs.url)
            .output()
            .unwrap();
        crate::support::finish(output)
    };
    let first = compose(&wd);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(
        gcs.object("reports", "shards/.message_details.csv.run")
            .unwrap()
            .data,
        b"daily-today\n"
    );
    let left: Vec<String> = gcs
        .names("reports")
        .into_iter()
        .filter(|n| n.contains("-part-"))
        .collect();
    assert!(left.is_empty(), "parts and their records removed: {left:?}");
    let retried = compose(&wd);
    assert_eq!(retried.code, 0, "{retried:?}");
    assert_eq!(
        retried.stdout,
        format!(
            "already composed {OUTPUT} from the parts of run daily-today; its parts were removed\n"
        )
    );
}
