//! Physical replication: command text ([`commands`]), the `CopyData` payloads of the
//! stream ([`copyboth`]), and typed command results ([`results`]).

pub mod commands;
pub mod copyboth;
pub mod results;

pub use copyboth::{
    HotStandbyFeedback, PgTimestamp, PrimaryKeepalive, StandbyStatusUpdate, WalSenderMessage,
    XLogData,
};
pub use results::{
    CreatedSlot, EndOfTimeline, SlotInfo, SystemIdentity, TimelineHistoryFile, show_value,
};
