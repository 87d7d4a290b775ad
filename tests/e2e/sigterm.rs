//! SIGTERM (a platform stopping a task) mid-export to Cloud Storage: the export writes its
//! checkpoint and finishes its part object before it exits 130, so `--resume` goes on from
//! its last page — though a checkpoint to the bucket is otherwise due only every 15 s.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::gcs::{local_export, FILES};
use crate::support::fake_gcs::FakeGcs;
use crate::support::{finish, Config, Workdir, TOKEN};

const QUERY: &str =
    "columns = [\"id\", \"name\", \"mimeType\", \"size\"]\n[params]\npageSize = 100\n";

#[test]
fn sigterm_leaves_a_checkpoint_that_resume_continues_from_the_last_page() {
    let gcs = FakeGcs::start(TOKEN);
    gcs.put("reports", "files.csv", b"yesterday\r\n");
    let wd = Workdir::with_config(Config {
        drive_files: 6000,
        latency: Duration::from_millis(150),
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"gs://reports/files.csv\"\n{QUERY}"),
    );
    let run = |resume: bool| {
        let mut args = vec!["run", "--state", "gs://reports/state/"];
        if resume {
            args.push("--resume");
        }
        let mut command = wd.command(&args);
        command
            .env("STORAGE_EMULATOR_HOST", &gcs.url)
            .env("GSCRAPE_UPLOAD_CHUNK_KIB", "256")
            .env_remove("GSCRAPE_OBJECT_CHECKPOINT_SECONDS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let lists = || wd.google.seen_under("/drive/v3/files").len();
    let child = run(false).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lists() < 12 {
        assert!(Instant::now() < deadline, "no pages");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let stopped = finish(child.wait_with_output().unwrap());
    assert_eq!(stopped.code, 130, "{stopped:?}");
    let asked_before = lists();
    assert_eq!(
        gcs.object("reports", "files.csv").unwrap().data,
        b"yesterday\r\n"
    );
    assert!(
        gcs.names("reports")
            .iter()
            .any(|n| n.starts_with("state/checkpoints/")),
        "a checkpoint in the bucket: {:?}",
        gcs.names("reports")
    );

    let resumed = finish(run(true).output().unwrap());
    assert_eq!(resumed.code, 0, "{resumed:?}");
    let after: usize = resumed
        .stderr
        .split("files: resuming after page ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not resumed: {}", resumed.stderr));
    // The page in flight at SIGTERM (if any) is the only one asked again.
    assert!(
        after + 1 >= asked_before,
        "resumed after page {after} of {asked_before} asked"
    );
    assert_eq!(
        lists() - asked_before,
        60 - after,
        "only the pages after the last one written"
    );
    assert_eq!(
        gcs.object("reports", "files.csv").unwrap().data,
        local_export(6000, QUERY)
    );
}
