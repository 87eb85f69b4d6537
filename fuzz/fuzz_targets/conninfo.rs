//! Connection strings and URIs from the command line or environment: never a panic; what
//! parses re-formats and parses to the same parameters ([`pgwalrus_client::fuzz::conninfo`]).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgwalrus_client::fuzz::conninfo(data);
});
