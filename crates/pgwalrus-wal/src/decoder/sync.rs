//! [`SyncPoint`]: the whole state of a [`WalDecoder`](super::WalDecoder) at a record
//! boundary, so that two decoders can be shown to agree from there on.

use crate::{Lsn, PgMajor};

/// The state that decides everything a decoder does from a record boundary on, given the
/// same segment size, [`Expectations`](super::Expectations) and input. See
/// [`WalDecoder::sync_point`](super::WalDecoder::sync_point).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPoint {
    pub(super) position: Lsn,
    pub(super) next_record: Lsn,
    pub(super) prev_record: Option<Lsn>,
    pub(super) last_tli: u32,
    pub(super) major: Option<PgMajor>,
    pub(super) system_id: Option<u64>,
    pub(super) validated_page: Option<Lsn>,
    pub(super) pending_aborted: Option<Lsn>,
    pub(super) finished: bool,
}

impl SyncPoint {
    /// Where the next record is looked for: the input from here on is what must be the
    /// same for two decoders at equal sync points to agree.
    pub fn position(&self) -> Lsn {
        self.position
    }

    /// The last record decoded (what the next record's `xl_prev` must name), if any.
    pub fn prev_record(&self) -> Option<Lsn> {
        self.prev_record
    }
}
