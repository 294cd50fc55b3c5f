//! A real RabbitMQ for tests: a broker of its own (node name, ports, epmd,
//! data) started on loopback in a temporary folder, without systemd
//! (installed by scripts/install-test-deps.sh; if it is missing the test
//! fails); stoppable and restartable on the same port and data; killed on
//! drop. And RabbitMQ's Python client, pika, run beside vane to publish and
//! to read queues.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::proc::Killed;

/// The broker's process group (the script, beam and its helpers), killed
/// whole when dropped: killing the script alone leaves beam running.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: signals the process group of a child this test started.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

pub struct Rabbit {
    broker: Option<Group>,
    _epmd: Killed,
    dir: tempfile::TempDir,
    pub port: u16,
    /// The amqps port, with a self-signed certificate ([`Rabbit::start_tls`]).
    pub tls_port: Option<u16>,
    epmd_port: u16,
    node: String,
}

fn free_port() -> u16 {
    super::agent::free_port()
}

impl Rabbit {
    pub fn start() -> Rabbit {
        Rabbit::start_with(false)
    }

    /// A broker that also takes amqps, with a self-signed certificate for
    /// 127.0.0.1 and localhost ([`Rabbit::ca`]).
    pub fn start_tls() -> Rabbit {
        Rabbit::start_with(true)
    }

    fn start_with(tls: bool) -> Rabbit {
        let dir = tempfile::tempdir().unwrap();
        let (port, dist, epmd_port) = (free_port(), free_port(), free_port());
        let mut conf = format!("listeners.tcp.default = 127.0.0.1:{port}\ndisk_free_limit.absolute = 1MB\n");
        let tls_port = tls.then(|| {
            let (cert, key) = super::proc::self_signed(dir.path());
            let p = free_port();
            conf.push_str(&format!(
                "listeners.ssl.default = 127.0.0.1:{p}\nssl_options.certfile = {}\nssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n",
                cert.display(),
                key.display()
            ));
            p
        });
        std::fs::write(dir.path().join("rabbitmq.conf"), conf).unwrap();
        std::fs::write(dir.path().join("enabled_plugins"), "[rabbitmq_consistent_hash_exchange].\n").unwrap();
        let epmd = Command::new("epmd")
            .args(["-address", "127.0.0.1", "-port", &epmd_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("epmd runs (scripts/install-test-deps.sh installs rabbitmq-server)");
        let node = format!("vane{}x{dist}@localhost", std::process::id());
        let mut r = Rabbit { broker: None, _epmd: Killed(epmd), dir, port, tls_port, epmd_port, node };
        std::fs::write(r.dir.path().join("dist_port"), dist.to_string()).unwrap();
        r.resume();
        r
    }

    /// The environment every RabbitMQ program of this broker runs with.
    fn env(&self, c: &mut Command) {
        let d = self.dir.path();
        let dist = std::fs::read_to_string(d.join("dist_port")).unwrap();
        c.env("HOME", d)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_DIST_PORT", dist.trim())
            .env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string());
    }

    /// `rabbitmqctl ARGS` against this broker: its output (the test fails if it fails).
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut c = Command::new("/usr/lib/rabbitmq/bin/rabbitmqctl");
        self.env(&mut c);
        let out = c.arg("-n").arg(&self.node).args(args).output().expect("rabbitmqctl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "rabbitmqctl {args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
        text
    }

    /// Starts the broker (again) and waits until it has booted.
    pub fn resume(&mut self) {
        let mut c = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        self.env(&mut c);
        let log = std::fs::File::create(self.dir.path().join("server.out")).unwrap();
        let child: Child = c.stdout(log).stderr(Stdio::null()).process_group(0).spawn().expect("rabbitmq-server runs");
        self.broker = Some(Group(child));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "RabbitMQ did not open its port: {}", self.server_log());
            std::thread::sleep(Duration::from_millis(100));
        }
        self.ctl(&["await_startup"]);
        if let Some(p) = self.tls_port {
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(Instant::now() < deadline, "RabbitMQ did not open its amqps port: {}", self.server_log());
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// The amqps URL (a broker from [`Rabbit::start_tls`]).
    pub fn tls_url(&self) -> String {
        format!("amqps://guest:guest@127.0.0.1:{}/%2f", self.tls_port.expect("a broker with amqps"))
    }

    /// The broker's self-signed certificate, to trust.
    pub fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Stops the broker the way an operator does; its data stays.
    pub fn pause(&mut self) {
        self.ctl(&["stop"]);
        if let Some(mut b) = self.broker.take() {
            let _ = b.0.wait();
        }
        // Dropped: whatever of its group is left is killed.
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.out")).unwrap_or_default()
    }

    /// The URL vane and pika connect with.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Messages ready in `queue` (0 when it does not exist).
    pub fn ready(&self, queue: &str) -> u64 {
        self.ctl(&["list_queues", "-q", "--no-table-headers", "name", "messages_ready"])
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .find(|(n, _)| n.trim() == queue)
            .and_then(|(_, m)| m.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Runs the pika script with `args`, `input` on its standard input; its output.
    fn pika(&self, args: &[&str], input: &str) -> String {
        let script = self.dir.path().join("pika_client.py");
        if !script.exists() {
            std::fs::write(&script, PIKA).unwrap();
        }
        // Debian's python3-pika loads in Debian's interpreter only.
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(self.url())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 runs (scripts/install-test-deps.sh installs python3-pika)");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "pika {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Publishes messages with pika, each confirmed: JSON objects with
    /// `exchange`, `key`, `body`, and optionally `content_type` and `headers`.
    pub fn publish(&self, messages: &[serde_json::Value]) {
        let input: String = messages.iter().map(|m| format!("{m}\n")).collect();
        self.pika(&["publish"], &input);
    }

    /// Declares a durable `queue` bound to `exchange` (a durable topic
    /// exchange, declared too) with `key`.
    pub fn bind(&self, queue: &str, exchange: &str, key: &str) {
        self.pika(&["bind", queue, exchange, key], "");
    }

    /// Reads and acknowledges with pika every message of `queue` until it
    /// has been empty for `idle`: each as a JSON object with `body`,
    /// `headers`, `content_type`, `delivery_mode` and `routing_key`.
    pub fn drain(&self, queue: &str, idle: Duration) -> Vec<serde_json::Value> {
        self.pika(&["drain", queue, &idle.as_secs_f64().to_string()], "")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        // Killed, not stopped, before its epmd: the data goes with the folder.
        self.broker.take();
    }
}

const PIKA: &str = r#"
import json, sys, time
import pika

url, cmd = sys.argv[1], sys.argv[2]
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
if cmd == "publish":
    ch.confirm_delivery()
    for line in sys.stdin:
        m = json.loads(line)
        props = pika.BasicProperties(content_type=m.get("content_type"), headers=m.get("headers"), delivery_mode=2)
        ch.basic_publish(m["exchange"], m["key"], m["body"].encode(), props, mandatory=False)
elif cmd == "bind":
    queue, exchange, key = sys.argv[3:6]
    ch.exchange_declare(exchange, "topic", durable=True)
    ch.queue_declare(queue, durable=True)
    ch.queue_bind(queue, exchange, key)
elif cmd == "drain":
    queue, idle = sys.argv[3], float(sys.argv[4])
    last = time.monotonic()
    while time.monotonic() - last < idle:
        method, props, body = ch.basic_get(queue)
        if method is None:
            time.sleep(0.02)
            continue
        last = time.monotonic()
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (props.headers or {}).items()}
        print(json.dumps({"body": body.decode(errors="replace"), "headers": headers, "content_type": props.content_type,
                          "delivery_mode": props.delivery_mode, "routing_key": method.routing_key}, default=str))
        ch.basic_ack(method.delivery_tag)
conn.close()
"#;
