//! A real Prometheus 2.x for tests, with its remote-write receiver on,
//! started on loopback in a temporary folder; stopped on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start() -> Prometheus {
        Prometheus::with_config("global:\n  scrape_interval: 1h\n")
    }

    /// A Prometheus scraping `target` (host:port) every second.
    pub fn scraping(target: &str) -> Prometheus {
        Prometheus::with_config(&format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vane\n    static_configs:\n      - targets: [\"{target}\"]\n"
        ))
    }

    /// A Prometheus with this configuration file.
    pub fn with_config(yaml: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let conf = dir.path().join("prometheus.yml");
        std::fs::write(&conf, yaml).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (scripts/install-test-deps.sh installs it)");
        let p = Prometheus { child, addr: format!("127.0.0.1:{port}"), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !p.get("/-/ready").contains(" 200 ") {
            assert!(Instant::now() < deadline, "prometheus did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    pub fn get(&self, path: &str) -> String {
        super::http::http_get(&self.addr, path)
    }

    /// The value of an instant query with one result, or None.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let enc = super::http::urlencode(promql);
        let r = self.get(&format!("/api/v1/query?query={enc}"));
        let body = r.split("\r\n\r\n").nth(1)?;
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

/// Debian's prometheus-node-exporter on 127.0.0.1:`port`, once it answers;
/// killed on drop.
pub fn node_exporter(port: u16) -> super::proc::Killed {
    let ne = super::proc::Killed(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Debian enables the systemd collector, which fails without systemd.
            .arg("--no-collector.systemd")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter runs (scripts/install-test-deps.sh installs it)"),
    );
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !super::http::http_get(&addr, "/metrics").contains("node_load1") {
        assert!(Instant::now() < deadline, "node_exporter did not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    ne
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SAFETY: signals the server this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
