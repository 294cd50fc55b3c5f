//! The riemann sink through the real binary. No Riemann server can be
//! installed here (it is not in Debian's packages on this machine), so this
//! test runs an in-repo loopback server implementing Riemann's TCP protocol
//! from its published `proto.proto`: a 4-byte big-endian length, a `Msg`,
//! and a `Msg { ok }` answer. It decodes the protobuf by hand, field numbers
//! and wire types straight from the `.proto`, independently of the sink's
//! own message structs. It refuses the first batch (`ok: false`) to make
//! the sink retry.

use vane_test_support::{Vane, stop};

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

fn varint(b: &[u8], i: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let byte = b[*i];
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

enum Field {
    Int(u64),
    Bytes(Vec<u8>),
    Fixed64(u64),
    Fixed32(u32),
}

/// (field number, value) pairs of one protobuf message.
fn fields(b: &[u8]) -> Vec<(u64, Field)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i);
        let f = match key & 7 {
            0 => Field::Int(varint(b, &mut i)),
            1 => {
                let v = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
                i += 8;
                Field::Fixed64(v)
            }
            2 => {
                let n = varint(b, &mut i) as usize;
                let v = b[i..i + n].to_vec();
                i += n;
                Field::Bytes(v)
            }
            5 => {
                let v = u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
                i += 4;
                Field::Fixed32(v)
            }
            w => panic!("unexpected wire type {w}"),
        };
        out.push((key >> 3, f));
    }
    out
}

/// A Riemann event as the fields this test checks.
#[derive(Debug, Default)]
struct Got {
    service: String,
    host: String,
    state: String,
    description: String,
    ttl: f32,
    attributes: HashMap<String, String>,
    time: i64,
    metric_sint64: Option<i64>,
    metric_d: Option<f64>,
}

fn event(b: &[u8]) -> Got {
    let mut g = Got::default();
    let s = |v: &[u8]| String::from_utf8(v.to_vec()).unwrap();
    for (n, f) in fields(b) {
        match (n, f) {
            (1, Field::Int(v)) => g.time = v as i64,
            (2, Field::Bytes(v)) => g.state = s(&v),
            (3, Field::Bytes(v)) => g.service = s(&v),
            (4, Field::Bytes(v)) => g.host = s(&v),
            (5, Field::Bytes(v)) => g.description = s(&v),
            (8, Field::Fixed32(v)) => g.ttl = f32::from_bits(v),
            (9, Field::Bytes(v)) => {
                let kv = fields(&v);
                let get = |k: u64| {
                    kv.iter().find(|(n, _)| *n == k).map(|(_, f)| match f {
                        Field::Bytes(b) => s(b),
                        _ => String::new(),
                    })
                };
                g.attributes.insert(get(1).unwrap(), get(2).unwrap_or_default());
            }
            (13, Field::Int(v)) => g.metric_sint64 = Some(((v >> 1) as i64) ^ -((v & 1) as i64)),
            (14, Field::Fixed64(v)) => g.metric_d = Some(f64::from_bits(v)),
            _ => {}
        }
    }
    g
}

#[test]
fn events_reach_a_riemann_server_with_every_attribute() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<Vec<Got>>();
    std::thread::spawn(move || {
        let mut first = true;
        for conn in server.incoming() {
            let mut c = conn.unwrap();
            loop {
                let mut len = [0u8; 4];
                if c.read_exact(&mut len).is_err() {
                    break;
                }
                let mut msg = vec![0u8; u32::from_be_bytes(len) as usize];
                c.read_exact(&mut msg).unwrap();
                let events: Vec<Got> = fields(&msg)
                    .into_iter()
                    .filter_map(|(n, f)| match (n, f) {
                        (6, Field::Bytes(b)) => Some(event(&b)),
                        _ => None,
                    })
                    .collect();
                // Msg { ok = 2 (bool), error = 3 (string) }
                let answer: Vec<u8> =
                    if first { vec![0x10, 0x00, 0x1a, 0x04, b'b', b'u', b's', b'y'] } else { vec![0x10, 0x01] };
                c.write_all(&(answer.len() as u32).to_be_bytes()).unwrap();
                c.write_all(&answer).unwrap();
                if !first {
                    let _ = tx.send(events);
                }
                first = false;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("v.yaml");
    std::fs::write(
        &cfg,
        format!(
            "agent: {{ host: web-01 }}\n\
             jobs:\n  - {{ id: gen, plugin: execd, config: {{ command: [sh, -c, \"echo 'disk,host=db-1,path=/var,state=warning used=91.5,inodes=7i,description=\\\"nearly full\\\",ttl=60.0 1700000000123456789'; exec sleep 3600\"] }} }}\n\
             sinks:\n  - {{ id: r, plugin: riemann, batch_wait: 20ms, config: {{ address: \"127.0.0.1:{port}\", tags: [vane] }} }}\n"
        ),
    )
    .unwrap();
    let agent = VANE.start(&cfg);
    let got = rx.recv_timeout(Duration::from_secs(30)).expect("the batch arrives after the refusal");
    stop(agent);
    assert_eq!(got.len(), 2, "{got:?}");
    let used = got.iter().find(|g| g.service == "disk used").unwrap();
    let inodes = got.iter().find(|g| g.service == "disk inodes").unwrap();
    assert_eq!(used.host, "db-1");
    assert_eq!(used.state, "warning");
    assert_eq!(used.description, "nearly full");
    assert_eq!(used.ttl, 60.0);
    assert_eq!(used.time, 1_700_000_000);
    assert_eq!(used.metric_d, Some(91.5));
    assert_eq!(inodes.metric_sint64, Some(7));
    assert_eq!(used.attributes.get("path").map(String::as_str), Some("/var"));
}
