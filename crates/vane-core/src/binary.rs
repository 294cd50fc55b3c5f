//! A compact binary form of event batches, for disk buffers: cheaper to
//! write and read than any text format, and exact (every value keeps its
//! type). Not an interchange format: only vane reads it back.
//!
//! `batch = version(1) varint(count) event*`; strings are `varint(len)
//! bytes`; numbers are little-endian. Decoding checks every length and tag,
//! so damaged input is an error, never a panic.

use crate::event::{Event, Kind, State, Text, Value};

const VERSION: u8 = 1;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends a batch to `out`.
pub fn encode_batch(out: &mut Vec<u8>, batch: &[Event]) {
    out.push(VERSION);
    put_varint(out, batch.len() as u64);
    for e in batch {
        put_str(out, &e.name);
        out.extend_from_slice(&e.time.to_le_bytes());
        put_str(out, &e.host);
        put_varint(out, e.tags.len() as u64);
        for (k, v) in &e.tags {
            put_str(out, k);
            put_str(out, v);
        }
        put_varint(out, e.fields.len() as u64);
        for (k, v) in &e.fields {
            put_str(out, k);
            match v {
                Value::Float(f) => {
                    out.push(0);
                    out.extend_from_slice(&f.to_le_bytes());
                }
                Value::Int(i) => {
                    out.push(1);
                    out.extend_from_slice(&i.to_le_bytes());
                }
                Value::Uint(u) => {
                    out.push(2);
                    out.extend_from_slice(&u.to_le_bytes());
                }
                Value::Bool(b) => out.extend_from_slice(&[3, u8::from(*b)]),
                Value::Str(s) => {
                    out.push(4);
                    put_str(out, s);
                }
            }
        }
        out.push(match e.kind {
            Kind::Gauge => 0,
            Kind::Counter => 1,
            Kind::Delta => 2,
        });
        out.push(match e.state {
            None => 0,
            Some(State::Ok) => 1,
            Some(State::Warning) => 2,
            Some(State::Critical) => 3,
            Some(State::Unknown) => 4,
        });
        match &e.description {
            None => out.push(0),
            Some(d) => {
                out.push(1);
                put_str(out, d);
            }
        }
        match e.ttl {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                out.extend_from_slice(&t.to_le_bytes());
            }
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

type R<T> = Result<T, String>;

impl Reader<'_> {
    fn byte(&mut self) -> R<u8> {
        let v = *self.b.get(self.i).ok_or("truncated")?;
        self.i += 1;
        Ok(v)
    }

    fn bytes(&mut self, n: usize) -> R<&[u8]> {
        let end = self.i.checked_add(n).filter(|e| *e <= self.b.len()).ok_or("truncated")?;
        let s = &self.b[self.i..end];
        self.i = end;
        Ok(s)
    }

    fn varint(&mut self) -> R<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("bad varint".into())
    }

    fn len(&mut self) -> R<usize> {
        let n = self.varint()?;
        if n > (self.b.len() - self.i) as u64 {
            return Err("length past the end".into());
        }
        Ok(n as usize)
    }

    /// Reads a string into `dst`, keeping its allocation.
    fn string_into(&mut self, dst: &mut impl Refill) -> R<()> {
        let n = self.len()?;
        let s = std::str::from_utf8(self.bytes(n)?).map_err(|_| "not UTF-8")?;
        dst.refill(s);
        Ok(())
    }

    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().expect("8 bytes")))
    }
}

/// A string read into the room of the one it replaces.
trait Refill {
    fn refill(&mut self, s: &str);
}

impl Refill for String {
    fn refill(&mut self, s: &str) {
        self.clear();
        self.push_str(s);
    }
}

impl Refill for Text {
    fn refill(&mut self, s: &str) {
        self.clear();
        self.push_str(s);
    }
}

/// Reads a batch written by [`encode_batch`].
pub fn decode_batch(b: &[u8]) -> Result<Vec<Event>, crate::invalid::Invalid> {
    decode_batch_text(b).map_err(crate::invalid::Invalid)
}

fn decode_batch_text(b: &[u8]) -> Result<Vec<Event>, String> {
    let mut out = Vec::new();
    decode_batch_into_text(b, &mut out)?;
    Ok(out)
}

/// Reads a batch written by [`encode_batch`] into `out`, reusing the events
/// already there (their strings and tag and field slots), so that decoding
/// batches of the same shape allocates nothing. `out` ends up holding exactly
/// the batch's events; on an error its contents are unspecified.
pub fn decode_batch_into(b: &[u8], out: &mut Vec<Event>) -> Result<(), crate::invalid::Invalid> {
    decode_batch_into_text(b, out).map_err(crate::invalid::Invalid)
}

fn decode_batch_into_text(b: &[u8], out: &mut Vec<Event>) -> Result<(), String> {
    let mut r = Reader { b, i: 0 };
    if r.byte()? != VERSION {
        return Err("unknown version".into());
    }
    let n = r.len()?;
    out.truncate(n);
    out.reserve(n - out.len());
    for i in 0..n {
        if i == out.len() {
            out.push(Event::default());
        }
        let e = &mut out[i];
        r.string_into(&mut e.name)?;
        e.time = r.u64()? as i64;
        r.string_into(&mut e.host)?;
        let tags = r.len()?;
        e.tags.truncate(tags);
        for j in 0..tags {
            if j == e.tags.len() {
                e.tags.push(Default::default());
            }
            let (k, v) = &mut e.tags[j];
            r.string_into(k)?;
            r.string_into(v)?;
        }
        let fields = r.len()?;
        e.fields.truncate(fields);
        for j in 0..fields {
            if j == e.fields.len() {
                e.fields.push((Text::default(), Value::Bool(false)));
            }
            let (k, v) = &mut e.fields[j];
            r.string_into(k)?;
            *v = match r.byte()? {
                0 => Value::Float(f64::from_bits(r.u64()?)),
                1 => Value::Int(r.u64()? as i64),
                2 => Value::Uint(r.u64()?),
                3 => Value::Bool(r.byte()? != 0),
                4 => {
                    let mut s = match std::mem::replace(v, Value::Bool(false)) {
                        Value::Str(s) => s,
                        _ => String::new(),
                    };
                    r.string_into(&mut s)?;
                    Value::Str(s)
                }
                t => return Err(format!("unknown value type {t}")),
            };
        }
        e.kind = match r.byte()? {
            0 => Kind::Gauge,
            1 => Kind::Counter,
            2 => Kind::Delta,
            k => return Err(format!("unknown kind {k}")),
        };
        e.state = match r.byte()? {
            0 => None,
            1 => Some(State::Ok),
            2 => Some(State::Warning),
            3 => Some(State::Critical),
            4 => Some(State::Unknown),
            s => return Err(format!("unknown state {s}")),
        };
        match r.byte()? {
            0 => e.description = None,
            _ => r.string_into(e.description.get_or_insert_with(String::new))?,
        }
        e.ttl = match r.byte()? {
            0 => None,
            _ => Some(f64::from_bits(r.u64()?)),
        };
    }
    if r.i != b.len() {
        return Err("bytes after the batch".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    prop_compose! {
        fn event()(
            name in ".{0,8}", time in any::<i64>(), host in ".{0,6}",
            tags in proptest::collection::vec((".{0,5}", ".{0,5}"), 0..3),
            floats in proptest::collection::vec((".{0,4}", any::<f64>().prop_filter("not NaN", |f| !f.is_nan())), 0..3),
            ints in proptest::collection::vec((".{0,4}", any::<i64>()), 0..2),
            uints in proptest::collection::vec((".{0,4}", any::<u64>()), 0..2),
            strs in proptest::collection::vec((".{0,4}", ".{0,6}"), 0..2),
            flag in any::<bool>(), kind in 0u8..3, state in 0u8..5,
            description in proptest::option::of(".{0,8}"), ttl in proptest::option::of(0.0f64..1e6),
        ) -> Event {
            let mut e = Event::new(name).at(time).host(host);
            e.tags = tags.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
            e.fields.extend(floats.into_iter().map(|(k, v)| (k.into(), Value::Float(v))));
            e.fields.extend(ints.into_iter().map(|(k, v)| (k.into(), Value::Int(v))));
            e.fields.extend(uints.into_iter().map(|(k, v)| (k.into(), Value::Uint(v))));
            e.fields.extend(strs.into_iter().map(|(k, v)| (k.into(), Value::Str(v))));
            e.fields.push(("flag".into(), Value::Bool(flag)));
            e.kind = [Kind::Gauge, Kind::Counter, Kind::Delta][kind as usize];
            e.state = [None, Some(State::Ok), Some(State::Warning), Some(State::Critical), Some(State::Unknown)][state as usize];
            e.description = description;
            e.ttl = ttl;
            e
        }
    }

    proptest! {
        #[test]
        fn batches_round_trip(batch in proptest::collection::vec(event(), 0..6)) {
            let mut b = Vec::new();
            encode_batch(&mut b, &batch);
            prop_assert_eq!(decode_batch(&b).unwrap(), batch);
        }

        #[test]
        fn decoding_into_a_used_batch_gives_the_same_events(
            first in proptest::collection::vec(event(), 0..6),
            second in proptest::collection::vec(event(), 0..6),
        ) {
            // Whatever shape the reused events had, none of it shows through.
            let mut reused = Vec::new();
            for batch in [&first, &second, &first] {
                let mut b = Vec::new();
                encode_batch(&mut b, batch);
                decode_batch_into(&b, &mut reused).unwrap();
                prop_assert_eq!(&reused, batch);
            }
        }

        #[test]
        fn damaged_input_is_an_error_not_a_panic(batch in proptest::collection::vec(event(), 1..3), cut in 0usize..400, flip in 0usize..400) {
            let mut b = Vec::new();
            encode_batch(&mut b, &batch);
            let mut damaged = b.clone();
            if !damaged.is_empty() {
                let at = flip % damaged.len();
                damaged[at] ^= 0xa5;
            }
            let _ = decode_batch(&damaged);
            let _ = decode_batch(&b[..cut.min(b.len())]);
        }
    }
}
