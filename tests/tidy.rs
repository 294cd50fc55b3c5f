//! House rules, checked over every Rust file of the repository: each opens
//! with a `//!` line saying why it exists, none declares `extern "C"`
//! functions by hand (libc has them), and every `#[allow]` gives its reason.

use std::path::{Path, PathBuf};

const ROOTS: [&str; 6] = ["crates", "src", "examples", "tests", "fuzz/fuzz_targets", "bench"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() && name != "target" && !name.starts_with('.') {
            rust_files(&p, out);
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

fn files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for r in ROOTS {
        rust_files(&root.join(r), &mut out);
    }
    assert!(out.len() > 100, "found only {} files", out.len());
    out.sort();
    out
}

/// `file:line: text` of every line breaking `rule`, which sees the line
/// (trimmed) and the file's text from that line on.
fn breaking(rule: impl Fn(&str, &str) -> bool) -> Vec<String> {
    let mut bad = Vec::new();
    for f in files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut at = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if rule(line.trim(), &text[at..]) {
                bad.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
            at += line.len();
        }
    }
    bad
}

#[test]
fn every_file_says_why_it_exists() {
    let missing: Vec<String> = files()
        .into_iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            !text.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| l.starts_with("//!"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` first line:\n{}", missing.join("\n"));
}

#[test]
fn no_hand_written_foreign_declarations() {
    // A block of declarations; `extern "C" fn` definitions (a constructor
    // the allocator needs) are fine.
    let bad = breaking(|l, _| {
        let l = l.strip_prefix("unsafe ").unwrap_or(l);
        l.starts_with("extern \"C\" {") || l.starts_with("extern \"C\"{")
    });
    assert!(bad.is_empty(), "declare nothing by hand, use libc:\n{}", bad.join("\n"));
}

#[test]
fn every_allow_gives_its_reason() {
    let bad = breaking(|l, rest| {
        let attribute = &rest[..rest.find(")]").unwrap_or(rest.len())];
        (l.starts_with("#[allow(") || l.starts_with("#![allow(")) && !attribute.contains("reason =")
    });
    assert!(bad.is_empty(), "#[allow] without `reason = \"…\"`:\n{}", bad.join("\n"));
}
