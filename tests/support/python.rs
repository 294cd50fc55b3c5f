//! Python clients from PyPI, in the virtual environments that
//! scripts/install-test-deps.sh makes under target/venvs, and the scripts
//! the tests run with them (tests/python).

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A command running `python` of the virtual environment `venv`.
pub fn python(venv: &str) -> Command {
    let bin = root().join("target/venvs").join(venv).join("bin/python");
    assert!(bin.exists(), "{} is missing: run scripts/install-test-deps.sh", bin.display());
    Command::new(bin)
}

/// A program installed in the virtual environment `venv`.
pub fn program(venv: &str, name: &str) -> Command {
    let bin = root().join("target/venvs").join(venv).join("bin").join(name);
    assert!(bin.exists(), "{} is missing: run scripts/install-test-deps.sh", bin.display());
    Command::new(bin)
}

/// The path of one of the tests' Python scripts.
pub fn script(name: &str) -> PathBuf {
    root().join("tests/python").join(name)
}
