//! Properties of line protocol: encoder and decoder together, any chunks
//! of a stream, and agreement with a simple reference reading of the
//! grammar (`reference/mod.rs`).

mod reference;

use proptest::prelude::*;
use vane_core::event::{Event, Kind, NO_TIME, State, Value};
use vane_core::lineproto::{Precision, Records, decode, encode_into, reserved};

/// A name line protocol can carry: printable, not ending in a backslash,
/// not starting with `#` (a measurement would read as a comment).
fn ident() -> impl Strategy<Value = String> {
    "[^\\x00-\\x1f\\x7f#][^\\x00-\\x1f\\x7f]{0,10}".prop_filter("trailing backslash", |s| !s.ends_with('\\'))
}

fn key() -> impl Strategy<Value = String> {
    ident().prop_filter("reserved", |k| {
        ![reserved::HOST, reserved::KIND, reserved::STATE, reserved::DESCRIPTION, reserved::TTL].contains(&k.as_str())
    })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::Float),
        any::<i64>().prop_map(Value::Int),
        any::<u64>().prop_map(Value::Uint),
        any::<bool>().prop_map(Value::Bool),
        ".{0,12}".prop_map(Value::Str),
        "[\\\\\"\n\r\tnrt ]{0,8}".prop_map(Value::Str),
    ]
}

prop_compose! {
    fn event()(
        name in ident(),
        time in any::<i64>(),
        host in prop_oneof![Just(String::new()), ident()],
        tags in proptest::collection::btree_map(key(), ident(), 0..4),
        fields in proptest::collection::vec((key(), value()), 1..5),
        kind in prop_oneof![Just(Kind::Gauge), Just(Kind::Counter), Just(Kind::Delta)],
        state in proptest::option::of(prop_oneof![
            Just(State::Ok), Just(State::Warning), Just(State::Critical), Just(State::Unknown)
        ]),
        description in proptest::option::of(".{0,12}"),
        ttl in proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
    ) -> Event {
        let tags = tags.into_iter().map(|(k, v): (String, String)| (k.into(), v.into())).collect();
        let fields = fields.into_iter().map(|(k, v): (String, Value)| (k.into(), v)).collect();
        Event { name: name.into(), time, host: host.into(), tags, fields, kind, state, description, ttl }
    }
}

/// Text shaped like line protocol, with every character that matters to
/// its grammar, so that many inputs decode and the rest fail in many ways.
fn lineish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => "[a-c]{1,3}".prop_map(String::into_bytes),
        1 => Just(b"=".to_vec()),
        1 => Just(b",".to_vec()),
        1 => Just(b" ".to_vec()),
        1 => Just(b"\\".to_vec()),
        1 => Just(b"\"".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"#".to_vec()),
        1 => Just(b"\t".to_vec()),
        2 => "-?[0-9]{1,3}(\\.[0-9]?)?(e[+-]?[0-9])?[iu]?".prop_map(String::into_bytes),
        1 => prop_oneof![Just(b"t".to_vec()), Just(b"false".to_vec()), Just(b"\xff".to_vec()), Just(b"\x01".to_vec())],
        1 => Just(b"m,t=v f=1 5\n".to_vec()),
        1 => Just(b"m s=\"".to_vec()),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn encoded(evs: &[Event]) -> String {
    let mut out = String::new();
    for e in evs {
        assert!(encode_into(&mut out, e, Precision::Nanoseconds), "{e:?}");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_then_decode_round_trips(evs in proptest::collection::vec(event(), 1..6)) {
        let text = encoded(&evs);
        let back: Vec<Event> = decode(&text, Precision::Nanoseconds, NO_TIME)
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(back, evs);
    }

    #[test]
    fn decode_encode_decode_gives_the_same_events(input in lineish()) {
        let first: Vec<Event> = decode(&input, Precision::Nanoseconds, NO_TIME).filter_map(Result::ok).collect();
        let text = encoded(&first);
        let again: Vec<Event> = decode(&text, Precision::Nanoseconds, NO_TIME)
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(again, first, "{:?} → {:?}", String::from_utf8_lossy(&input), text);
    }

    #[test]
    fn a_stream_in_any_chunks_decodes_as_the_whole(input in lineish(), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        let whole: Vec<_> = decode(&input, Precision::Nanoseconds, 0).collect();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut records = Records::new(Precision::Nanoseconds, usize::MAX);
        let (mut from, mut got) = (0, Vec::new());
        for cut in cuts {
            records.extend(&input[from..cut]);
            from = cut;
            records.decode(false, 0, |r| got.push(r));
        }
        records.extend(&input[from..]);
        records.decode(true, 0, |r| got.push(r));
        prop_assert_eq!(got, whole);
    }

    #[test]
    fn the_decoder_agrees_with_the_reference(input in lineish()) {
        let ours: Vec<_> = decode(&input, Precision::Nanoseconds, NO_TIME).map(|r| r.map_err(|_| ())).collect();
        let reference = reference::events(&input, NO_TIME);
        prop_assert_eq!(ours, reference, "{:?}", String::from_utf8_lossy(&input));
    }

    #[test]
    fn errors_name_a_line_and_column_inside_the_input(input in lineish()) {
        let lines = input.split(|&b| b == b'\n').count();
        for r in decode(&input, Precision::Nanoseconds, 0) {
            if let Err(e) = r {
                prop_assert!(e.line >= 1 && e.line <= lines && e.column >= 1, "{e}");
            }
        }
    }
}
