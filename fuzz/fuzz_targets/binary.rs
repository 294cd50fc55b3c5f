//! Fuzzes the disk buffer's record decoder: it must never panic, decoding
//! into a batch that held other events must give exactly what a fresh
//! decode gives, and whatever decodes must encode and decode again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vane_core::binary::{decode_batch, decode_batch_into, encode_batch};

fuzz_target!(|data: &[u8]| {
    // Two records: the first fills the reused batch, the second is read into it.
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let (a, b) = rest.split_at((cut as usize).min(rest.len()));
    let mut reused = Vec::new();
    for record in [a, b] {
        let fresh = decode_batch(record);
        let into = decode_batch_into(record, &mut reused);
        assert_eq!(fresh.is_ok(), into.is_ok());
        if let Ok(fresh) = fresh {
            // Compared as bytes: a NaN field is not equal to itself.
            let (mut x, mut y) = (Vec::new(), Vec::new());
            encode_batch(&mut x, &fresh);
            encode_batch(&mut y, &reused);
            assert_eq!(x, y);
            // Re-encoded, it reads back to the same (canonical) bytes.
            let again = decode_batch(&x).expect("an encoded batch decodes");
            let mut z = Vec::new();
            encode_batch(&mut z, &again);
            assert_eq!(x, z);
        }
    }
});
