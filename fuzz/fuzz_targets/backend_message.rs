//! Backend message framing: any byte stream parses to messages or a typed error, never a
//! panic ([`pgwalrus_proto::fuzz::backend_message`]).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pgwalrus_proto::fuzz::backend_message(data);
});
