//! The `sql` source against a real PostgreSQL (Debian's package, started
//! by the test on loopback in a temporary folder).

use std::time::Duration;

use vane_core::event::Value;
use vane_test_support::postgres::Postgres;
use vane_test_support::{Vane, events_in, stop, to_out, wait_for_log, wait_until};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

#[test]
fn each_row_becomes_an_event_with_tags_fields_and_time() {
    let pg = Postgres::start();
    pg.psql(
        "CREATE TABLE hosts (host text, region varchar(8), cpu float8, conns int4, disk bigint, ok bool, seen timestamptz, price numeric);\n\
         INSERT INTO hosts VALUES\n\
           ('web1', 'eu', 12.5, 40, 1000000000000, true, '2026-01-02 03:04:05+00', 1.5),\n\
           ('web2', 'us', 99.0, NULL, 7, false, '2026-01-02 03:04:06+00', 2.5);",
    );
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url();
    let cfg = to_out(
        dir.path(),
        "",
        &format!(
            "\
             \x20 - {{ id: db, plugin: sql, interval: 1h, next: out, config: {{ url: \"{url}\", name: hosts, tags: [host, region], time: seen, query: \"SELECT host, region, cpu, conns, disk, ok, seen, price::float8 AS price FROM hosts ORDER BY host\" }} }}\n\
             \x20 - {{ id: only, plugin: sql, interval: 1h, next: out, config: {{ url: \"{url}\", tags: [host], fields: [cpu], query: \"SELECT * FROM hosts WHERE host = 'web1'\" }} }}\n\
             \x20 - {{ id: raw, plugin: sql, interval: 1h, next: out, config: {{ url: \"{url}\", query: \"SELECT price FROM hosts\" }} }}\n\
             \x20 - {{ id: typo, plugin: sql, interval: 1h, next: out, config: {{ url: \"{url}\", query: \"SELECT nope FROM hosts\" }} }}\n"
        ),
        "",
    );
    let log = dir.path().join("log");
    let agent = VANE.start_logged(&cfg, &log);
    let out = dir.path().join("out.lp");
    wait_until(Duration::from_secs(30), "3 rows", || events_in(&out).len() >= 3);
    wait_for_log(&log, "column \"nope\" does not exist");
    wait_for_log(&log, "column price: type numeric is not read; cast it");
    stop(agent);
    let evs = events_in(&out);
    let hosts: Vec<_> = evs.iter().filter(|e| e.name == "hosts").collect();
    assert_eq!(hosts.len(), 2);
    let w1 = hosts[0];
    // A `host` column is the event's host.
    assert_eq!((w1.host.as_str(), w1.get_tag("region")), ("web1", Some("eu")));
    assert_eq!(w1.get_field("cpu"), Some(&Value::Float(12.5)));
    assert_eq!(w1.get_field("conns"), Some(&Value::Int(40)));
    assert_eq!(w1.get_field("disk"), Some(&Value::Int(1_000_000_000_000)));
    assert_eq!(w1.get_field("ok"), Some(&Value::Bool(true)));
    assert_eq!(w1.get_field("price"), Some(&Value::Float(1.5)));
    assert_eq!(w1.time, 1_767_323_045_000_000_000);
    let w2 = hosts[1];
    assert_eq!(w2.get_field("conns"), None, "NULL is left out");
    assert_eq!(w2.time, 1_767_323_046_000_000_000);
    let only: Vec<_> = evs.iter().filter(|e| e.name == "only").collect();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].fields, vec![("cpu".into(), Value::Float(12.5))]);
    assert_eq!(only[0].host, "web1");
}
