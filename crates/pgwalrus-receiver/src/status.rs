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
    /// How long the archive's data fsyncs took, since the engine started.
    pub fsync: FsyncHistogram,
}

/// Upper bounds of the [`FsyncHistogram`] buckets. An `fdatasync` of a few KiB on local
/// flash takes about 0.1 ms (91–147 µs measured on ext4 for the archive writer's
/// zero-ahead), one that completes a 16 MiB segment a few ms to tens of ms, a spinning disk
/// or network volume 5–50 ms, and a stalled device seconds. So the bounds start at 100 µs
/// (below it: a write cache or tmpfs) and go roughly ×2.5 per step, to tell those apart,
/// up to 10 s; 1 and 2.5 s frame the flush interval's promise (WAL durable within about
/// a second), which fsyncs that slow break on their own.
pub const FSYNC_BUCKETS: [Duration; 15] = [
    Duration::from_micros(100),
    Duration::from_micros(250),
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_micros(2_500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(2_500),
    Duration::from_secs(10),
];

/// A latency histogram of fsyncs (PostgreSQL's `wal_sync_time`, in Prometheus's shape):
/// how many took at most each of [`FSYNC_BUCKETS`], plus the count and total time.
/// Fixed buckets and integer counts, so recording one costs a few comparisons and copying
/// the status stays cheap; the total is a [`Duration`], so it stays exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsyncHistogram {
    /// Fsyncs per bucket, not cumulative: `buckets[i]` counts those longer than
    /// `FSYNC_BUCKETS[i - 1]` and at most `FSYNC_BUCKETS[i]`; the last one, those longer
    /// than every bound.
    buckets: [u64; FSYNC_BUCKETS.len() + 1],
    /// Fsyncs recorded.
    count: u64,
    /// Their total duration.
    sum: Duration,
}

impl FsyncHistogram {
    /// Records one fsync that took `took`.
    pub fn record(&mut self, took: Duration) {
        // A bound is inclusive, as Prometheus's `le` ("less than or equal") says.
        let i = FSYNC_BUCKETS.partition_point(|&bound| bound < took);
        self.buckets[i] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(took);
    }

    /// Adds what `other` recorded.
    pub fn merge(&mut self, other: &FsyncHistogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// Fsyncs recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their total duration.
    pub fn sum(&self) -> Duration {
        self.sum
    }

    /// Cumulative counts as Prometheus wants them: for each bound, the fsyncs that took at
    /// most that long, then `None` (`+Inf`) with the count of all.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<Duration>, u64)> + '_ {
        let bounds = FSYNC_BUCKETS.iter().copied().map(Some).chain([None]);
        bounds.zip(self.buckets.iter().scan(0, |total, n| {
            *total += n;
            Some(*total)
        }))
    }
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

    #[test]
    fn fsync_histogram_places_bounds_inclusively_and_counts_cumulatively() {
        let mut h = FsyncHistogram::default();
        assert!(h.cumulative().all(|(_, n)| n == 0));
        // Exactly on a bound belongs to it (`le`); just over goes to the next one.
        h.record(Duration::from_micros(100));
        h.record(Duration::from_micros(101));
        h.record(Duration::ZERO);
        h.record(Duration::from_millis(3));
        h.record(Duration::from_secs(10));
        // Over every bound: only in +Inf.
        h.record(Duration::from_secs(11));
        assert_eq!(h.count(), 6);
        assert_eq!(
            h.sum(),
            Duration::from_micros(100 + 101 + 3_000) + Duration::from_secs(21)
        );
        let cumulative: Vec<(Option<Duration>, u64)> = h.cumulative().collect();
        assert_eq!(cumulative.len(), FSYNC_BUCKETS.len() + 1);
        let at = |bound: Duration| {
            cumulative
                .iter()
                .find(|(b, _)| *b == Some(bound))
                .map(|(_, n)| *n)
                .unwrap()
        };
        assert_eq!(at(Duration::from_micros(100)), 2);
        assert_eq!(at(Duration::from_micros(250)), 3);
        assert_eq!(at(Duration::from_millis(1)), 3);
        assert_eq!(at(Duration::from_micros(2_500)), 3);
        assert_eq!(at(Duration::from_millis(5)), 4);
        assert_eq!(at(Duration::from_millis(2_500)), 4);
        assert_eq!(at(Duration::from_secs(10)), 5);
        assert_eq!(cumulative.last(), Some(&(None, 6)));
        // Never decreasing, and the bounds ascend.
        assert!(cumulative.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(FSYNC_BUCKETS.windows(2).all(|w| w[0] < w[1]));

        let mut total = FsyncHistogram::default();
        total.merge(&h);
        total.merge(&h);
        assert_eq!(total.count(), 12);
        assert_eq!(total.sum(), h.sum() * 2);
        assert_eq!(total.cumulative().last(), Some((None, 12)));
        assert_eq!(
            total.cumulative().nth(1),
            Some((Some(Duration::from_micros(250)), 6))
        );
    }
}
