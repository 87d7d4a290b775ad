//! Outputs in Cloud Storage (`gs://`), against the strict double (`support/fake_gcs.rs`: the
//! preconditions, chunk rules and faults emulators do not have); `emulator.rs` runs against
//! fake-gcs-server, a real emulator (`support/emulator.rs`).

use serde_json::Value;

use crate::support::fake_gcs::{FakeGcs, Faults};
use crate::support::{Config, Run, Workdir, TOKEN};

pub(crate) const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n";

pub(crate) fn workdir(files: usize) -> Workdir {
    Workdir::with_config(Config {
        drive_files: files,
        ..Config::default()
    })
}

/// Runs the binary against `gcs`, uploading in chunks of 256 KiB (the protocol's smallest).
fn run_with(wd: &Workdir, gcs: &FakeGcs, args: &[&str]) -> Run {
    run_chunked(wd, gcs, args, 256)
}

fn run_chunked(wd: &Workdir, gcs: &FakeGcs, args: &[&str], chunk_kib: usize) -> Run {
    let output = wd
        .command(args)
        .env("STORAGE_EMULATOR_HOST", &gcs.url)
        .env("GSCRAPE_UPLOAD_CHUNK_KIB", chunk_kib.to_string())
        .output()
        .unwrap();
    crate::support::finish(output)
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The local export of the same query: what the object must hold, byte for byte.
pub(crate) fn local_export(files: usize, query: &str) -> Vec<u8> {
    let wd = workdir(files);
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"files.csv\"\n{query}"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    std::fs::read(wd.path().join("output/files.csv")).unwrap()
}

pub(crate) const WIDE: &str = "columns = [\"id\", \"name\", \"mimeType\", \"size\", \"modifiedTime\", \"owners.emailAddress\"]\n[params]\npageSize = 100\n";

#[test]
fn an_export_replaces_its_object_whole_with_its_generation_as_precondition_and_the_summary_proves_it(
) {
    let gcs = FakeGcs::start(TOKEN);
    let old = gcs.put("reports", "daily/files.csv", b"old,contents\r\n");
    let wd = workdir(10000);
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"gs://reports/daily/files.csv\"\n{WIDE}"),
    );
    let run = run_with(&wd, &gcs, &["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");

    let expected = local_export(10000, WIDE);
    assert!(
        expected.len() > 2 * 256 * 1024,
        "several chunks: {}",
        expected.len()
    );
    let object = gcs.object("reports", "daily/files.csv").unwrap();
    assert_eq!(
        object.data, expected,
        "the object holds what the file would"
    );
    assert!(object.generation > old);
    // Nothing else is left: the parts are gone, no session is open.
    assert_eq!(gcs.names("reports"), ["daily/files.csv"]);

    // The replace named the generation it replaced; every write named a precondition.
    let requests = gcs.requests();
    let compose = requests
        .iter()
        .find(|r| r.path().ends_with("/compose"))
        .expect("the parts are composed");
    assert!(
        compose.target.contains(&format!("ifGenerationMatch={old}")),
        "{}",
        compose.target
    );
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

    let summary: Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    let query = &summary["queries"][0];
    assert_eq!(query["output"], "gs://reports/daily/files.csv");
    assert_eq!(query["sha256"], sha256(&expected));
    assert_eq!(query["bytes"], expected.len() as u64);
    let proof = &query["object"];
    assert_eq!(proof["bucket"], "reports");
    assert_eq!(proof["name"], "daily/files.csv");
    assert_eq!(proof["generation"], object.generation.to_string());
    assert_eq!(proof["size"], expected.len() as u64);
    use base64::Engine;
    let crc =
        base64::engine::general_purpose::STANDARD.encode(crc32c::crc32c(&expected).to_be_bytes());
    assert_eq!(proof["crc32c"], crc);
}

#[test]
fn another_writer_in_between_is_a_412_and_their_object_stays() {
    let gcs = FakeGcs::start(TOKEN);
    gcs.put("reports", "files.csv", b"first\r\n");
    let wd = Workdir::with_config(Config {
        drive_files: 400,
        latency: std::time::Duration::from_millis(300),
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        &format!("{FILES}columns = [\"id\"]\noutput = \"gs://reports/files.csv\"\n[params]\npageSize = 100\n"),
    );
    let child = wd
        .command(&["run"])
        .env("STORAGE_EMULATOR_HOST", &gcs.url)
        .env("GSCRAPE_UPLOAD_CHUNK_KIB", "256")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While the export runs, someone else replaces the object.
    std::thread::sleep(std::time::Duration::from_millis(500));
    gcs.put("reports", "files.csv", b"theirs\r\n");
    let run = crate::support::finish(child.wait_with_output().unwrap());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("gs://reports/files.csv was changed by another writer"),
        "{}",
        run.stderr
    );
    assert_eq!(
        gcs.object("reports", "files.csv").unwrap().data,
        b"theirs\r\n"
    );
    assert_eq!(
        gcs.names("reports"),
        ["files.csv"],
        "no part is left behind"
    );
}

#[test]
fn a_503_mid_chunk_is_taken_up_where_the_session_stands() {
    let gcs = FakeGcs::start(TOKEN);
    // The second chunk (of 512 KiB) keeps 256 KiB of its bytes, then fails: Cloud Storage
    // keeps whole 256 KiB units.
    gcs.set_faults(Faults {
        chunk_503: Some((2, 256 * 1024)),
        first_429: true,
        ..Faults::default()
    });
    let wd = workdir(40000);
    let query = "columns = [\"id\", \"name\", \"mimeType\"]\n[params]\npageSize = 1000\n";
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"gs://reports/files.csv\"\n{query}"),
    );
    let run = run_chunked(&wd, &gcs, &["run"], 512);
    assert_eq!(run.code, 0, "{run:?}");
    let expected = local_export(40000, query);
    assert!(
        expected.len() > 2 * 512 * 1024,
        "more than two chunks: {}",
        expected.len()
    );
    assert_eq!(gcs.object("reports", "files.csv").unwrap().data, expected);
    let asked = gcs
        .requests()
        .iter()
        .filter(|r| {
            r.header("content-range")
                .is_some_and(|c| c.starts_with("bytes */"))
        })
        .count();
    assert!(asked >= 1, "the session was asked where it stands");
}

#[test]
fn a_hostile_range_header_fails_the_query_and_leaves_the_old_object() {
    let gcs = FakeGcs::start(TOKEN);
    gcs.put("reports", "files.csv", b"old\r\n");
    gcs.set_faults(Faults {
        hostile_range: true,
        ..Faults::default()
    });
    let wd = workdir(20000);
    wd.write(
        "queries/files.toml",
        &format!("{FILES}columns = [\"id\", \"name\", \"mimeType\"]\noutput = \"gs://reports/files.csv\"\n[params]\npageSize = 1000\n"),
    );
    let run = run_with(&wd, &gcs, &["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("Range header gscrape cannot read"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(gcs.object("reports", "files.csv").unwrap().data, b"old\r\n");
}

#[test]
fn gzip_and_xlsx_go_up_as_one_upload_and_an_out_dir_can_be_a_bucket() {
    let gcs = FakeGcs::start(TOKEN);
    let wd = workdir(50);
    wd.write(
        "queries/zipped.toml",
        &format!("{FILES}columns = [\"id\", \"name\"]\noutput = \"files.csv.gz\"\n"),
    );
    wd.write(
        "queries/book.toml",
        &format!("{FILES}columns = [\"id\", \"size\"]\noutput = \"files.xlsx\"\n"),
    );
    let run = run_with(&wd, &gcs, &["run", "--out-dir", "gs://reports/exports/"]);
    assert_eq!(run.code, 0, "{run:?}");
    let zipped = gcs.object("reports", "exports/files.csv.gz").unwrap();
    let mut text = Vec::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(zipped.data.as_slice())
        .read_to_end(&mut text)
        .unwrap();
    assert_eq!(text, local_export(50, "columns = [\"id\", \"name\"]\n"));
    assert_eq!(zipped.content_type, "application/gzip");
    assert!(!zipped.composite, "one upload, no parts");
    let book = gcs.object("reports", "exports/files.xlsx").unwrap();
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(book.data)).unwrap();
    use calamine::Reader;
    let range = workbook.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(range.height(), 51);
    // The run's own state stays local when only outputs are in a bucket? No: with the out-dir
    // a bucket, the state is there too.
    assert!(
        !wd.path().join("gs:").exists(),
        "nothing local is named after the URL"
    );
}

/// A pod killed with SIGKILL mid-upload: the old object stays exactly as it was, the run lock
/// it held runs out, and `--resume` on another machine (another work directory; state, parts
/// and output only in the bucket) takes the lock over and completes the export byte for byte.
/// Relies on the double keeping unfinished uploads invisible and finished parts as objects.
#[test]
fn a_pod_killed_mid_upload_leaves_the_old_object_and_another_pod_resumes_it_byte_identically() {
    let gcs = FakeGcs::start(TOKEN);
    gcs.put("reports", "files.csv", b"yesterday\r\n");
    let wd = Workdir::with_config(Config {
        drive_files: 6000,
        latency: std::time::Duration::from_millis(60),
        ..Config::default()
    });
    let query = "columns = [\"id\", \"name\", \"mimeType\", \"size\"]\n[params]\npageSize = 100\n";
    let file = format!("{FILES}output = \"gs://reports/files.csv\"\n{query}");
    wd.write("queries/files.toml", &file);
    let pod = |dir: &std::path::Path, resume: bool| {
        let mut args = vec!["run", "--state", "gs://reports/state/"];
        if resume {
            // (Waits for the dead pod's lease to run out.)
            args.extend(["--resume", "--wait-lock=30"]);
        }
        let mut command = wd.command(&args);
        command
            .current_dir(dir)
            .env("STORAGE_EMULATOR_HOST", &gcs.url)
            .env("GSCRAPE_UPLOAD_CHUNK_KIB", "256")
            .env("GSCRAPE_OBJECT_CHECKPOINT_SECONDS", "0.3")
            .env("GSCRAPE_LOCK_LEASE_SECONDS", "2")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    let mut first = pod(wd.path(), false).spawn().unwrap();
    // Until a checkpoint names finished parts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let names = gcs.names("reports");
        let parts = names.iter().filter(|n| n.contains(".tmp.part-")).count();
        let checkpoint = names.iter().any(|n| n.starts_with("state/checkpoints/"));
        if parts >= 2 && checkpoint {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint: {names:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    first.kill().unwrap();
    let killed = first.wait_with_output().unwrap();
    assert!(!killed.status.success());
    assert_eq!(
        gcs.object("reports", "files.csv").unwrap().data,
        b"yesterday\r\n",
        "the old object is as it was"
    );
    assert!(gcs.names("reports").contains(&"state/run.lock".to_owned()));
    // A part the killed pod finished after its last checkpoint (a kill between the two): the
    // next part's name, which the resumed export must be able to create.
    let last = gcs
        .names("reports")
        .into_iter()
        .filter(|n| n.contains(".tmp.part-"))
        .max()
        .unwrap();
    let (stem, index) = last.rsplit_once(".part-").unwrap();
    let leftover = format!("{stem}.part-{:05}", index.parse::<u32>().unwrap() + 1);
    gcs.put(
        "reports",
        &leftover,
        b"rows the checkpoint does not name\r\n",
    );

    // Another pod: nothing on its disk but the query.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("queries")).unwrap();
    std::fs::write(other.path().join("queries/files.toml"), &file).unwrap();
    let pages_before = wd.google.seen_under("/drive/v3/files").len();
    let resumed = crate::support::finish(pod(other.path(), true).output().unwrap());
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert!(
        resumed
            .stderr
            .contains("took over the run lock gs://reports/state/run.lock"),
        "{}",
        resumed.stderr
    );
    assert!(
        resumed.stderr.contains("files: resuming after page"),
        "{}",
        resumed.stderr
    );
    let asked = wd.google.seen_under("/drive/v3/files").len() - pages_before;
    assert!(asked < 60, "only the pages after the checkpoint: {asked}");

    let expected = local_export(6000, query);
    assert_eq!(gcs.object("reports", "files.csv").unwrap().data, expected);
    // (The runs' records stay, under state/runs/.)
    let left: Vec<String> = gcs
        .names("reports")
        .into_iter()
        .filter(|n| n != "files.csv" && !n.starts_with("state/runs/"))
        .collect();
    assert!(
        left.is_empty(),
        "parts, checkpoint and lock are gone: {left:?}"
    );
}

/// A second machine's run while the first holds the lock in the bucket: exit 75, naming the
/// holder. The double's generation preconditions are what make the lock exclusive.
#[test]
fn a_second_machine_finds_the_lock_held_and_exits_75_naming_the_holder() {
    let gcs = FakeGcs::start(TOKEN);
    let wd = Workdir::with_config(Config {
        drive_files: 300,
        latency: std::time::Duration::from_millis(300),
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"gs://reports/files.csv\"\ncolumns = [\"id\"]\n[params]\npageSize = 100\n"),
    );
    let run = |dir: &std::path::Path| {
        let mut command = wd.command(&["run", "--state", "gs://reports/state/"]);
        command
            .current_dir(dir)
            .env("STORAGE_EMULATOR_HOST", &gcs.url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    let first = run(wd.path()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while gcs.object("reports", "state/run.lock").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run took no lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("queries")).unwrap();
    std::fs::copy(
        wd.path().join("queries/files.toml"),
        other.path().join("queries/files.toml"),
    )
    .unwrap();
    let second = crate::support::finish(run(other.path()).output().unwrap());
    assert_eq!(second.code, 75, "{second:?}");
    let pid = first.id();
    assert!(
        second.stderr.contains(&format!("process {pid})"))
            && second.stderr.contains("holds gs://reports/state/run.lock"),
        "{}",
        second.stderr
    );
    let done = crate::support::finish(first.wait_with_output().unwrap());
    assert_eq!(done.code, 0, "{done:?}");
    assert!(
        gcs.object("reports", "state/run.lock").is_none(),
        "released"
    );
}

#[test]
fn a_bucket_the_credential_may_not_write_is_exit_2_naming_it_and_the_role() {
    let gcs = FakeGcs::start(TOKEN);
    gcs.set_faults(Faults {
        forbidden: true,
        ..Faults::default()
    });
    let wd = workdir(5);
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"gs://reports/files.csv\"\ncolumns = [\"id\"]\n"),
    );
    let run = run_with(&wd, &gcs, &["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("gs://reports/files.csv")
            && run.stderr.contains("HTTP 403")
            && run.stderr.contains("roles/storage.objectUser"),
        "{}",
        run.stderr
    );
}

#[test]
fn upload_sessions_and_tokens_never_appear_even_at_debug_level() {
    let gcs = FakeGcs::start(TOKEN);
    let wd = workdir(8000);
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"gs://reports/files.csv.gz\"\n{WIDE}"),
    );
    let run = run_with(&wd, &gcs, &["run", "-vv"]);
    assert_eq!(run.code, 0, "{run:?}");
    let ids = gcs.session_ids();
    assert!(!ids.is_empty());
    for secret in ids.iter().map(String::as_str).chain([TOKEN]) {
        assert!(
            !run.stderr.contains(secret),
            "{secret} printed:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("upload"),
        "the uploads are logged: {}",
        run.stderr
    );
}

/// A compose service's name (`gcs:4443`) is plain http to another machine: refused before
/// anything runs (exit 2, naming the variable), not at the first request after planning.
#[test]
fn a_plain_http_emulator_on_another_host_is_refused_at_start() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\"]\noutput = \"gs://reports/files.csv\"\n",
    );
    let run = crate::support::finish(
        wd.command(&["run"])
            .env("STORAGE_EMULATOR_HOST", "gcs:4443")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.starts_with(
            "error: refusing to send a bearer token over plain http to Cloud Storage at \
             http://gcs:4443/ (the root URL of STORAGE_EMULATOR_HOST"
        ),
        "{}",
        run.stderr
    );
    assert!(wd.google.seen_under("/drive/").is_empty());
}
