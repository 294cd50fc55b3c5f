//! vane's built-in plugins, grouped by role. [`register`] adds them all to a
//! registry: the one list of built-in names, in one place.

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod board;
mod defaults;
pub mod engines;
#[cfg(feature = "http")]
pub mod http_client;
#[cfg(feature = "lua")]
pub mod lua;
#[cfg(feature = "http")]
pub mod otlp;
#[cfg(feature = "http")]
pub mod remote_write;
#[cfg(feature = "http")]
pub mod riemann;
pub mod sinks;
pub mod sources;

use vane_core::registry::Registry;

/// Registers every built-in plugin.
pub fn register(r: &mut Registry) {
    #[cfg(feature = "host")]
    {
        use sources::host::*;
        r.source::<Cpu>("cpu", "CPU time per core and in total: counters in seconds and usage in percent")
            .source::<Memory>("memory", "memory in bytes: total, available, used, free, buffers, cached")
            .source::<Swap>("swap", "swap in bytes: total, used, free")
            .source::<Disk>("disk", "usage of each mounted file system: bytes and inodes")
            .source::<Diskio>("diskio", "cumulative I/O per block device: operations, bytes, time")
            .source::<Net>("net", "cumulative traffic per network interface: bytes, packets, errors")
            .source::<Load>("load", "load averages over 1, 5 and 15 minutes")
            .source::<Processes>("processes", "processes counted by state, and threads")
            .source::<System>("system", "uptime, boot time, logged-in users, CPUs")
            .source::<sources::procstat::Procstat>(
                "procstat",
                "CPU, memory, descriptors, threads and I/O of processes chosen by name, pattern or pid file",
            );
    }
    r.source::<sources::demo::Hello>("hello", "a metric flipping between 0 and 1 (Duct's HelloWorld)")
        .source::<sources::demo::Chaos>(
        "chaos",
        "misbehaves on purpose (panics, hangs, errors) to test isolation and alerting",
    );
    r.source::<sources::exec::Exec>(
        "exec",
        "runs a program each poll and reads its output: influx, json, prometheus, graphite or nagios",
    )
    .service::<sources::exec::Execd>("execd", "keeps a program running and reads events from its output as they come")
    .source::<sources::ping::Ping>("ping", "ICMP echo: packets sent and received, loss, round-trip min/avg/max/stddev")
    .service::<sources::listen::Socket>(
        "socket",
        "lines over TCP or UDP: line protocol, Graphite plaintext (with templates), JSON or bare numbers",
    )
    .service::<sources::listen::Statsd>(
        "statsd",
        "statsd over UDP: counters, gauges, timers and sets, aggregated per flush",
    );
    #[cfg(feature = "http")]
    r.sink::<sinks::http::Http>(
        "http",
        "JSON batches POSTed to a URL, with headers and a bearer token",
    )
    .sink::<sinks::remote_write::RemoteWrite>(
        "prometheus_remote_write",
        "Prometheus remote write (protobuf, snappy): name and field as metric, tags as labels",
    )
    .sink::<sinks::otlp::Otlp>(
        "otlp",
        "OpenTelemetry metrics (OTLP/HTTP or OTLP/gRPC) to any OTLP receiver, retried as the specification says",
    )
    .sink::<sinks::prometheus::Prometheus>(
        "prometheus",
        "serves /metrics for Prometheus to scrape: the latest value of each series",
    )
    .sink::<sinks::riemann::Riemann>(
        "riemann",
        "Riemann's protobuf protocol over TCP, waiting for each batch's ack",
    )
    .source::<sources::checks::HttpCheck>(
        "http",
        "an HTTP check: up, status, response time, size, body regex, certificate days left",
    )
    .source::<sources::checks::TcpCheck>(
        "tcp",
        "a TCP check: up, connect time, optional send and expect",
    )
    .source::<sources::scrape::Scrape>(
        "prometheus",
        "scrapes a /metrics endpoint: every sample an event, labels as tags",
    )
    .service::<sources::influx_http::InfluxListener>(
        "influxdb_listener",
        "InfluxDB 1.x's write API (POST /write, /ping): clients and Telegraf write to vane unchanged",
    )
    .service::<sources::otlp::OtlpSource>(
        "otlp",
        "an OpenTelemetry metrics receiver (OTLP/HTTP and OTLP/gRPC on one port): answered once stored",
    )
    .service::<sources::remote_write::RemoteWriteSource>(
        "prometheus_remote_write",
        "a Prometheus remote-write receiver: every sample an event, answered once stored",
    )
    .service::<sources::riemann::RiemannSource>(
        "riemann",
        "a Riemann server's door (TCP and UDP): Riemann clients and Duct send to vane unchanged",
    )
    .sink::<sinks::influxdb::InfluxDb>(
        "influxdb",
        "InfluxDB 1.x: creates its database and retention policy, writes line protocol, dead-letters rejected points",
    );
    #[cfg(feature = "amqp")]
    r.service::<sources::amqp::AmqpSource>(
        "amqp",
        "consumes a RabbitMQ queue: acknowledged once stored, unreadable messages dead-lettered",
    )
    .sink::<sinks::amqp::Amqp>(
        "amqp",
        "publishes to a RabbitMQ exchange: persistent, a batch delivered once every message is confirmed",
    )
    .lease("amqp", amqp::lease::hold);
    #[cfg(feature = "sql")]
    r.source::<sources::sql::Sql>("sql", "a PostgreSQL query each poll: every row an event, columns as tags or fields");
    #[cfg(feature = "lua")]
    {
        r.source::<lua::LuaSource>("lua", "a source written in Lua: collect(ctx)")
            .engine::<lua::LuaEngine>("lua", "an engine written in Lua: process(event), beat()")
            .service::<lua::LuaLines>(
                "lua_lines",
                "a TCP listener whose lines a Lua script's line(text) turns into events",
            );
    }
    r.source::<sources::internal::Internal>(
        "internal",
        "the agent's own figures: events, errors and poll times per job, queue depths, RSS",
    )
    .engine::<engines::transform::Transform>(
        "transform",
        "rewrites events: name prefix and renames, tags added or removed, host, unit conversion",
    )
    .engine::<engines::rate::Rate>("rate", "per-second rate (or delta) of cumulative counters, across resets and wraps")
    .engine::<engines::rate::Rate>("derivative", "the same as rate")
    .engine::<engines::aggregate::Aggregate>(
        "aggregate",
        "min, max, mean, sum, count, last and percentiles over tumbling windows per series",
    )
    .engine::<engines::filter::Filter>("filter", "keeps or drops events by an expression")
    .engine::<engines::coalesce::Coalesce>("coalesce", "sends only the latest event of each series on each beat")
    .engine::<engines::coalesce::Dedupe>("dedupe", "drops events equal to their series' previous one")
    .engine::<engines::state::StateEngine>(
        "state",
        "alerts on state changes (with flap damping), repeats critical ones on each beat",
    )
    .engine::<engines::expire::Expire>("expire", "emits an expired event for each series not refreshed within its ttl")
    .sink::<sinks::graphite::Graphite>(
        "graphite",
        "Graphite plaintext over TCP, paths from a template of host, name, tags and field",
    )
    .sink::<sinks::blackhole::Blackhole>(
        "blackhole",
        "takes every batch and keeps nothing (benchmarks, trying a pipeline)",
    )
    .sink::<sinks::stdout::Stdout>("stdout", "writes events to standard output as line protocol or JSON")
    .sink::<board::sink::BoardSink>(
        "board",
        "keeps every numeric field in the local history (raw, then downsampled tiers) and answers its queries",
    )
    .sink::<sinks::file::File>("file", "appends events to a file as line protocol or JSON, rotating by size");
}

/// A registry of the built-ins, for their tests.
#[cfg(test)]
pub(crate) fn registry() -> Registry {
    let mut r = Registry::new();
    register(&mut r);
    r
}
