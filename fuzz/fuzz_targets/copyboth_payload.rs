//! CopyBoth payloads from the walsender (`w` XLogData, `k` keepalive) and from a standby
//! (`r`, `h`): arbitrary bytes never panic ([`pgwalrus_proto::fuzz::copyboth_payload`]).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgwalrus_proto::fuzz::copyboth_payload(data);
});
