//! Timeline history files from the server or the archive: never a panic
//! ([`pgwalrus_wal::fuzz::history_file`]).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgwalrus_wal::fuzz::history_file(data);
});
