//! WAL page headers read from archive files: never a panic
//! ([`pgwalrus_wal::fuzz::page_header`]).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgwalrus_wal::fuzz::page_header(data);
});
