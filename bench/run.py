"""vane against the agents people would pick instead, side by side.

Run through bench/run.sh, which installs the peers and builds vane. Each
scenario runs every tool alternately (A B A B ...) for BENCH_PAIRS rounds
(default 3) and writes its table into bench/RESULTS.md, between markers of
its own, with the machine and the date. Whole-process figures come from the
kernel: CPU seconds (utime+stime of the process and its children, from
/proc/PID/stat) and peak RSS (VmHWM of /proc/PID/status, summed over the
process tree). A peer that cannot be installed or started is reported in
the table as such; nothing is skipped silently.

Scenarios (names for the command line):
  hostmetrics  CPU, memory, disk, disk I/O, network and load every second
  sources      1,000 and 10,000 trivial sources polled every second
  relay        Graphite plaintext relayed from TCP to TCP
  ingest       line protocol over TCP and HTTP /write into a blackhole
  influxdb     events into a real InfluxDB against curl posting the same batches
  idle         the built-in default config, idle
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# VANE_BIN measures another build of vane (e.g. target/small/vane) the same way.
VANE = os.environ.get("VANE_BIN") or os.path.join(ROOT, "target", "release", "vane")
RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")
PAIRS = int(os.environ.get("BENCH_PAIRS", "3"))
TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class Unavailable(Exception):
    """A tool that cannot run here; the reason goes into the table."""


# ------------------------------------------------------------ processes


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, limit=30):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Unavailable(f"nothing listens on port {port} after {limit} s")


def tree(pid):
    """pid and its descendants alive now."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pid):
    """CPU seconds of a process tree, children already reaped included."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # utime stime cutime cstime are fields 14-17 (1-based) of stat.
            total += sum(int(x) for x in fields[11:15])
        except (OSError, IndexError, ValueError):
            pass
    return total / TCK


def peak_rss_mib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                m = re.search(r"VmHWM:\s+(\d+)", f.read())
            total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total / 1024


class Proc:
    """A process this harness started, stopped by its own pid."""

    def __init__(self, argv, env=None, cwd=None, stdout=None):
        self.out = stdout or subprocess.DEVNULL
        try:
            self.p = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=self.out, stderr=subprocess.DEVNULL,
                start_new_session=True)
        except OSError as e:
            raise Unavailable(f"{argv[0]}: {e}")

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            # The process group is ours: its own children go with it.
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


def measure(proc, seconds, warmup=3):
    """CPU seconds over `seconds` after `warmup`, and the peak RSS at the end."""
    time.sleep(warmup)
    if not proc.alive():
        raise Unavailable("exited during start-up")
    c0 = cpu_seconds(proc.pid)
    time.sleep(seconds)
    if not proc.alive():
        raise Unavailable("exited during the run")
    c1 = cpu_seconds(proc.pid)
    return c1 - c0, peak_rss_mib(proc.pid)


def vane(config_text, work, name="vane.yaml", log=False):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(config_text)
    out = open(os.path.join(work, "vane.log"), "w") if log else None
    return Proc([VANE, "--log-level", "warn", "run", "-c", path], stdout=out)


# ------------------------------------------------------------ scenarios


def seconds(default):
    return int(os.environ.get("BENCH_SECONDS", default))


def host_vane(work, secs):
    jobs = "".join(
        f"  - {{ id: {j}, plugin: {j}, interval: 1s }}\n"
        for j in ["cpu", "memory", "disk", "diskio", "net", "load"])
    p = vane(f"agent: {{ host: bench, data_dir: {work} }}\njobs:\n{jobs}"
             f"sinks:\n  - {{ id: out, plugin: file, config: {{ path: {work}/out.lp }} }}\n", work)
    cpu, rss = measure(p, secs)
    p.stop()
    return {"cpu s per 1000 collections": 1000 * cpu / secs, "peak RSS MiB": rss}


def host_collectd(work, secs):
    if not shutil.which("collectd"):
        raise Unavailable("collectd is not installed (apt-get install collectd-core)")
    conf = os.path.join(work, "collectd.conf")
    with open(conf, "w") as f:
        f.write(f"""Hostname "bench"
BaseDir "{work}"
PIDFile "{work}/collectd.pid"
PluginDir "/usr/lib/collectd"
Interval 1
LoadPlugin cpu
LoadPlugin memory
LoadPlugin df
LoadPlugin disk
LoadPlugin interface
LoadPlugin load
LoadPlugin csv
<Plugin csv>
  DataDir "{work}/csv"
</Plugin>
""")
    p = Proc(["collectd", "-f", "-C", conf])
    cpu, rss = measure(p, secs)
    p.stop()
    if not os.path.isdir(os.path.join(work, "csv")):
        raise Unavailable("collectd wrote nothing")
    return {"cpu s per 1000 collections": 1000 * cpu / secs, "peak RSS MiB": rss}


def node_exporter(port, collectors):
    exe = shutil.which("prometheus-node-exporter")
    if not exe:
        raise Unavailable("prometheus-node-exporter is not installed")
    args = [exe, f"--web.listen-address=127.0.0.1:{port}", "--no-collector.systemd"]
    if collectors:
        args += ["--collector.disable-defaults"] + [f"--collector.{c}" for c in collectors]
    return Proc(args)


def host_node_exporter(work, secs):
    port = free_port()
    p = node_exporter(port, ["cpu", "meminfo", "filesystem", "diskstats", "netdev", "loadavg"])
    wait_port(port)
    stop = threading.Event()

    def scrape():  # the small loop: its own CPU is not counted
        with open(os.path.join(work, "scraped"), "wb") as out:
            while not stop.is_set():
                t = time.time()
                out.write(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read())
                stop.wait(max(0, 1 - (time.time() - t)))

    t = threading.Thread(target=scrape)
    t.start()
    try:
        cpu, rss = measure(p, secs)
    finally:
        stop.set()
        t.join()
        p.stop()
    return {"cpu s per 1000 collections": 1000 * cpu / secs, "peak RSS MiB": rss}


NETDATA_PROC_OFF = """/proc/pressure /proc/uptime /proc/sys/kernel/random/entropy_avail /proc/interrupts
/proc/softirqs /proc/vmstat /sys/kernel/mm/ksm /sys/block/zram /sys/devices/system/edac/mc
/sys/devices/system/node /proc/net/wireless /proc/net/sockstat /proc/net/sockstat6 /proc/net/netstat
/proc/net/snmp /proc/net/snmp6 /proc/net/sctp/snmp /proc/net/softnet_stat /proc/net/ip_vs/stats
/sys/class/infiniband /proc/net/stat/conntrack /proc/net/stat/synproxy /proc/mdstat /proc/net/rpc/nfsd
/proc/net/rpc/nfs /proc/spl/kstat/zfs/arcstats /proc/spl/kstat/zfs/pool/state /sys/fs/btrfs ipc
/sys/class/power_supply""".split()


def netdata(work, update_every):
    """netdata confined to the six collectors (proc: stat, meminfo, diskstats,
    net/dev, loadavg; diskspace), keeping its values in its RAM database, its
    web API on loopback (used to check the confinement), nothing else."""
    exe = shutil.which("netdata")
    if not exe:
        raise Unavailable("netdata is not installed (apt-get install netdata-core)")
    port = free_port()
    for d in ["cache", "lib", "log", "run", "plugins"]:
        os.makedirs(os.path.join(work, d), exist_ok=True)
    conf = os.path.join(work, "netdata.conf")
    off = "".join(f"    {m} = no\n" for m in NETDATA_PROC_OFF)
    with open(conf, "w") as f:
        f.write(f"""[global]
    hostname = bench
    run as user = root
[db]
    mode = ram
    update every = {update_every}
[directories]
    config = {work}
    stock config = /usr/lib/netdata/conf.d
    cache = {work}/cache
    lib = {work}/lib
    log = {work}/log
    run = {work}/run
    plugins = {work}/plugins
[logs]
    debug log = none
    error log = {work}/log/error.log
    access log = none
    collector log = none
    health log = none
[web]
    bind to = 127.0.0.1:{port}
[health]
    enabled = no
[ml]
    enabled = no
[statsd]
    enabled = no
[cloud]
    enabled = no
[registry]
    enabled = no
[plugins]
    enable running new plugins = no
    proc = yes
    diskspace = yes
    cgroups = no
    tc = no
    idlejitter = no
    checks = no
    apps = no
    timex = no
    profile = no
    netdata monitoring = no
[plugin:proc]
    /proc/stat = yes
    /proc/meminfo = yes
    /proc/diskstats = yes
    /proc/net/dev = yes
    /proc/loadavg = yes
{off}""")
    return Proc([exe, "-D", "-c", conf]), port


def host_netdata(work, secs):
    p, port = netdata(work, 1)
    wait_port(port)
    # The confinement holds: only cpu, memory, disk, network and load charts.
    charts = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/charts"))["charts"]
    families = sorted({c.split(".")[0].split("_")[0] for c in charts})
    allowed = {"cpu", "disk", "mem", "net", "system"}
    if not set(families) <= allowed:
        p.stop()
        raise Unavailable(f"netdata collected more than asked: {families}")
    cpu, rss = measure(p, secs)
    p.stop()
    return {"cpu s per 1000 collections": 1000 * cpu / secs, "peak RSS MiB": rss}


DUCT_HELLO = '''
from duct.objects import Source

class HelloWorld(Source):
    """Duct's flip-flop HelloWorld."""
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.bit = False

    async def get(self):
        self.bit = not self.bit
        return self.createEvent('ok', 'Hello world!', 0 if self.bit else 1)
'''

LUA_HELLO = '''
local bit = false
function collect(ctx)
  bit = not bit
  return { name = "hello", fields = { value = bit and 0 or 1 }, state = "ok" }
end
'''


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return 0


# A source's name and its event's time (seconds) in each tool's output.
SOURCE_TIME = {
    "vane": (re.compile(r",src=([^ ,]+)[ ,].* (\d+)$"), 1e-9),
    "ducted": (re.compile(r"hostname='([^']+)'.*?\btime=([0-9.e+]+)"), 1.0),
}


def overshoot_p99_ms(path, tool, t0, t1, interval=1.0):
    """The 99th percentile, over every source's polls between t0 and t1, of
    how much later than one interval after its previous poll a poll came.
    A scheduler on a fixed grid shows its jitter; one that sleeps an interval
    after each poll shows its drift too. Read from the events' own times."""
    pattern, scale = SOURCE_TIME[tool]
    times = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = pattern.search(line.rstrip("\n"))
            if m:
                t = float(m.group(2)) * scale
                if t0 <= t <= t1:
                    times.setdefault(m.group(1), []).append(t)
    gaps = []
    for ts in times.values():
        ts.sort()
        gaps += [(b - a - interval) * 1000 for a, b in zip(ts, ts[1:])]
    if len(gaps) < 100:
        return float("nan")
    return statistics.quantiles(gaps, n=100)[98]


def sources_run(make, n, secs, out, tool):
    """Starts a tool, lets it settle, counts what it writes in `secs`."""
    p = make()
    time.sleep(5)
    if not p.alive():
        raise Unavailable("exited during start-up")
    l0, c0, t0 = count_lines(out), cpu_seconds(p.pid), time.time()
    time.sleep(secs)
    if not p.alive():
        raise Unavailable("exited during the run")
    l1, c1, t1 = count_lines(out), cpu_seconds(p.pid), time.time()
    rss = peak_rss_mib(p.pid)
    p.stop()
    return {"cpu s": c1 - c0, "peak RSS MiB": rss,
            "events/s produced": (l1 - l0) / secs, "expected/s": n,
            "p99 overshoot ms": overshoot_p99_ms(out, tool, t0, t1)}


def sources_vane(n, lua):
    def run(work, secs):
        out = os.path.join(work, "out.lp")
        if lua:
            with open(os.path.join(work, "hello.lua"), "w") as f:
                f.write(LUA_HELLO)
            job = f"plugin: lua, interval: 1s, config: {{ script: {work}/hello.lua }}"
        else:
            job = "plugin: hello, interval: 1s"
        # Each source names itself in its events, as ducted's do (hostname).
        jobs = "".join(f"  - {{ id: j{i}, {job}, tags: {{ src: j{i} }} }}\n" for i in range(n))
        return sources_run(lambda: vane(
            f"agent: {{ host: bench, data_dir: {work} }}\njobs:\n{jobs}"
            f"sinks:\n  - {{ id: out, plugin: file, config: {{ path: {out} }} }}\n", work), n, secs, out, "vane")
    return run


def sources_ducted(n):
    def run(work, secs):
        exe = os.environ.get("DUCTD") or shutil.which("ductd")
        if not exe or not os.path.exists(exe):
            raise Unavailable("ductd (pip install ducted) is not installed")
        with open(os.path.join(work, "duct_hello.py"), "w") as f:
            f.write(DUCT_HELLO)
        out = os.path.join(work, "duct.log")
        conf = os.path.join(work, "duct.yml")
        with open(conf, "w") as f:
            f.write(f"interval: 1.0\nttl: 60.0\nstagger: 0.0\nbase_path: {work}\n")
            f.write(f"outputs:\n  - output: duct.outputs.logger.Logger\n    logfile: {out}\n")
            f.write("sources:\n")
            for i in range(n):
                f.write(f"  - service: hello{i}\n    source: duct_hello.HelloWorld\n"
                        f"    interval: 1.0\n    hostname: h{i}\n")
        env = dict(os.environ, PYTHONPATH=work)
        return sources_run(lambda: Proc([exe, "-c", conf], env=env, cwd=work), n, secs, out, "ducted")
    return run


def relay_tool(tool, lines_file, n):
    def run(work, _secs):
        src, dst = free_port(), free_port()
        ready = os.path.join(work, "ready")
        counter = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "bench", "count_lines.py"), str(dst), str(n), "30", ready],
            stdout=subprocess.PIPE, text=True)
        while not os.path.exists(ready):
            time.sleep(0.02)
        if tool == "vane":
            p = vane(f"agent: {{ host: bench, data_dir: {work} }}\njobs:\n"
                     f"  - {{ id: in, plugin: socket, next: out, config: {{ listen: \"tcp://127.0.0.1:{src}\", format: graphite }} }}\n"
                     f"sinks:\n  - {{ id: out, plugin: graphite, batch_wait: 10ms, config: {{ address: \"127.0.0.1:{dst}\", template: \"{{path}}\" }} }}\n",
                     work)
            wait_port(src)
        else:
            if not shutil.which("carbon-c-relay"):
                raise Unavailable("carbon-c-relay is not installed")
            conf, log = os.path.join(work, "relay.conf"), os.path.join(work, "relay.log")
            with open(conf, "w") as f:
                f.write(f"listen\n  type linemode\n    127.0.0.1:{src} proto tcp\n  ;\n"
                        f"cluster out\n  forward\n    127.0.0.1:{dst}\n  ;\nmatch *\n  send to out\n  stop\n  ;\n")
            # -s: no statistics of its own in the stream (every 60 s), which a
            # run longer than a minute would count as lines it did not receive.
            p = Proc(["carbon-c-relay", "-s", "-f", conf, "-l", log, "-q", "1000000"])
            end = time.time() + 20
            while "startup sequence complete" not in open(log).read() if os.path.exists(log) else True:
                if time.time() > end:
                    raise Unavailable("carbon-c-relay did not start")
                time.sleep(0.05)
        c0, t0 = cpu_seconds(p.pid), time.time()
        subprocess.run(["socat", "-u", lines_file, f"TCP:127.0.0.1:{src}"], check=True)
        result = counter.communicate()[0]
        t1, c1 = time.time(), cpu_seconds(p.pid)
        rss = peak_rss_mib(p.pid)
        p.stop()
        if not result.startswith(f"complete {n}"):
            raise Unavailable(f"lines lost: the destination saw {result.strip()}")
        return {"lines/s": n / (t1 - t0), "cpu s per M lines": (c1 - c0) / (n / 1e6), "peak RSS MiB": rss}
    return run


# The sinks of the relay and ingest runs wait at most 10 ms for a batch to
# fill (batch_wait; 1 s by default): the run ends when the last line has
# arrived, and the last partial batch would otherwise add up to a second
# of waiting to a run of one or two seconds.


def ingest_tool(kind, lines_file, n):
    def run(work, _secs):
        port = free_port()
        if kind == "loopback reference":
            sink = Proc(["socat", "-u", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr", "/dev/null"])
            time.sleep(0.3)
            t0 = time.time()
            subprocess.run(["socat", "-u", lines_file, f"TCP:127.0.0.1:{port}"], check=True)
            sink.p.wait(60)
            return {"lines/s": n / (time.time() - t0), "cpu s per M lines": float("nan"), "peak RSS MiB": float("nan")}
        src = (f"{{ id: lp, plugin: socket, next: bh, config: {{ listen: \"tcp://127.0.0.1:{port}\" }} }}"
               if kind == "vane tcp" else
               f"{{ id: lp, plugin: influxdb_listener, next: bh, config: {{ listen: \"127.0.0.1:{port}\", max_body: 64MiB }} }}")
        p = vane(f"agent: {{ host: bench, data_dir: {work} }}\njobs:\n  - {src}\n"
                 f"  - {{ id: me, plugin: internal, interval: 100ms, next: stats }}\n"
                 f"sinks:\n  - {{ id: bh, plugin: blackhole, batch_wait: 10ms }}\n"
                 f"  - {{ id: stats, plugin: file, batch_wait: 10ms, config: {{ path: {work}/stats.lp }} }}\n", work)
        wait_port(port)
        if kind != "vane tcp":
            # Bodies of 5,000 lines, as a client batching its writes would
            # send, cut before the clock starts: the client only sends them,
            # one request at a time over one kept-alive connection.
            with open(lines_file, "rb") as f:
                data = f.read().split(b"\n")
            bodies = [b"\n".join(data[i:i + 5000]) for i in range(0, n, 5000)]
            del data
            conn = http.client.HTTPConnection("127.0.0.1", port)
        c0, t0 = cpu_seconds(p.pid), time.time()
        if kind == "vane tcp":
            subprocess.run(["socat", "-u", lines_file, f"TCP:127.0.0.1:{port}"], check=True)
        else:
            for body in bodies:
                conn.request("POST", "/write?db=bench", body=body)
                answer = conn.getresponse()
                answer.read()
                if answer.status != 204:
                    raise Unavailable(f"a write was answered {answer.status}, not 204")
            conn.close()
        pat = re.compile(r"^vane_job,.*,job=bh,.* .*events_out=(\d+)u")
        end = time.time() + 120
        while True:
            taken = 0
            if os.path.exists(f"{work}/stats.lp"):
                for line in open(f"{work}/stats.lp"):
                    m = pat.match(line)
                    if m:
                        taken = int(m.group(1))
            if taken >= n:
                break
            if time.time() > end:
                raise Unavailable(f"only {taken} of {n} events arrived")
            time.sleep(0.02)
        t1, c1 = time.time(), cpu_seconds(p.pid)
        rss = peak_rss_mib(p.pid)
        p.stop()
        return {"lines/s": n / (t1 - t0), "cpu s per M lines": (c1 - c0) / (n / 1e6), "peak RSS MiB": rss}
    return run


def influxdb_pairs(work):
    """bench/influxdb.sh runs curl then vane once; each run is one pair."""
    if not shutil.which("influxd"):
        raise Unavailable("influxd is not installed (apt-get install influxdb)")
    rows = []
    for _ in range(PAIRS):
        out = subprocess.run([os.path.join(ROOT, "bench", "influxdb.sh"), os.environ.get("BENCH_INFLUX_EVENTS", "500000")],
                             capture_output=True, text=True).stdout
        c = re.search(r"curl: .* = (\d+) events/s", out)
        v = re.search(r"vane: .* = (\d+) events/s", out)
        if not (c and v):
            raise Unavailable(f"bench/influxdb.sh failed: {out[-300:]}")
        rows.append((int(v.group(1)), int(c.group(1))))
    return rows


HOST_JOBS = ["cpu", "memory", "swap", "disk", "diskio", "net", "load", "processes", "system"]


def idle_vane(work, secs):
    """collectd's work: the built-in config's host sources every 10 s, to a file."""
    jobs = "".join(f"  - {{ id: {j}, plugin: {j} }}\n" for j in HOST_JOBS)
    p = vane(f"agent: {{ host: bench, data_dir: {work} }}\nsources:\n{jobs}"
             f"sinks:\n  - {{ id: out, plugin: file, config: {{ path: {work}/out.lp }} }}\n", work)
    cpu, rss = measure(p, secs)
    p.stop()
    return {"cpu s": cpu, "peak RSS MiB": rss}


class Browser:
    """Debian's Chromium, headless, on one page, driven by the tests' own
    driver (tests/python/browser.py in target/venvs/browser, which
    scripts/install-test-deps.sh makes). Its CPU is not the agent's."""

    def __init__(self, url, ready=None):
        py = os.path.join(ROOT, "target", "venvs", "browser", "bin", "python")
        if not os.path.exists(py):
            raise Unavailable(f"{py} is missing: run scripts/install-test-deps.sh")
        self.p = subprocess.Popen([py, os.path.join(ROOT, "tests", "python", "browser.py")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        cmd = {"open": url, "timeout": 60}
        if ready:
            cmd["ready"] = ready
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        said = json.loads(self.p.stdout.readline() or '{"error": "the driver ended"}')
        if "error" in said:
            self.close()
            raise Unavailable(f"the page {url} did not load: {said['error']}")

    def close(self):
        try:
            self.p.stdin.write(json.dumps({"quit": True}) + "\n")
            self.p.stdin.flush()
            self.p.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()


def board_vane(page):
    """The built-in config (host metrics every 10 s, their history, the host
    board), with or without the board open in Chromium."""
    def run(work, secs):
        port = free_port()
        env = dict(os.environ, STATE_DIRECTORY=work, VANE_HTTP=f"127.0.0.1:{port}")
        p = Proc([VANE, "--log-level", "warn", "run"], env=env)
        wait_port(port)
        b = Browser(f"http://127.0.0.1:{port}/board/host") if page else None
        try:
            cpu, rss = measure(p, secs)
        finally:
            if b:
                b.close()
            p.stop()
        return {"cpu s": cpu, "peak RSS MiB": rss}
    return run


class Page(Browser):
    """A Browser that also answers commands (see tests/python/browser.py)."""

    def call(self, cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        said = json.loads(self.p.stdout.readline() or '{"error": "the driver ended"}')
        if "error" in said:
            raise Unavailable(said["error"])
        return said["ok"]


def post_lines(port, text):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/write", data=text.encode(), method="POST")
    urllib.request.urlopen(req, timeout=60).read()


def page_many(n):
    """One board: a graph of n series (60 points each over ten minutes) and
    the states of n checks; how long the page takes to draw it, to show one
    submission, and one redraw of the graph."""
    def run(work, _secs):
        http, intake = free_port(), free_port()
        with open(os.path.join(work, "many.yaml"), "w") as f:
            f.write("title: Many\nwidgets:\n"
                    "  - { tag: all, variant: graph, width: 12, height: 4, series: [{ name: m, field: value }] }\n"
                    "  - { tag: checks, variant: status, row: 4, width: 12, height: 4, checks: {} }\n")
        p = vane(f"agent: {{ host: bench, data_dir: {work}, http: \"127.0.0.1:{http}\" }}\n"
                 f"sources:\n  - {{ id: in, plugin: influxdb_listener, config: {{ listen: \"127.0.0.1:{intake}\" }} }}\n"
                 f"sinks:\n  - {{ id: board, plugin: board, config: {{ boards: [{{ name: many, template: {work}/many.yaml }}] }} }}\n",
                 work)
        try:
            wait_port(intake)
            now = time.time_ns()
            lines = [f"m,i={i} value={(i * 7 + t) % 100} {now - (60 - t) * 10_000_000_000}"
                     for t in range(60) for i in range(n)]
            lines += [f"c,i={i},state={'critical' if i % 10 == 0 else 'ok'} value=1" for i in range(n)]
            for k in range(0, len(lines), 5000):
                post_lines(intake, "\n".join(lines[k:k + 5000]) + "\n")
            t0 = time.monotonic()
            b = Page(f"http://127.0.0.1:{http}/board/many")
            graph = "document.querySelector('[data-widget=all]').dataset"
            b.call({"wait": f"Number({graph}.points) >= {n * 60}", "timeout": 120})
            first = (time.monotonic() - t0) * 1000
            t0 = time.monotonic()
            post_lines(intake, "\n".join(f"m,i={i} value=50" for i in range(n)) + "\n")
            b.call({"wait": f"Number({graph}.points) >= {n * 61}", "timeout": 60})
            live = (time.monotonic() - t0) * 1000
            redraw = b.call({"js": "(() => { const t = performance.now(); "
                                   "drawWidget(board.widgets[0]); return performance.now() - t; })()"})
            b.close()
        finally:
            p.stop()
        return {"first draw ms": first, "a submission shown ms": live, "one graph redraw ms": redraw}
    return run


def board_netdata(work, secs):
    """netdata on the same collectors every 10 s, its own dashboard open."""
    p, port = netdata(work, 10)
    try:
        wait_port(port)
        if not os.path.isdir("/usr/share/netdata/web"):
            raise Unavailable("netdata's dashboard is not installed (apt-get install netdata-web)")
        b = Browser(f"http://127.0.0.1:{port}/", ready="document.readyState === 'complete'")
    except Unavailable:
        p.stop()
        raise
    try:
        cpu, rss = measure(p, secs)
    finally:
        b.close()
        p.stop()
    return {"cpu s": cpu, "peak RSS MiB": rss}


def idle_collectd(work, secs):
    if not shutil.which("collectd"):
        raise Unavailable("collectd is not installed (apt-get install collectd-core)")
    conf = os.path.join(work, "collectd.conf")
    with open(conf, "w") as f:
        f.write(f'Hostname "bench"\nBaseDir "{work}"\nPIDFile "{work}/c.pid"\nPluginDir "/usr/lib/collectd"\n'
                f'Interval 10\nLoadPlugin cpu\nLoadPlugin memory\nLoadPlugin df\nLoadPlugin disk\n'
                f'LoadPlugin interface\nLoadPlugin load\nLoadPlugin csv\n<Plugin csv>\n  DataDir "{work}/csv"\n</Plugin>\n')
    p = Proc(["collectd", "-f", "-C", conf])
    cpu, rss = measure(p, secs)
    p.stop()
    return {"cpu s": cpu, "peak RSS MiB": rss}


def idle_node_exporter(work, secs):
    port = free_port()
    p = node_exporter(port, None)
    wait_port(port)
    cpu, rss = measure(p, secs)
    p.stop()
    return {"cpu s": cpu, "peak RSS MiB": rss}


# ------------------------------------------------------------ running and reporting


def alternate(tools, secs):
    """Runs every tool once per round, in turn, for PAIRS rounds."""
    results = {name: [] for name, _ in tools}
    failed = {}
    for _ in range(PAIRS):
        for name, fn in tools:
            if name in failed:
                continue
            with tempfile.TemporaryDirectory() as work:
                try:
                    r = fn(work, secs)
                    results[name].append(r)
                    print(f"  {name}: " + ", ".join(f"{k} {v:.3g}" for k, v in r.items()), flush=True)
                except Unavailable as e:
                    failed[name] = str(e)
                    print(f"  {name}: {e}", flush=True)
    return results, failed


def table(results, failed, lower_is_better, base="vane"):
    """A markdown table: each tool's medians, and vane/peer ratios per pair."""
    keys = []
    for rs in results.values():
        for r in rs:
            keys += [k for k in r if k not in keys]
    lines = ["| tool | " + " | ".join(keys) + f" | {base}/tool per round ({keys[0]}) | median {base}/tool, each figure |",
             "|---" * (len(keys) + 3) + "|"]
    vrows = results.get(base, [])
    for name, rs in results.items():
        if name in failed and not rs:
            lines.append(f"| {name} | " + " | ".join("—" for _ in keys) + f" | {failed[name]} | |")
            continue
        med = [statistics.median(r[k] for r in rs) if all(k in r for r in rs) else float("nan") for k in keys]
        ratios = ""
        mr = ""
        if name != base and vrows:
            rr = [v[keys[0]] / r[keys[0]] for v, r in zip(vrows, rs) if r[keys[0]]]
            ratios = " ".join(f"{x:.2f}" for x in rr)
            per = []
            for k in keys:
                kr = [v[k] / r[k] for v, r in zip(vrows, rs) if k in v and k in r and r[k] and r[k] == r[k]]
                if kr:
                    per.append(f"{k}: {statistics.median(kr):.2f}")
            mr = "; ".join(per)
        lines.append(f"| {name} | " + " | ".join(f"{m:.3g}" for m in med) + f" | {ratios} | {mr} |")
    lines.append("")
    lines.append(f"{'Lower' if lower_is_better else 'Higher'} is better for `{keys[0]}`.")
    return "\n".join(lines)


def machine():
    mem = open("/proc/meminfo").readline().split()[1]
    return (f"{os.cpu_count()} cores, {int(mem) / 1048576:.1f} GiB, Linux {os.uname().release}, "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}, {PAIRS} rounds")


def write_section(name, title, body):
    begin, end = f"<!-- bench/run.sh {name} -->", f"<!-- /bench/run.sh {name} -->"
    text = open(RESULTS).read()
    section = f"{begin}\n### {title}\n\n{body}\n{end}"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    else:
        if "## Against the peers" not in text:
            text += ("\n## Against the peers (bench/run.sh)\n\nWritten by `bench/run.sh`: each tool runs "
                     "alternately with the others, the figures are medians of the rounds; CPU and RSS of the "
                     "whole process tree from /proc.\n")
        text += "\n" + section + "\n"
    with open(RESULTS, "w") as f:
        f.write(text)


def make_lines(path, n, graphite):
    with open(path, "w") as f:
        for i in range(n):
            if graphite:
                f.write(f"servers.web{i % 100}.cpu{i % 8}.user {i % 1000}.5 {1700000000 + i // 1000}\n")
            else:
                f.write(f"cpu,host=web{i % 100},cpu=cpu{i % 8} usage_user={i % 100}.5,usage_system=3.25,n={i}i "
                        f"{1700000000000000000 + i}\n")


def main(names):
    every = ["hostmetrics", "sources", "relay", "ingest", "influxdb", "idle", "board", "page"]
    names = names or every
    for n in names:
        if n not in every:
            sys.exit(f"unknown scenario {n}; known: {' '.join(every)}")
    for name in names:
        print(f"== {name}", flush=True)
        if name == "hostmetrics":
            secs = seconds(120)
            r, f = alternate([("vane", host_vane), ("collectd", host_collectd),
                              ("node_exporter", host_node_exporter), ("netdata", host_netdata)], secs)
            write_section(name, "1. Host metrics every second",
                          f"{machine()}; {secs} s a run. A collection is one round of CPU, memory, disk, "
                          f"disk I/O, network and load. node_exporter is scraped every second by the harness "
                          f"(the scraper's CPU is not counted).\n\n" + table(r, f, True))
        elif name == "sources":
            secs = seconds(60)
            body = f"{machine()}; {secs} s a run, after 5 s of start-up. Neither tool reports its scheduling " \
                   f"lateness, so it is read from the events' times: `p99 overshoot ms` is the 99th percentile, " \
                   f"over every source's polls, of how much later than one interval (1 s) after its previous " \
                   f"poll a poll came. vane schedules on a fixed grid (this is its jitter); ducted sleeps an " \
                   f"interval after each poll (this is its drift and jitter).\n"
            for n in [int(x) for x in os.environ.get("BENCH_SOURCES", "1000 10000").split()]:
                r, f = alternate([("vane", sources_vane(n, False)), ("vane (Lua)", sources_vane(n, True)),
                                  ("ducted", sources_ducted(n))], secs)
                body += f"\n{n} sources:\n\n" + table(r, f, True) + "\n"
            write_section(name, "2. Many trivial sources in one process", body)
        elif name in ("relay", "ingest"):
            n = int(os.environ.get("BENCH_LINES", "10000000" if name == "relay" else "5000000"))
            with tempfile.TemporaryDirectory() as d:
                lines = os.path.join(d, "lines")
                make_lines(lines, n, name == "relay")
                if name == "relay":
                    r, f = alternate([("vane", relay_tool("vane", lines, n)),
                                      ("carbon-c-relay", relay_tool("carbon-c-relay", lines, n))], 0)
                    write_section(name, "3. Graphite relay throughput",
                                  f"{machine()}; {n:,} lines over one connection, every line checked "
                                  f"at the destination.\n\n" + table(r, f, False))
                else:
                    r, f = alternate([("vane tcp", ingest_tool("vane tcp", lines, n)),
                                      ("vane http", ingest_tool("vane http", lines, n)),
                                      ("loopback reference", ingest_tool("loopback reference", lines, n))], 0)
                    write_section(name, "4. Line protocol ingest into a blackhole",
                                  f"{machine()}; {n:,} lines; HTTP in bodies of 5,000 lines from one "
                                  f"Python client, one request at a time over one kept-alive connection, "
                                  f"the bodies cut before the clock starts. The reference is socat moving the same bytes into "
                                  f"/dev/null over loopback.\n\n" + table(r, f, False, base="vane tcp"))
        elif name == "influxdb":
            try:
                rows = influxdb_pairs(None)
                ratios = [v / c for v, c in rows]
                body = (f"{machine()}; `bench/influxdb.sh` per round.\n\n| round | vane events/s | curl events/s | vane/curl |\n"
                        "|---|---|---|---|\n" + "".join(f"| {i + 1} | {v} | {c} | {v / c:.2f} |\n" for i, (v, c) in enumerate(rows))
                        + f"\nMedian vane/curl: {statistics.median(ratios):.2f}.")
            except Unavailable as e:
                body = f"not run: {e}"
            write_section(name, "5. InfluxDB delivery", body)
        elif name == "idle":
            secs = seconds(60)
            r, f = alternate([("vane", idle_vane), ("collectd", idle_collectd),
                              ("node_exporter", idle_node_exporter)], secs)
            write_section(name, "6. Idle footprint",
                          f"{machine()}; {secs} s a run. vane doing collectd's work: the built-in config's "
                          f"host sources every 10 s, written to a file (the built-in config with its board is "
                          f"measured in 7.); collectd with the same six plugins at 10 s, to CSV files; "
                          f"node_exporter with its defaults, not scraped.\n\n" + table(r, f, True))
        elif name == "board":
            secs = seconds(300)
            r, f = alternate([("vane, board open", board_vane(True)), ("vane, no page", board_vane(False)),
                              ("netdata, dashboard open", board_netdata)], secs)
            write_section(name, "7. The built-in config with its board",
                          f"{machine()}; {secs} s a run. vane on its built-in config (host metrics every 10 s, "
                          f"kept in its history, the host board served), with the host board open in headless "
                          f"Chromium and with no page; netdata on the same collectors every 10 s with its "
                          f"dashboard open. CPU and RSS of the agent alone, not of the browser.\n\n"
                          + table(r, f, True, base="vane, board open"))
        elif name == "page":
            n = int(os.environ.get("BENCH_PAGE_SERIES", "1000"))
            r, f = alternate([("vane", page_many(n))], 0)
            write_section(name, "8. A board page with many series",
                          f"{machine()}; headless Chromium on one board: a graph bound to {n:,} series of 60 "
                          f"points each, and the states of {n:,} checks. `first draw`: from opening the page to "
                          f"every point drawn; `a submission shown`: from posting one new point per series to "
                          f"the page drawing them (the submission interval is 1 s); `one graph redraw`: the "
                          f"script's time to draw the graph again. The limit is a response within 100 ms "
                          f"(RAIL) for one redraw.\n\n" + table(r, f, True))
        print(f"  written to {RESULTS}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
