//! The engine's status as a value: the facts of PostgreSQL's `pg_stat_wal_receiver` plus
//! what an archive adds, published on a [`tokio::sync::watch`] channel. The engine updates
//! it in place as it goes (no allocation per message); readers — the live progress line,
//! `pgwalrus status`, `/status`, `/metrics` — take a copy when they want one.

use std::time::{Duration, SystemTime};

use pgwalrus_wal::names::SegmentName;
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};
use tokio::sync::watch;

/// What the engine is doing (`pg_stat_wal_receiver.status`, in pgwalrus's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum State {
    /// Connecting, identifying the server, choosing the start point.
    #[default]
    Starting,
    /// Receiving WAL.
    Streaming,
    /// The last session failed; waiting before the next connection attempt.
    Waiting,
    /// The archive's file system is full or under its free-space floor: nothing is written
    /// (everything written is intact and durable; the slot keeps the WAL on the server);
    /// retried with backoff until space returns.
    DiskFull,
    /// Shutdown or end position reached: making what was received durable.
    Stopping,
    /// Done ([`run`](crate::run) returned); see [`ReceiverStatus::last_error`] for why.
    Stopped,
}

impl State {
    /// The lower-case name used in status output and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Streaming => "streaming",
            State::Waiting => "waiting",
            State::DiskFull => "disk_full",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
        }
    }
}

/// A snapshot of one engine. Positions are [`Lsn::INVALID`] until known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverStatus {
    /// What the engine is doing.
    pub state: State,
    /// First position of the current session's stream (a segment start).
    pub receive_start_lsn: Lsn,
    /// Timeline the current session's stream started on.
    pub receive_start_tli: Option<TimeLineId>,
    /// End of the WAL received and checked (handed to the writer; maybe not yet written).
    pub received_lsn: Lsn,
    /// End of the WAL handed to the operating system.
    pub written_lsn: Lsn,
    /// End of the WAL that is durable (fsynced, in a durable file name).
    pub flushed_lsn: Lsn,
    /// Timeline of the WAL being received.
    pub received_tli: Option<TimeLineId>,
    /// When the server sent the last message received (its clock).
    pub last_msg_send_time: Option<SystemTime>,
    /// When the last message from the server arrived (our clock).
    pub last_msg_receipt_time: Option<SystemTime>,
    /// The server's end of WAL, as it last said.
    pub latest_end_lsn: Lsn,
    /// When the server said so (its clock).
    pub latest_end_time: Option<SystemTime>,
    /// When the received position last reached the server's end of WAL (our clock).
    pub caught_up_time: Option<SystemTime>,
    /// The replication slot streamed through.
    pub slot_name: Option<String>,
    /// The server streamed from: host name, address or socket directory.
    pub sender_host: Option<String>,
    /// Its port.
    pub sender_port: Option<u16>,
    /// The connection settings with any password masked, when the source knows them.
    pub conninfo: Option<String>,
    /// The server's WAL segment size.
    pub segment_size: Option<WalSegSize>,
    /// The server's system identifier (`IDENTIFY_SYSTEM`), once connected.
    pub system_identifier: Option<u64>,
    /// The last segment completed under its final name.
    pub last_completed_segment: Option<SegmentName>,
    /// Segments completed since the engine started.
    pub segments_completed: u64,
    /// Bytes of WAL received since the engine started.
    pub bytes_received: u64,
    /// Sessions that failed and were retried since the engine started.
    pub reconnects: u64,
    /// When the oldest received byte not yet durable arrived, while there is one (the age of
    /// what an OS crash would lose now).
    pub unflushed_since: Option<SystemTime>,
    /// The last error (a failed session, or the reason the engine stopped), whole chain.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_time: Option<SystemTime>,
}

impl ReceiverStatus {
    /// Bytes of WAL the server has that are not yet durable here (0 when unknown).
    pub fn bytes_behind(&self) -> u64 {
        self.latest_end_lsn
            .checked_distance(self.flushed_lsn)
            .unwrap_or(0)
    }

    /// How long the received position has been behind the server's end of WAL, at `now`:
    /// zero when caught up, `None` when it never was (or nothing is known yet).
    pub fn time_behind(&self, now: SystemTime) -> Option<Duration> {
        if self.latest_end_lsn.is_valid() && self.received_lsn >= self.latest_end_lsn {
            return Some(Duration::ZERO);
        }
        self.caught_up_time
            .map(|t| now.duration_since(t).unwrap_or_default())
    }

    /// Records what the server said about its end of WAL (a keepalive or XLogData).
    pub(crate) fn on_server_end(&mut self, end: Lsn, sent: SystemTime, received: SystemTime) {
        self.last_msg_send_time = Some(sent);
        self.last_msg_receipt_time = Some(received);
        if end > self.latest_end_lsn {
            self.latest_end_lsn = end;
            self.latest_end_time = Some(sent);
        }
        self.note_caught_up(received);
    }

    /// WAL up to `end` was received.
    pub(crate) fn on_received(&mut self, end: Lsn, now: SystemTime) {
        self.received_lsn = self.received_lsn.max(end);
        self.note_caught_up(now);
    }

    fn note_caught_up(&mut self, now: SystemTime) {
        if self.received_lsn >= self.latest_end_lsn {
            self.caught_up_time = Some(now);
        }
    }
}

/// The engine's side of the status channel.
pub type StatusSender = watch::Sender<ReceiverStatus>;

/// A reader's side of the status channel.
pub type StatusReceiver = watch::Receiver<ReceiverStatus>;

/// A new status channel, starting at [`State::Starting`].
pub fn channel() -> (StatusSender, StatusReceiver) {
    watch::channel(ReceiverStatus::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_is_measured_from_the_last_time_the_stream_caught_up() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut s = ReceiverStatus::default();
        assert_eq!(s.time_behind(t0), None);
        s.on_received(Lsn(100), t0);
        s.on_server_end(Lsn(100), t0, t0);
        assert_eq!(
            s.time_behind(t0 + Duration::from_secs(5)),
            Some(Duration::ZERO)
        );
        // The server moves ahead; we stay at 100 for 7 s.
        s.on_server_end(
            Lsn(500),
            t0 + Duration::from_secs(1),
            t0 + Duration::from_secs(1),
        );
        assert_eq!(
            s.time_behind(t0 + Duration::from_secs(7)),
            Some(Duration::from_secs(7))
        );
        s.flushed_lsn = Lsn(100);
        assert_eq!(s.bytes_behind(), 400);
        s.on_received(Lsn(500), t0 + Duration::from_secs(8));
        assert_eq!(
            s.time_behind(t0 + Duration::from_secs(9)),
            Some(Duration::ZERO)
        );
        // An end position never goes back.
        s.on_server_end(Lsn(300), t0, t0);
        assert_eq!(s.latest_end_lsn, Lsn(500));
    }
}
