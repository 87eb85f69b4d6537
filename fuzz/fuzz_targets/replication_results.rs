//! Answers to replication commands (IDENTIFY_SYSTEM, SHOW, TIMELINE_HISTORY,
//! READ_REPLICATION_SLOT, CREATE_REPLICATION_SLOT, the end-of-timeline result set) decode
//! to a typed answer or a typed error, never a panic
//! ([`pgwalrus_proto::fuzz::replication_results`]).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgwalrus_proto::fuzz::replication_results(data);
});
