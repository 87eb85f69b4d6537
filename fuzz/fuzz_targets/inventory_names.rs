//! The archive's name listing: any directory listing makes the same inventory in any order,
//! keeping only names that were listed, never a panic
//! ([`pgwalrus_archive::fuzz::inventory_names`]).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgwalrus_archive::fuzz::inventory_names(data);
});
