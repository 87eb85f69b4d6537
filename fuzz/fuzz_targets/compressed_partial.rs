//! A compressed `.partial` as a crash (or anything else) left it: how many WAL bytes does it
//! hold? Never a panic, whatever the bytes and the method; never more than the limit; the
//! bytes handed over are exactly the count, the same every time; a clean stream cut short
//! holds a prefix of its content.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgwalrus_archive::compress::{Compression, StreamEnd, decode, held_bytes};

/// One 16 MiB segment: what the archive asks of a `.partial`.
const LIMIT: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let method = Compression::ALL[usize::from(selector) % Compression::ALL.len()];
    let held = held_bytes(method, file, LIMIT).expect("a byte slice never fails to read");
    assert!(held.bytes <= LIMIT);
    let mut out = Vec::new();
    let again = decode(method, file, LIMIT, |b| out.extend_from_slice(b)).expect("slice");
    assert_eq!(again, held);
    assert_eq!(out.len() as u64, held.bytes);
    if held.end == StreamEnd::OverLimit {
        assert_eq!(held.bytes, LIMIT);
    }
    // Cut short, a clean stream holds a prefix of its content. (Not asked of damaged
    // input: a zstd frame whose header promises another content size fails at the end of
    // its last block, taking that block's bytes along, which a shorter cut may still hand
    // over.)
    if held.end == StreamEnd::Finished {
        let half = &file[..file.len() / 2];
        let mut prefix = Vec::new();
        decode(method, half, LIMIT, |b| prefix.extend_from_slice(b)).expect("slice");
        assert!(out.starts_with(&prefix));
    }
});
