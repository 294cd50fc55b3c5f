//! A real PostgreSQL for tests (Debian's package), its cluster in a
//! temporary folder, listening on loopback only; stopped on drop.

use std::path::PathBuf;
use std::process::Command;

pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

fn bin(name: &str) -> PathBuf {
    // Debian keeps the server's programs out of PATH, per major version.
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("postgresql is installed (scripts/install-test-deps.sh)")
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    versions.sort();
    versions.pop().unwrap().join("bin").join(name)
}

/// Runs a server program as the postgres user when we are root (the
/// server refuses to run as root).
fn as_owner(program: PathBuf) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // The server's user must reach and own its folder.
        Command::new("chmod").arg("755").arg(dir.path()).status().unwrap();
        std::fs::create_dir(&data).unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&data).status().unwrap();
            assert!(ok.success());
        }
        let out =
            as_owner(bin("initdb")).arg("-D").arg(&data).args(["--auth=trust", "-U", "postgres"]).output().unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = super::agent::free_port();
        let out = as_owner(bin("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(format!("-c listen_addresses=127.0.0.1 -p {port} -k {}", data.display()))
            .arg("-l")
            .arg(data.join("server.log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
        Postgres { dir, port }
    }

    /// Runs SQL with psql; its output.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_owner(bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output();
    }
}
