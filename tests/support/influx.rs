//! A real InfluxDB 1.x for tests: started on loopback in a temporary folder
//! (installed by scripts/install-test-deps.sh; if it is missing the test
//! fails), stoppable and restartable on the same port and data, stopped on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Influx {
    child: Option<Child>,
    conf: std::path::PathBuf,
    pub addr: String,
    /// Credentials queries carry, when authentication is on.
    auth: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Influx {
    pub fn start() -> Influx {
        Influx::start_conf(false)
    }

    /// With authentication on and an admin `user` with `password`.
    pub fn start_with_auth(user: &str, password: &str) -> Influx {
        let mut i = Influx::start_conf(true);
        // The first user can be made without credentials.
        let made = i.query(&format!("CREATE USER {user} WITH PASSWORD '{password}' WITH ALL PRIVILEGES"));
        assert!(made.contains("results"), "{made}");
        i.auth = Some((user.to_owned(), password.to_owned()));
        i
    }

    fn start_conf(auth: bool) -> Influx {
        let dir = tempfile::tempdir().unwrap();
        let (http, rpc) = (free_port(), free_port());
        let d = dir.path().display();
        let conf = dir.path().join("influxdb.conf");
        std::fs::write(
            &conf,
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n  auth-enabled = {auth}\n"
            ),
        )
        .unwrap();
        let mut influx = Influx { child: None, conf, addr: format!("127.0.0.1:{http}"), auth: None, _dir: dir };
        influx.resume();
        influx
    }

    /// Starts the server (again) and waits until it answers `/ping`.
    pub fn resume(&mut self) {
        let child = Command::new("influxd")
            .args(["-config", self.conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("influxd runs (scripts/install-test-deps.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.get("/ping").contains(" 204 ") {
            assert!(Instant::now() < deadline, "influxd did not answer /ping");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM, then waits for it).
    pub fn pause(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signals the server we started.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    pub fn get(&self, path: &str) -> String {
        super::http::http_get(&self.addr, path)
    }

    pub fn query(&self, q: &str) -> String {
        let enc = super::http::urlencode(q);
        match &self.auth {
            Some((u, p)) => self.get(&format!("/query?u={u}&p={p}&q={enc}")),
            None => self.get(&format!("/query?q={enc}")),
        }
    }

    /// The single number a `SELECT count(..)`/`sum(..)` answers, or 0.
    pub fn number(&self, q: &str) -> f64 {
        let r = self.query(q);
        r.rsplit(',')
            .next()
            .map(|t| t.trim_end_matches(|c: char| !c.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Influx {
    fn drop(&mut self) {
        self.pause();
    }
}
