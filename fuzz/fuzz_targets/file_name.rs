//! Archive file names found in a directory: never a panic; a parsed name prints back to the
//! same text ([`pgwalrus_wal::fuzz::file_name`]).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgwalrus_wal::fuzz::file_name(data);
});
