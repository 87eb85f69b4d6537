//! A compressed `.partial` as a crash (or anything else) left it: how many WAL bytes does it
//! hold? Never a panic, never more than the limit, the same answer every time
//! ([`pgwalrus_archive::fuzz::compressed_partial`]).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgwalrus_archive::fuzz::compressed_partial(data);
});
