//! The numbers of line protocol read straight from their bytes: integers
//! (`-?digits i`), unsigned integers (`digits u`), floats and timestamps.
//!
//! Integers are accumulated digit by digit and refused at the first digit
//! past their type's range, as the standard library's parser does, so
//! messages say "out of range" for the same inputs. A float written as a
//! plain decimal of at most 15 digits is computed exactly: its digits and
//! the power of ten it is divided by are both exact doubles, so the one
//! division rounds correctly (Clinger's fast path). Exponents and longer
//! decimals go to the standard library's parser.

use crate::event::Value;

/// Why a number could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bad {
    /// Not made of the digits its form allows.
    Form,
    /// Past the range of its type.
    Range,
}

/// Whether eight bytes are all ASCII digits.
#[inline]
fn all_digits(x: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    // Each byte is 0x30..=0x3F, and adding 6 keeps it there: 0x30..=0x39.
    x & HIGH == ZEROS && x.wrapping_add(0x0606_0606_0606_0606) & HIGH == ZEROS
}

/// Eight ASCII digits as their number, combined pairwise in one word (the
/// first digit is the lowest byte); `None` unless all eight are digits.
#[inline]
fn eight_digits(b: &[u8; 8]) -> Option<u64> {
    let x = u64::from_le_bytes(*b);
    if !all_digits(x) {
        return None;
    }
    let d = x - 0x3030_3030_3030_3030;
    let d = (d.wrapping_mul(10) + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d.wrapping_mul(100) + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((d.wrapping_mul(10_000) + (d >> 32)) & 0xFFFF_FFFF)
}

/// How many ASCII digits `b` starts with, eight at a time.
pub(super) fn digit_run(b: &[u8]) -> usize {
    let mut n = 0;
    while let Some(eight) = b[n..].first_chunk::<8>() {
        if !all_digits(u64::from_le_bytes(*eight)) {
            break;
        }
        n += 8;
    }
    n + b[n..].iter().position(|c| !c.is_ascii_digit()).unwrap_or(b.len() - n)
}

/// The largest number of eighteen digits.
const SAFE: u64 = 999_999_999_999_999_999;

/// Digits as an integer of at most `limit`.
fn digits(d: &[u8], limit: u64) -> Result<u64, Bad> {
    if d.is_empty() {
        return Err(Bad::Form);
    }
    // Eighteen digits make less than 10^18, within every limit asked for
    // here: they need no range check (a timestamp has nineteen).
    let (mut head, tail) = d.split_at(if limit >= SAFE { d.len().min(18) } else { 0 });
    let mut v: u64 = 0;
    while let Some((eight, rest)) = head.split_first_chunk::<8>() {
        v = v * 100_000_000 + eight_digits(eight).ok_or(Bad::Form)?;
        head = rest;
    }
    for &c in head {
        let x = c.wrapping_sub(b'0');
        if x > 9 {
            return Err(Bad::Form);
        }
        v = v * 10 + u64::from(x);
    }
    for &c in tail {
        let x = c.wrapping_sub(b'0');
        if x > 9 {
            return Err(Bad::Form);
        }
        v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(x))).filter(|&v| v <= limit).ok_or(Bad::Range)?;
    }
    Ok(v)
}

/// `-?digits` as an `i64`.
pub(super) fn integer(b: &[u8]) -> Result<i64, Bad> {
    match b.split_first() {
        // The magnitude of i64::MIN is one more than i64::MAX.
        Some((b'-', d)) => digits(d, 1 << 63).map(|m| (m as i64).wrapping_neg()),
        _ => digits(b, i64::MAX as u64).map(|m| m as i64),
    }
}

/// `digits` as a `u64`.
pub(super) fn unsigned(b: &[u8]) -> Result<u64, Bad> {
    digits(b, u64::MAX)
}

/// Powers of ten a double holds exactly.
const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// `-?digits[.digits]` (either side of the point may be empty, not both)
/// of at most 15 digits, exactly; `None` for any other form.
fn plain_decimal(b: &[u8]) -> Option<f64> {
    let (negative, d) = match b.split_first() {
        Some((b'-', d)) => (true, d),
        _ => (false, b),
    };
    let (mut m, mut count, mut point, mut after) = (0u64, 0usize, false, 0usize);
    for &c in d {
        match c {
            b'0'..=b'9' => {
                m = m * 10 + u64::from(c - b'0');
                count += 1;
                after += usize::from(point);
                if count > 15 {
                    return None;
                }
            }
            b'.' if !point => point = true,
            _ => return None,
        }
    }
    if count == 0 {
        return None;
    }
    let f = m as f64 / POW10[after];
    Some(if negative { -f } else { f })
}

/// A number field's value: `-?digits i`, `digits u`, or a decimal float.
pub(super) fn field(tok: &[u8]) -> Result<Value, &'static str> {
    // Only ASCII is ever a number.
    if !tok.is_ascii() {
        return Err("not a number");
    }
    let why = |b: Bad, form: &'static str| match b {
        Bad::Form => form,
        Bad::Range => "out of range",
    };
    match tok.split_last() {
        Some((b'i', i)) => return integer(i).map(Value::Int).map_err(|b| why(b, "not an integer")),
        Some((b'u', u)) => return unsigned(u).map(Value::Uint).map_err(|b| why(b, "not an unsigned integer")),
        _ => {}
    }
    if let Some(f) = plain_decimal(tok) {
        return Ok(Value::Float(f));
    }
    // Digits, point, exponent and signs only: no `inf`, `nan` or hex; a
    // minus first, or a sign after `e`.
    let well_formed = tok.iter().enumerate().all(|(i, &c)| match c {
        b'0'..=b'9' | b'.' | b'e' | b'E' => true,
        b'-' if i == 0 => true,
        b'-' | b'+' => i > 0 && matches!(tok[i - 1], b'e' | b'E'),
        _ => false,
    });
    if !well_formed {
        return Err("not a number");
    }
    // ASCII, checked above.
    let text = std::str::from_utf8(tok).map_err(|_| "not a number")?;
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Value::Float(f)),
        Ok(_) => Err("out of range"),
        Err(_) => Err("not a number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn eight_digits_at_once_read_as_one_at_a_time() {
        assert_eq!(eight_digits(b"12345678"), Some(12_345_678));
        assert_eq!(eight_digits(b"00000000"), Some(0));
        assert_eq!(eight_digits(b"99999999"), Some(99_999_999));
        for bad in [b"1234567:", b"/1234567", b"1234 678", b"12345\x8078"] {
            assert_eq!(eight_digits(bad), None, "{bad:?}");
        }
        assert_eq!(digit_run(b"1700000000000000000 "), 19);
        assert_eq!(digit_run(b"12345678x"), 8);
        assert_eq!(digit_run(b"x1"), 0);
        assert_eq!(digit_run(b""), 0);
    }

    proptest! {
        #[test]
        fn digits_read_as_the_standard_parser_reads_them(s in "[0-9]{0,24}[x0-9]?[0-9]{0,4}") {
            // Refused at the first digit past the range, as the standard parser does.
            let want = s.parse::<u64>().map_err(|e| match e.kind() {
                std::num::IntErrorKind::PosOverflow => Bad::Range,
                _ => Bad::Form,
            });
            prop_assert_eq!(unsigned(s.as_bytes()), want);
            let run = s.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(s.len());
            prop_assert_eq!(digit_run(s.as_bytes()), run);
        }
    }

    #[test]
    fn integers_stop_at_their_range() {
        assert_eq!(integer(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(integer(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(integer(b"9223372036854775808"), Err(Bad::Range));
        assert_eq!(integer(b"-9223372036854775809"), Err(Bad::Range));
        assert_eq!(unsigned(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(unsigned(b"18446744073709551616"), Err(Bad::Range));
        for bad in [&b""[..], b"-", b"+1", b"1-", b"--1", b"1.0", b" 1"] {
            assert_eq!(integer(bad), Err(Bad::Form), "{bad:?}");
        }
        assert_eq!(unsigned(b"-1"), Err(Bad::Form));
        assert_eq!(integer(b"-0"), Ok(0));
        assert_eq!(integer(b"007"), Ok(7));
    }

    #[test]
    fn plain_decimals_and_the_rest() {
        assert_eq!(field(b"-0"), Ok(Value::Float(-0.0)));
        assert!(matches!(field(b"-0"), Ok(Value::Float(f)) if f.is_sign_negative()));
        assert_eq!(field(b"5."), Ok(Value::Float(5.0)));
        assert_eq!(field(b".5"), Ok(Value::Float(0.5)));
        assert_eq!(field(b"1e3"), Ok(Value::Float(1000.0)));
        assert_eq!(field(b"1.7976931348623157e309"), Err("out of range"));
        for bad in [&b"."[..], b"1.2.3", b"inf", b"nan", b"1e", b"0x10", b"1_000", b"+1"] {
            assert!(field(bad).is_err(), "{bad:?}");
        }
        assert_eq!(field(b"12i"), Ok(Value::Int(12)));
        assert_eq!(field(b"12u"), Ok(Value::Uint(12)));
        assert_eq!(field(b"1.5i"), Err("not an integer"));
    }

    proptest! {
        /// Whatever the bytes, the fast paths agree with the standard
        /// library's parsers on what is accepted and on the value.
        #[test]
        fn agrees_with_the_standard_parsers(s in "-?[0-9]{0,22}(\\.[0-9]{0,22})?([eE][-+]?[0-9]{1,3})?[iu]?") {
            let std = if let Some(i) = s.strip_suffix('i') {
                i.parse::<i64>().ok().map(Value::Int)
            } else if let Some(u) = s.strip_suffix('u') {
                u.parse::<u64>().ok().map(Value::Uint)
            } else {
                s.parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::Float)
            };
            let ours = field(s.as_bytes()).ok();
            match (&ours, &std) {
                (Some(Value::Float(a)), Some(Value::Float(b))) => prop_assert_eq!(a.to_bits(), b.to_bits(), "{}", s),
                _ => prop_assert_eq!(ours, std, "{}", s),
            }
        }

        #[test]
        fn timestamps_as_the_standard_parser(s in "-?[0-9]{1,21}") {
            prop_assert_eq!(integer(s.as_bytes()).ok(), s.parse::<i64>().ok());
        }
    }
}
