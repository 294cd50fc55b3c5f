//! Checksummed records, the framing of every file vane appends to (the
//! disk buffer's segments, the board history): `[len: u32 LE][crc32: u32
//! LE][len bytes]`. A reader that meets a record whose checksum does not
//! match, or a file that ends inside a record, looks for the next offset
//! where a length and a checksum agree, so damage costs the records it hit,
//! not the rest of the file.

/// Bytes before each record's payload.
pub const HEADER: usize = 8;

/// Fills in the header of `rec`, whose first [`HEADER`] bytes were reserved
/// for it, from the payload after them.
pub fn seal(rec: &mut [u8]) {
    let crc = crc32fast::hash(&rec[HEADER..]);
    let len = (rec.len() - HEADER) as u32;
    rec[..4].copy_from_slice(&len.to_le_bytes());
    rec[4..HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// A header's payload length and checksum.
pub fn header(h: &[u8; HEADER]) -> (usize, u32) {
    (u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize, u32::from_le_bytes([h[4], h[5], h[6], h[7]]))
}

/// Whether `payload` is what a header with checksum `crc` sealed.
pub fn intact(payload: &[u8], crc: u32) -> bool {
    crc32fast::hash(payload) == crc
}

/// The first offset at or after `from` where a whole record with a
/// matching checksum starts.
pub fn next_intact(b: &[u8], from: usize) -> Option<usize> {
    let mut p = from;
    while p + HEADER <= b.len() {
        let (n, crc) = header(b[p..p + HEADER].try_into().expect("a header"));
        if n > 0 && p + HEADER + n <= b.len() && intact(&b[p + HEADER..p + HEADER + n], crc) {
            return Some(p);
        }
        p += 1;
    }
    None
}

/// What reading a whole file of records found.
#[derive(Debug, Default, PartialEq)]
pub struct Read<'a> {
    /// The intact records' payloads, in order.
    pub records: Vec<&'a [u8]>,
    /// Damaged stretches skipped, and their bytes.
    pub skipped: u64,
    pub skipped_bytes: u64,
    /// Where the last intact record ends: a writer that goes on appends here.
    pub end: usize,
}

/// Every intact record of `b`, skipping damage.
pub fn read_all(b: &[u8]) -> Read<'_> {
    let mut out = Read::default();
    let mut p = 0;
    while p < b.len() {
        let whole = p + HEADER <= b.len() && {
            let (n, crc) = header(b[p..p + HEADER].try_into().expect("a header"));
            p + HEADER + n <= b.len() && intact(&b[p + HEADER..p + HEADER + n], crc)
        };
        if whole {
            let (n, _) = header(b[p..p + HEADER].try_into().expect("a header"));
            out.records.push(&b[p + HEADER..p + HEADER + n]);
            p += HEADER + n;
            out.end = p;
            continue;
        }
        let next = next_intact(b, p + 1).unwrap_or(b.len());
        out.skipped += 1;
        out.skipped_bytes += (next - p) as u64;
        p = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(payload: &[u8]) -> Vec<u8> {
        let mut r = vec![0; HEADER];
        r.extend_from_slice(payload);
        seal(&mut r);
        r
    }

    #[test]
    fn records_read_back_and_damage_costs_only_what_it_hit() {
        let mut f = sealed(b"one");
        let second = f.len();
        f.extend(sealed(b"two"));
        f.extend(sealed(b"three"));
        let r = read_all(&f);
        assert_eq!(r.records, vec![&b"one"[..], b"two", b"three"]);
        assert_eq!((r.skipped, r.end), (0, f.len()));
        // A flipped byte in the second record's payload.
        let mut bad = f.clone();
        bad[second + HEADER] ^= 0xff;
        let r = read_all(&bad);
        assert_eq!(r.records, vec![&b"one"[..], b"three"]);
        assert_eq!((r.skipped, r.skipped_bytes), (1, (HEADER + 3) as u64));
        // A torn tail: the writer goes on after the last whole record.
        let torn = &f[..f.len() - 2];
        let r = read_all(torn);
        assert_eq!(r.records, vec![&b"one"[..], b"two"]);
        assert_eq!((r.skipped, r.end), (1, second + HEADER + 3));
    }
}
