//! YAML text to a config tree and the tree to typed values (two parts read
//! through `Flat`, as the agent's sections are): nothing panics, aliases do
//! not blow up, and every error from a tree names a position.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vane_core::node::{Flat, Spanned, from_node, yaml};

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code, reason = "the fields are read by serde; the target only checks the errors")]
struct Head {
    id: Spanned<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code, reason = "the fields are read by serde; the target only checks the errors")]
struct Tail {
    interval: Option<vane_core::Duration>,
    #[serde(default)]
    next: Vec<String>,
    size: Option<vane_core::ByteSize>,
    on: Option<bool>,
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(node) = yaml::parse("f", text, &|k| (k == "SET").then(|| "x".to_owned())) else { return };
    for part in [Some(&node), node.get("sources")].into_iter().flatten() {
        if let Err(e) = from_node::<Flat<Head, Tail>>(part, "") {
            assert!(e.mark.is_some(), "an error without a position: {e}");
        }
    }
});
