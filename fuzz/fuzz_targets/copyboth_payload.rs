//! CopyBoth payloads from the walsender (`w` XLogData, `k` keepalive) and from a standby
//! (`r`, `h`): arbitrary bytes never panic.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pgwalrus_proto::replication::{HotStandbyFeedback, StandbyStatusUpdate, WalSenderMessage};

fuzz_target!(|data: &[u8]| {
    let _ = WalSenderMessage::parse(&Bytes::copy_from_slice(data));
    let _ = StandbyStatusUpdate::parse(data);
    let _ = HotStandbyFeedback::parse(data);
});
