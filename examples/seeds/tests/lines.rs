//! How long each seed example is, counted, against its original in the
//! seed's guide: every Rust example must be at or under it, and the
//! README's table must show the counts of the code as it is
//! (`scripts/seed-lines.sh` writes the table: this test with
//! `VANE_WRITE_README=1`).
//!
//! Counted: every line of the example's file up to its tests, but blank
//! lines and comments (`//` in Rust, `--` in Lua). The guides' figures are
//! the lines of their code blocks as printed.

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Example {
    name: &'static str,
    /// The guide's figure, when the guide has code for it, and how to show it.
    guide: (Option<usize>, &'static str),
    rust: &'static str,
    lua: Option<&'static str>,
}

const EXAMPLES: &[Example] = &[
    Example {
        name: "Tourbillon plugin (ready, own conf.d file, loop; the sink creates its database and policy)",
        guide: (Some(8), "8 (coroutine form)"),
        rust: "src/tourbillon.rs",
        lua: None,
    },
    Example {
        name: "Ceilometer `CPUPollster` and `InstanceNotifications`",
        guide: (None, "no code in the guide"),
        rust: "src/ceilometer.rs",
        lua: None,
    },
    Example {
        name: "Telemetry `com.telemetryapp.random` (its board from the template it ships, 3 tasks posting to its flows, coalesced per submission)",
        guide: (None, "fragments only, about 35"),
        rust: "src/telemetry.rs",
        lua: None,
    },
    Example {
        name: "Duct `HelloWorld`",
        guide: (Some(9), "9"),
        rust: "src/duct/hello_world.rs",
        lua: Some("lua/duct_hello.lua"),
    },
    Example {
        name: "Duct flip-flop",
        guide: (Some(13), "13"),
        rust: "src/duct/flip_flop.rs",
        lua: Some("lua/duct_hello.lua"),
    },
    Example {
        name: "Duct `ProcessCount`",
        guide: (Some(17), "17"),
        rust: "src/duct/process_count.rs",
        lua: Some("lua/duct_process_count.lua"),
    },
    Example {
        name: "Duct `NumberProxy`",
        guide: (Some(39), "39"),
        rust: "src/duct/number_proxy.rs",
        lua: Some("lua/duct_number_proxy.lua"),
    },
    Example {
        name: "Canopsis `my_awesome_work` + `my_awesome_beat`",
        guide: (Some(8), "8 (22 with docstrings)"),
        rust: "src/canopsis.rs",
        lua: Some("lua/canopsis_awesome.lua"),
    },
];

/// Lines of code in a file, up to its tests.
fn count(file: &str, comment: &str) -> usize {
    let text = std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap();
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(comment))
        .count()
}

fn table() -> String {
    let mut t = String::from("| example | in its seed's guide | vane, Rust | vane, Lua |\n|---|---|---|---|\n");
    let mut lua_seen = Vec::new();
    for e in EXAMPLES {
        let lua = match e.lua {
            None => "—".to_owned(),
            Some(l) if lua_seen.contains(&l) => "(above)".to_owned(),
            Some(l) => {
                lua_seen.push(l);
                count(l, "--").to_string()
            }
        };
        t.push_str(&format!("| {} | {} | {} | {lua} |\n", e.name, e.guide.1, count(e.rust, "//")));
    }
    t
}

const BEGIN: &str = "<!-- seed lines: written by scripts/seed-lines.sh -->\n";
const END: &str = "<!-- /seed lines -->";

#[test]
fn every_rust_example_is_at_most_as_long_as_its_original() {
    let longer: Vec<String> = EXAMPLES
        .iter()
        .filter_map(|e| {
            let (n, guide) = (count(e.rust, "//"), e.guide.0?);
            (n > guide).then(|| format!("{}: {n} lines against {guide}", e.name))
        })
        .collect();
    assert!(longer.is_empty(), "{}", longer.join("\n"));
}

#[test]
fn the_readme_shows_the_counts_of_the_code_as_it_is() {
    let path = Path::new(ROOT).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(BEGIN).expect("the README holds the seed lines table") + BEGIN.len();
    let end = start + readme[start..].find(END).expect("the table ends");
    let want = table();
    if std::env::var_os("VANE_WRITE_README").is_some() {
        std::fs::write(&path, format!("{}{want}{}", &readme[..start], &readme[end..])).unwrap();
    } else {
        assert_eq!(readme[start..end], want, "the README's seed lines table is stale: run scripts/seed-lines.sh");
    }
}
