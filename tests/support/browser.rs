//! Debian's Chromium, headless, driven by Selenium (tests/python/browser.py
//! in the `browser` virtual environment): open a page of the agent, read
//! the markers it writes into the DOM, wait for a change, take a screenshot.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use serde_json::{Value, json};

pub struct Browser {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Browser {
    /// Starts the browser (the test fails when it cannot).
    pub fn start() -> Browser {
        let mut child = super::python::python("browser")
            .arg(super::python::script("browser.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the browser driver starts");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Browser { child, input, output }
    }

    /// One command; its answer, or the test fails with the browser's error.
    pub fn call(&mut self, cmd: Value) -> Value {
        writeln!(self.input, "{cmd}").expect("the driver reads");
        let mut line = String::new();
        self.output.read_line(&mut line).expect("the driver answers");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver said {line:?}: {e}"));
        match v.get("error") {
            Some(e) => panic!("browser, on {cmd}: {e}"),
            None => v["ok"].clone(),
        }
    }

    /// Opens `url` and waits for the page to say it is drawn.
    pub fn open(&mut self, url: &str) {
        self.call(json!({"open": url}));
    }

    /// Waits (at most `secs`) for a JS expression to be truthy; the ms it took.
    pub fn wait(&mut self, expr: &str, secs: u64) -> u64 {
        self.call(json!({"wait": expr, "timeout": secs})).as_u64().unwrap_or(0)
    }

    /// Every widget on the page: `[{tag, variant, filled, value, text}]`.
    pub fn widgets(&mut self) -> Vec<Value> {
        self.call(json!({"widgets": true})).as_array().cloned().unwrap_or_default()
    }

    pub fn js(&mut self, expr: &str) -> Value {
        self.call(json!({"js": expr}))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "{}", json!({"quit": true}));
        let _ = self.child.wait();
    }
}
