//! Board templates (YAML through the positioned tree, then the template's
//! own checks): nothing panics, an error names the template's origin, and
//! a template that reads holds widgets that fit its grid, each its own tag.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vane_plugins::board::template::Template;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Template::parse(text, "t.yaml") {
        Ok(t) => {
            let mut tags = t.tags();
            tags.sort();
            tags.dedup();
            assert_eq!(tags.len(), t.widgets.len());
            assert!(t.widgets.iter().all(|w| w.width > 0 && w.height > 0 && w.column + w.width <= t.columns));
        }
        Err(e) => assert!(e.to_string().starts_with("t.yaml"), "{e}"),
    }
});
