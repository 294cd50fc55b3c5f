//! gRPC's framing of a unary call, as much as OTLP/gRPC needs: a message
//! behind a one-byte compression flag and a four-byte big-endian length,
//! and the status in the answer's trailers.

use hyper::HeaderMap;
use hyper::header::HeaderValue;

/// gRPC status codes vane answers with.
pub const OK: u32 = 0;
pub const INVALID_ARGUMENT: u32 = 3;
pub const RESOURCE_EXHAUSTED: u32 = 8;
pub const UNIMPLEMENTED: u32 = 12;
pub const INTERNAL: u32 = 13;
pub const UNAVAILABLE: u32 = 14;
pub const UNAUTHENTICATED: u32 = 16;

/// The one message of a unary request's body: whether it is compressed,
/// and its bytes.
pub fn message(body: &[u8]) -> Result<(bool, &[u8]), String> {
    if body.len() < 5 {
        return Err(format!("a gRPC message needs a 5-byte prefix; the body has {} bytes", body.len()));
    }
    let compressed = match body[0] {
        0 => false,
        1 => true,
        f => return Err(format!("gRPC compression flag {f} is neither 0 nor 1")),
    };
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let rest = &body[5..];
    if rest.len() != len {
        return Err(format!("a unary call has one message of {len} bytes; the body holds {}", rest.len()));
    }
    Ok((compressed, rest))
}

/// The delay a server's `grpc-status-details-bin` asks for (a
/// `google.rpc.Status` whose details hold a `google.rpc.RetryInfo`), if any.
pub fn retry_delay(details_bin: &[u8]) -> Option<std::time::Duration> {
    use base64::Engine as _;
    use prost::Message as _;
    let trimmed: Vec<u8> = details_bin.iter().copied().filter(|b| *b != b'=').collect();
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed).ok()?;
    let status = super::proto::Status::decode(raw.as_slice()).ok()?;
    let info = status.details.iter().find(|a| a.type_url.ends_with("/google.rpc.RetryInfo"))?;
    let d = super::proto::RetryInfo::decode(info.value.as_slice()).ok()?.retry_delay?;
    let secs = u64::try_from(d.seconds).ok()?;
    Some(std::time::Duration::from_secs(secs) + std::time::Duration::from_nanos(u64::try_from(d.nanos).unwrap_or(0)))
}

/// A message framed, uncompressed.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 5);
    out.push(0);
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// The trailers of an answer: its status and, unless OK, its message
/// (percent-encoded as gRPC wants).
pub fn trailers(status: u32, message: &str) -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from(status));
    if status != OK {
        let enc: String = message
            .bytes()
            .map(|b| if (0x20..0x7f).contains(&b) && b != b'%' { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&enc) {
            t.insert("grpc-message", v);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_and_bad_ones_are_named() {
        let f = frame(b"abc");
        assert_eq!(message(&f).unwrap(), (false, &b"abc"[..]));
        assert!(message(b"\0\0\0").unwrap_err().contains("5-byte prefix"));
        assert!(message(b"\x02\0\0\0\0").unwrap_err().contains("flag 2"));
        assert!(message(b"\0\0\0\0\x05ab").unwrap_err().contains("5 bytes; the body holds 2"));
        let t = trailers(INVALID_ARGUMENT, "bad 100% é");
        assert_eq!(t["grpc-status"], "3");
        assert_eq!(t["grpc-message"], "bad 100%25 %C3%A9");
        assert!(!trailers(OK, "x").contains_key("grpc-message"));
    }

    #[test]
    fn a_retry_delay_is_read_from_the_status_details() {
        use crate::otlp::proto::{Any, ProtoDuration, RetryInfo, Status};
        use base64::Engine as _;
        use prost::Message as _;
        let info = RetryInfo { retry_delay: Some(ProtoDuration { seconds: 2, nanos: 500_000_000 }) };
        let status = Status {
            code: RESOURCE_EXHAUSTED as i32,
            message: "slow down".into(),
            details: vec![Any {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: info.encode_to_vec(),
            }],
        };
        let bin = base64::engine::general_purpose::STANDARD_NO_PAD.encode(status.encode_to_vec());
        assert_eq!(retry_delay(bin.as_bytes()), Some(std::time::Duration::from_millis(2500)));
        let padded = base64::engine::general_purpose::STANDARD.encode(status.encode_to_vec());
        assert_eq!(retry_delay(padded.as_bytes()), Some(std::time::Duration::from_millis(2500)));
        let none = Status { details: vec![], ..status };
        assert_eq!(
            retry_delay(base64::engine::general_purpose::STANDARD.encode(none.encode_to_vec()).as_bytes()),
            None
        );
        assert_eq!(retry_delay(b"*"), None);
    }
}
