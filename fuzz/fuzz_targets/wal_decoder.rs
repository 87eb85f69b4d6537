//! WAL pages and records read from archive files or the stream: the incremental decoder
//! never panics, whatever the bytes and however they are split
//! ([`pgwalrus_wal::fuzz::decode_arbitrary`]).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgwalrus_wal::fuzz::decode_arbitrary(data);
});
