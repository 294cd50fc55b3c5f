#!/usr/bin/env python3
"""The message bus end to end: agent -> RabbitMQ -> engine workers ->
blackhole, against the limit measured the same way in the same run on the
same broker: a plain publish-with-confirms / consume-with-acks loop in Rust
on the same client (crates/vane-plugins/examples/amqp_loop.rs), and pika's.
Every run moves N persistent messages through a quorum queue with the
same guarantees (confirmed before counted sent, acknowledged one by one).
Figures: events/s end to end, CPU seconds per million events of the
clients (vane: the agent and every worker) and of the broker.

    bench/amqp.sh [N=50000] [ROUNDS=3]
"""
import os, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import free_port  # noqa: E402  (the harness's own helper)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VANE = os.path.join(ROOT, "target/release/vane")
LOOP = os.path.join(ROOT, "target/release/examples/amqp_loop")
TCK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """CPU seconds of a live process (utime + stime)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TCK


class Broker:
    def __init__(self, work):
        self.work, self.port, dist, self.epmd_port = work, free_port(), free_port(), free_port()
        with open(f"{work}/rabbitmq.conf", "w") as f:
            f.write(f"listeners.tcp.default = 127.0.0.1:{self.port}\ndisk_free_limit.absolute = 1MB\n")
        with open(f"{work}/enabled_plugins", "w") as f:
            f.write("[].\n")
        self.node = f"vanebench{os.getpid()}@localhost"
        self.env = dict(os.environ, HOME=work, RABBITMQ_NODENAME=self.node,
                        RABBITMQ_CONFIG_FILE=f"{work}/rabbitmq.conf", RABBITMQ_MNESIA_BASE=f"{work}/mnesia",
                        RABBITMQ_LOG_BASE=f"{work}/log", RABBITMQ_ENABLED_PLUGINS_FILE=f"{work}/enabled_plugins",
                        RABBITMQ_DIST_PORT=str(dist), ERL_EPMD_PORT=str(self.epmd_port),
                        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
        self.epmd = subprocess.Popen(["epmd", "-address", "127.0.0.1", "-port", str(self.epmd_port)])
        self.server = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self.env, start_new_session=True,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ctl("await_startup")
        self.beam = int(subprocess.check_output(["pgrep", "-s", str(self.server.pid), "beam.smp"]).split()[0])
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2f"

    def ctl(self, *args):
        for _ in range(600):
            r = subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.node, *args], env=self.env,
                               capture_output=True, text=True)
            if r.returncode == 0:
                return r.stdout
            time.sleep(0.1)
        raise RuntimeError(f"rabbitmqctl {args}: {r.stderr}")

    def cpu(self):
        return cpu_of(self.beam)

    def stop(self):
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.wait()
        self.epmd.kill()
        self.epmd.wait()


def timed(broker, argv):
    """Runs a client to its end: (its output, its CPU seconds, the broker's)."""
    b0 = broker.cpu()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, _, ru = os.wait4(p.pid, 0)
    return out, ru.ru_utime + ru.ru_stime, broker.cpu() - b0


PIKA = r'''
import pika, sys, time
url, n = sys.argv[1], int(sys.argv[2])
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
ch.queue_declare("bench.pika", durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 5})
ch.confirm_delivery()
body = b'{"name":"job","time":1796187069562158610,"host":"vm","tags":{"src":"a1"},"fields":{"seq":12345},"kind":"gauge"}'
props = pika.BasicProperties(delivery_mode=2, content_type="application/x-ndjson")
t0 = time.monotonic()
for i in range(n):
    ch.basic_publish("", "bench.pika", body, props)
ch.basic_qos(prefetch_count=1000)
got = 0
for method, _, _ in ch.consume("bench.pika"):
    ch.basic_ack(method.delivery_tag)
    got += 1
    if got == n:
        break
secs = time.monotonic() - t0
print(got, round(secs, 3), round(got / secs))
'''


def vane_run(broker, work, n, workers):
    """One agent publishing n events to engine `count`, `workers` workers
    consuming its queue into a blackhole: seconds until every event reached
    a blackhole, CPU seconds of vane's processes, the broker's."""
    d = tempfile.mkdtemp(dir=work)
    with open(f"{d}/gen.sh", "w") as f:
        f.write(f"exec awk 'BEGIN {{ for (i = 1; i <= {n}; i++) printf \"job,src=a1 seq=%di\\n\", i; fflush(); system(\"sleep 3600\") }}'\n")
    with open(f"{d}/fleet.yaml", "w") as f:
        f.write(f"""agent: {{ data_dir: "{d}/data-${{ROLE}}" }}
sources:
  - {{ id: gen, plugin: execd, next: count, config: {{ command: [sh, {d}/gen.sh] }} }}
  - {{ id: me, plugin: internal, interval: 100ms, next: stats }}
engines:
  - {{ id: count, plugin: transform, next: out, via: {{ plugin: amqp, config: {{ url: "{broker.url}" }} }} }}
sinks:
  - {{ id: out, plugin: blackhole }}
  - {{ id: stats, plugin: file, batch_wait: 50ms, config: {{ path: "{d}/stats-${{ROLE}}.lp" }} }}
""")
    broker.ctl("delete_queue", "vane.engine.count") if "vane.engine.count" in broker.ctl("list_queues", "-q", "name") else None
    procs = []
    for w in range(workers):
        log = open(f"{d}/w{w}.log", "w")
        procs.append(subprocess.Popen([VANE, "--log-level", "warn", "engine", "count", "--worker", "-c", f"{d}/fleet.yaml"],
                                      env=dict(os.environ, ROLE=f"w{w}"), stdout=subprocess.DEVNULL, stderr=log))
    # The workers declare the queue; the agent's sink declares it too.
    time.sleep(2)
    b0 = broker.cpu()
    t0 = time.monotonic()
    agent = subprocess.Popen([VANE, "--log-level", "warn", "run", "-c", f"{d}/fleet.yaml"], env=dict(os.environ, ROLE="agent"),
                             stdout=subprocess.DEVNULL, stderr=open(f"{d}/agent.log", "w"))
    procs.append(agent)

    def taken():
        total = 0
        for w in range(workers):
            last = 0
            try:
                for line in open(f"{d}/stats-w{w}.lp"):
                    if line.startswith("vane_job,") and ",job=out," in line:
                        last = int(line.split("events_in=")[1].split("u")[0])
            except FileNotFoundError:
                pass
            total += last
        return total

    while taken() < n:
        if time.monotonic() - t0 > 600:
            raise RuntimeError(f"only {taken()} of {n} arrived")
        time.sleep(0.05)
    secs = time.monotonic() - t0
    broker_cpu = broker.cpu() - b0
    cpu = 0.0
    for p in procs:
        p.send_signal(signal.SIGTERM)
        _, _, ru = os.wait4(p.pid, 0)
        cpu += ru.ru_utime + ru.ru_stime
    return secs, cpu, broker_cpu


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    work = tempfile.mkdtemp(prefix="vane-amqp-bench-")
    broker = Broker(work)
    runs = {}
    names = ["plain lapin loop (Rust)"] + [f"vane, agent + {k} worker{'s' if k > 1 else ''}" for k in (1, 2, 3)]
    try:
        # The plain loop and vane alternate, round after round, on one broker.
        for _ in range(rounds):
            out, cpu, bcpu = timed(broker, [LOOP, broker.url, str(n)])
            runs.setdefault(names[0], []).append((float(out.split()[1]), cpu, bcpu))
            for k in (1, 2, 3):
                runs.setdefault(names[k], []).append(vane_run(broker, work, n, k))
        # pika is ten times slower: one run.
        out, cpu, bcpu = timed(broker, ["/usr/bin/python3", "-c", PIKA, broker.url, str(n)])
        runs["pika loop (Python)"] = [(float(out.split()[1]), cpu, bcpu)]
    finally:
        broker.stop()
    limit = n / median([r[0] for r in runs[names[0]]])
    print(f"{n:,} persistent messages through a quorum queue, confirmed and acknowledged one by one; "
          f"RabbitMQ 3.10 on loopback; medians of {rounds} alternating rounds (pika: one run)\n")
    print("| run | seconds (each round) | events/s | of the plain loop | client CPU s per M | broker CPU s per M |")
    print("|---|---|---|---|---|---|")
    for name, rs in runs.items():
        secs = median([r[0] for r in rs])
        each = " ".join(f"{r[0]:.1f}" for r in rs)
        print(f"| {name} | {each} | {n / secs:,.0f} | {n / secs / limit:.0%} | "
              f"{median([r[1] for r in rs]) * 1e6 / n:.1f} | {median([r[2] for r in rs]) * 1e6 / n:.1f} |")


main()
