//! Test support: the fake Google server and a per-test work directory that runs the binary.

pub mod emulator;
pub mod fake_bigquery;
pub mod fake_cloud;
pub mod fake_gcs;
pub mod fake_google;
pub mod fake_oauth;
pub mod fake_quota;
pub mod fake_reports;
pub mod fake_sheets;
pub mod fake_sts;
pub mod loopback;
pub mod partial;
pub mod proxy;
pub mod pytools;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use fake_google::{Config, FakeGoogle};

/// The date the binary takes for today in tests (`GSCRAPE_TODAY`).
pub const TODAY: &str = "2024-03-15";

/// The bearer token the tests hand to the binary.
pub const TOKEN: &str = "ya29.test-token-never-printed";

/// A temporary directory with `queries/` and `output/`, and a fake Google to run against.
pub struct Workdir {
    dir: tempfile::TempDir,
    pub google: FakeGoogle,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Workdir {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("queries")).unwrap();
        std::fs::create_dir_all(dir.path().join("output")).unwrap();
        Workdir {
            dir,
            google: FakeGoogle::start_with(config),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `relative` (parents created).
    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path().join(relative))
            .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
    }

    pub fn exists(&self, relative: &str) -> bool {
        self.path().join(relative).exists()
    }

    /// Every file name in `relative` (for checking that no temporary file was left), but
    /// gscrape's own state: its directory `.gscrape` (the run lock, checkpoints) and the
    /// temporary files of unfinished exports that a checkpoint keeps for `--resume`.
    pub fn list(&self, relative: &str) -> Vec<String> {
        let dir = self.path().join(relative);
        let kept = self.checkpointed_temp_files(&dir);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name() != ".gscrape")
            .filter(|e| !kept.contains(&std::path::absolute(e.path()).unwrap()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The temporary files the checkpoints of the output directory `out_dir` name.
    pub fn checkpointed_temp_files(&self, out_dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(out_dir.join(".gscrape/checkpoints")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|text| serde_json::from_slice::<serde_json::Value>(&text).ok())
            .filter_map(|c| c["temp"].as_str().map(PathBuf::from))
            .collect()
    }

    /// The binary, set up to talk to this work dir's fake Google.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gscrape"));
        cmd.args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("GSCRAPE_DISCOVERY_URL", self.google.discovery_url())
            .env("GSCRAPE_CACHE_DIR", self.path().join("cache"))
            .env("GSCRAPE_CONFIG_DIR", self.path().join("config"))
            .env("BROWSER", "true")
            .env("GSCRAPE_BACKOFF_SCALE", "0.001")
            .env("GSCRAPE_TODAY", TODAY)
            .env("GSCRAPE_ACCESS_TOKEN", TOKEN)
            // Off Google Cloud: no test waits for a metadata server (the keyless tests point
            // GCE_METADATA_HOST at theirs and remove this).
            .env("NO_GCE_CHECK", "true");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        finish(self.command(args).output().unwrap())
    }

    /// Runs the binary with no access token (and nothing on stdin): it finds its own credential.
    pub fn run_without_token(&self, args: &[&str]) -> Run {
        let output = self
            .command(args)
            .env_remove("GSCRAPE_ACCESS_TOKEN")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        finish(output)
    }
}

/// Runs another program (a wrapper such as `script`) with the environment `command` was given.
pub trait OutputOf {
    fn output_of_program(&mut self, program: &str, args: &[&str]) -> Output;
}

impl OutputOf for Command {
    fn output_of_program(&mut self, program: &str, args: &[&str]) -> Output {
        let mut wrapper = Command::new(program);
        wrapper.args(args).env_clear();
        for (key, value) in self.get_envs() {
            if let Some(value) = value {
                wrapper.env(key, value);
            }
        }
        if let Some(dir) = self.get_current_dir() {
            wrapper.current_dir(dir);
        }
        wrapper.output().unwrap()
    }
}

pub fn finish(output: Output) -> Run {
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let secrets = [
        TOKEN,
        fake_oauth::CLIENT_SECRET,
        fake_google::API_KEY,
        "1//refresh-",  // refresh tokens the fake hands out
        "ya29.issued-", // access tokens the fake hands out
        "PRIVATE KEY",
        proxy::PROXY_PASSWORD,
    ];
    for secret in secrets {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret ({secret}) was printed: {run:?}"
        );
    }
    assert!(
        !run.stderr.contains("panicked"),
        "the binary panicked: {}",
        run.stderr
    );
    run
}

/// One CSV field as RFC 4180 writes it: quoted when it holds a comma, quote, CR or LF.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// One CSV line (CRLF-terminated) from its fields.
pub fn csv_line(fields: &[&str]) -> String {
    let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    format!("{}\r\n", fields.join(","))
}
