//! A single WAL record body (header, block references, main data): never a panic
//! ([`pgwalrus_wal::fuzz::decode_record_arbitrary`]).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgwalrus_wal::fuzz::decode_record_arbitrary(data);
});
