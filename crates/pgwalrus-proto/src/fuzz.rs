//! Entry points for fuzzing: the `cargo fuzz` targets of `fuzz/` are one-liners over these,
//! and the saved corpora are replayed through them by this crate's tests (the regression
//! run on stable). Arbitrary bytes in; a panic is a bug.

use bytes::{Bytes, BytesMut};
use pgwalrus_wal::{Lsn, WalSegSize};

use crate::BackendMessage;
use crate::query::{QueryStep, ResultSet, SimpleQuery};
use crate::replication::{
    CreatedSlot, EndOfTimeline, HotStandbyFeedback, SlotInfo, StandbyStatusUpdate, SystemIdentity,
    TimelineHistoryFile, WalSenderMessage, show_value,
};

/// Backend message framing: any byte stream parses to messages or a typed error.
pub fn backend_message(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(msg)) = BackendMessage::parse(&mut buf) {
        let _ = msg.name();
    }
}

/// CopyBoth payloads from the walsender (`w`, `k`) and from a standby (`r`, `h`).
pub fn copyboth_payload(data: &[u8]) {
    let _ = WalSenderMessage::parse(&Bytes::copy_from_slice(data));
    let _ = StandbyStatusUpdate::parse(data);
    let _ = HotStandbyFeedback::parse(data);
}

/// Answers to replication commands (`IDENTIFY_SYSTEM`, `SHOW`, `TIMELINE_HISTORY`,
/// `READ_REPLICATION_SLOT`, `CREATE_REPLICATION_SLOT`, the end-of-timeline result set): the
/// bytes are framed and collected as simple queries' result sets, and every result set is
/// decoded by every typed decoder. What decodes holds positions that print back to the text
/// they came from, and a segment size that is a power of two.
pub fn replication_results(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let mut query = SimpleQuery::new();
    // Bounded: every parsed message consumes input; an error or a short frame stops it.
    while let Ok(Some(msg)) = BackendMessage::parse(&mut buf) {
        match query.handle(msg) {
            Ok(QueryStep::Read) => {}
            Ok(QueryStep::Done(outcome)) => {
                outcome.results.iter().for_each(decode_every_way);
                query = SimpleQuery::new();
            }
            // CopyBoth, or a server error at ReadyForQuery: the next query starts afresh.
            Ok(QueryStep::CopyBoth(_)) | Err(_) => query = SimpleQuery::new(),
        }
    }
}

fn decode_every_way(rs: &ResultSet) {
    if let Ok(id) = SystemIdentity::from_result(rs) {
        round_trips(id.xlogpos);
    }
    if let Ok(Some(slot)) = SlotInfo::from_result(rs)
        && let Some(lsn) = slot.restart_lsn
    {
        round_trips(lsn);
    }
    if let Ok(created) = CreatedSlot::from_result(rs) {
        round_trips(created.consistent_point);
    }
    if let Ok(eot) = EndOfTimeline::from_result(rs) {
        round_trips(eot.next_start);
    }
    let _ = TimelineHistoryFile::from_result(rs);
    if let Ok(value) = show_value(rs)
        && let Ok(size) = value.parse::<WalSegSize>()
    {
        assert!(size.bytes().is_power_of_two(), "{value:?} parsed to {size}");
    }
}

fn round_trips(lsn: Lsn) {
    assert_eq!(lsn.to_string().parse::<Lsn>().ok(), Some(lsn));
}

#[cfg(test)]
mod tests {
    use pgwalrus_wal::fuzz::replay;

    #[test]
    fn the_fuzz_corpora_replay_without_a_panic() {
        replay("backend_message", super::backend_message);
        replay("copyboth_payload", super::copyboth_payload);
        replay("replication_results", super::replication_results);
    }
}
