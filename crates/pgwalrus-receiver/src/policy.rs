//! The receiver's policy, sans-IO: what to report to the server and when, when to ask the
//! writer for an fsync, and when to stop. Time is an argument; the session loop
//! (`stream.rs`) owns the clock, the socket and the writer, and carries out the [`Action`]s
//! this returns.
//!
//! The rules (pg_receivewal's, where it is right):
//! - `write` = end of the last byte the writer handed to the operating system (not merely
//!   queued to it); `flush` = end of the last byte the writer reported durable, never
//!   more; `apply` = 0 (we never replay).
//! - `flush` is reported only with a slot or in synchronous mode; otherwise 0, so a slot-less
//!   receiver can never satisfy `synchronous_commit` by accident.
//! - A keepalive that asks for a reply is answered at once; when flush is reported and data is
//!   not yet durable, an fsync goes first so a server shutdown waiting on us is not blocked.
//! - A status update goes out every `status_interval` (none when it is `None`); when flush is
//!   reported, the periodic update is preceded by an fsync so the slot keeps advancing.
//! - A server that says nothing for half the receive timeout is asked for a reply (a status
//!   update with the reply flag, as PostgreSQL's walreceiver does at half of
//!   `wal_receiver_timeout`); one silent for the whole timeout is given up on
//!   ([`Action::PeerSilent`]), so a connection whose other end vanished without a FIN is
//!   noticed in bounded time, not after the kernel's keepalive (hours).
//! - While WAL flows, nothing stays un-fsynced longer than the flush interval (default 1 s):
//!   an fsync is requested once the oldest byte not yet durable is that old, and the durable
//!   position is reported as soon as it returns (with a slot or in synchronous mode). An OS
//!   crash then loses at most that much, and the server's `flush_lsn` for the archive (and
//!   the slot) trails by at most that much — pg_receivewal fsyncs only at segment ends.
//! - In synchronous mode the writer fsyncs once the WAL waiting to be written is written
//!   (one fsync covers every chunk that arrived meanwhile) and every durable position goes
//!   out the moment it is reported.

use std::time::{Duration, Instant};

use pgwalrus_wal::Lsn;

/// How the receiver talks back to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackPolicy {
    /// Interval between unsolicited status updates; `None` disables them (`-s 0`).
    pub status_interval: Option<Duration>,
    /// Whether to report a flush position at all (slot or `--synchronous`).
    pub report_flush: bool,
    /// `--synchronous`: fsync as data arrives and report each durable position at once.
    pub synchronous: bool,
    /// How long the server may stay silent before the connection is given up; `None`
    /// waits forever.
    pub receive_timeout: Option<Duration>,
    /// Longest time a received byte stays un-fsynced while WAL flows; `None` fsyncs only
    /// when a segment completes (and when the server asks for a reply or a status is due).
    pub flush_interval: Option<Duration>,
}

/// What the session loop must do next, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ask the writer to fsync everything written so far; it answers with the durable LSN,
    /// which goes back in through [`ReceiverCore::on_synced`].
    Sync,
    /// Send a standby status update with these positions.
    SendStatus {
        /// Write position.
        write: Lsn,
        /// Flush position (0 when not reported).
        flush: Lsn,
        /// Ask the server to answer at once (used to probe a silent connection).
        reply_requested: bool,
    },
    /// Everything up to `--endpos` is durable: stop cleanly.
    Stop,
    /// Nothing arrived from the server for the whole receive timeout, a reply request
    /// included: give the connection up.
    PeerSilent,
}

/// Up to three actions, without allocating on the hot path.
pub type Actions = smallvec_lite::Small<Action>;

/// The receiver's state between messages.
#[derive(Debug)]
pub struct ReceiverCore {
    policy: FeedbackPolicy,
    endpos: Option<Lsn>,
    /// End of the WAL handed to the writer (maybe queued, not yet written).
    received: Lsn,
    /// End of the WAL the writer has handed to the operating system.
    written: Lsn,
    flush: Lsn,
    last_status: Option<Instant>,
    /// A reply owed to the server, to be sent once the pending sync completes.
    reply_after_sync: bool,
    sync_pending: bool,
    stopping: bool,
    /// When the server was last heard from (`None` before the start).
    last_heard: Option<Instant>,
    /// A reply was requested since then.
    pinged: bool,
    /// When the oldest byte not yet durable arrived (about), while there is one.
    unflushed_since: Option<Instant>,
    /// When the pending fsync was requested: bytes it does not cover arrived after it.
    sync_requested_at: Option<Instant>,
    /// Upper bound of the reported flush position, when another stage sets one.
    cap: Option<Lsn>,
}

impl ReceiverCore {
    /// A receiver that starts streaming at `start` (nothing received or durable beyond it).
    pub fn new(policy: FeedbackPolicy, start: Lsn, endpos: Option<Lsn>) -> Self {
        Self {
            policy,
            endpos,
            received: start,
            written: start,
            flush: start,
            last_status: None,
            reply_after_sync: false,
            sync_pending: false,
            stopping: false,
            last_heard: None,
            pinged: false,
            unflushed_since: None,
            sync_requested_at: None,
            cap: None,
        }
    }

    /// When the oldest byte not yet durable arrived (about), if there is one.
    pub fn unflushed_since(&self) -> Option<Instant> {
        self.unflushed_since
    }

    /// A message (WAL or keepalive) arrived from the server.
    pub fn on_heard(&mut self, now: Instant) {
        self.last_heard = Some(now);
        self.pinged = false;
    }

    /// The write position (end of received data).
    pub fn write_lsn(&self) -> Lsn {
        self.written.max(self.flush)
    }

    /// End of the WAL received and handed to the writer (it may still be queued).
    pub fn received_lsn(&self) -> Lsn {
        self.received
    }

    /// The writer handed everything up to `lsn` to the operating system. Only this moves
    /// the reported write position: a queued chunk is not written, and saying so would let
    /// `synchronous_commit = remote_write` acknowledge a commit that a crash of pgwalrus
    /// loses.
    pub fn on_written(&mut self, lsn: Lsn) {
        self.written = self.written.max(lsn);
    }

    /// The durable position.
    pub fn flush_lsn(&self) -> Lsn {
        self.flush
    }

    /// The flush position to put in a status update: the durable position with a slot or in
    /// synchronous mode, 0 otherwise.
    pub fn reported_flush(&self) -> Lsn {
        if self.policy.report_flush {
            self.cap.map_or(self.flush, |cap| self.flush.min(cap))
        } else {
            Lsn::INVALID
        }
    }

    /// Caps the reported flush position at `cap` (another stage's position, such as what an
    /// object-storage archive holds). A rising cap in synchronous mode is reported at once:
    /// a commit may be waiting on it.
    pub fn set_flush_cap(&mut self, cap: Lsn, now: Instant) -> Actions {
        let before = self.reported_flush();
        self.cap = Some(cap);
        let mut out = Actions::new();
        if self.policy.synchronous && self.reported_flush() > before {
            out.push(self.status(now, false));
        }
        out
    }

    fn status(&mut self, now: Instant, reply_requested: bool) -> Action {
        self.last_status = Some(now);
        Action::SendStatus {
            write: self.write_lsn(),
            flush: self.reported_flush(),
            reply_requested,
        }
    }

    fn request_sync(&mut self, out: &mut Actions) {
        if !self.sync_pending {
            self.sync_pending = true;
            out.push(Action::Sync);
        }
    }

    /// Request time of the pending sync, for [`ReceiverCore::on_synced`].
    fn note_sync_request(&mut self, now: Instant) {
        if !self.sync_pending {
            self.sync_requested_at = Some(now);
        }
    }

    /// Call first, right after START_REPLICATION succeeded: the initial status update, as
    /// pg_receivewal sends, so the server sees our position at once; and a stop when the
    /// archive already holds everything up to `--endpos` (the start is a segment boundary
    /// with complete segments before it), since no WAL may ever arrive to trigger one.
    pub fn on_start(&mut self, now: Instant) -> Actions {
        self.on_heard(now);
        let mut out = Actions::new();
        out.push(self.status(now, false));
        if self.endpos.is_some_and(|e| self.flush >= e) {
            self.endpos = None;
            out.push(Action::Stop);
        }
        out
    }

    /// `len` bytes of WAL ending at `end` were handed to the writer.
    pub fn on_data(&mut self, end: Lsn, now: Instant) -> Actions {
        let mut out = Actions::new();
        if end > self.received {
            self.received = end;
            if end > self.flush && self.unflushed_since.is_none() {
                self.unflushed_since = Some(now);
            }
        }
        if let Some(endpos) = self.endpos
            && self.received >= endpos
            && !self.stopping
        {
            self.stopping = true;
            if self.flush < endpos {
                self.note_sync_request(now);
                self.request_sync(&mut out);
            } else {
                out.push(Action::Stop);
            }
        }
        out
    }

    /// A keepalive arrived.
    pub fn on_keepalive(&mut self, reply_requested: bool, now: Instant) -> Actions {
        let mut out = Actions::new();
        if !reply_requested {
            return out;
        }
        if self.policy.report_flush && self.flush < self.received {
            // The reply carries the flush position: make it as fresh as possible first.
            self.reply_after_sync = true;
            self.note_sync_request(now);
            self.request_sync(&mut out);
        } else {
            out.push(self.status(now, false));
        }
        out
    }

    /// The writer answered an [`Action::Sync`]: everything up to `lsn` is durable.
    pub fn on_synced(&mut self, lsn: Lsn, now: Instant) -> Actions {
        self.sync_pending = false;
        // What the sync did not cover arrived after it was asked for.
        let since = self.sync_requested_at.take().unwrap_or(now);
        let mut out = self.advance_flush(lsn, now);
        if self.flush < self.received {
            self.unflushed_since = Some(since);
        }
        if self.reply_after_sync {
            self.reply_after_sync = false;
            if !out.iter().any(|a| matches!(a, Action::SendStatus { .. })) {
                out.push(self.status(now, false));
            }
        }
        self.check_stop(&mut out);
        out
    }

    /// The writer made more durable on its own: a segment was completed, or (synchronous
    /// mode) it synced a group of writes, or zero-ahead synced.
    pub fn on_flushed(&mut self, lsn: Lsn, now: Instant) -> Actions {
        let mut out = self.advance_flush(lsn, now);
        self.check_stop(&mut out);
        out
    }

    fn advance_flush(&mut self, lsn: Lsn, now: Instant) -> Actions {
        let mut out = Actions::new();
        if lsn > self.flush {
            let reported = self.reported_flush();
            self.flush = lsn;
            self.unflushed_since = (self.flush < self.received).then_some(now);
            // Synchronous mode: a commit waits on this very position; say it now. With a
            // flush interval too: its clock restarts here (what is still not durable arrived
            // after this point), so a position made durable by the writer on its own (a
            // segment's completion) and kept for the next interval's report would reach the
            // server up to two intervals late — the server's flush_lsn trailing by more than
            // the interval promises.
            if self.policy.synchronous
                || (self.policy.flush_interval.is_some() && self.reported_flush() > reported)
            {
                out.push(self.status(now, false));
            }
        }
        out
    }

    fn check_stop(&mut self, out: &mut Actions) {
        if self.stopping && self.endpos.is_some_and(|e| self.flush >= e) {
            self.stopping = false;
            self.endpos = None;
            out.push(Action::Stop);
        }
    }

    /// When [`ReceiverCore::on_tick`] should next be called, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let status = self
            .policy
            .status_interval
            .and_then(|interval| self.last_status?.checked_add(interval));
        let silence = self.policy.receive_timeout.and_then(|timeout| {
            let heard = self.last_heard?;
            if self.pinged {
                heard.checked_add(timeout)
            } else {
                heard.checked_add(timeout / 2)
            }
        });
        let flush = match (self.policy.flush_interval, self.unflushed_since) {
            (Some(interval), Some(since)) if !self.sync_pending => since.checked_add(interval),
            _ => None,
        };
        [status, silence, flush].into_iter().flatten().min()
    }

    /// Time passed: give up on a silent server, ask it for a reply, or send the periodic
    /// status update, whichever is due.
    pub fn on_tick(&mut self, now: Instant) -> Actions {
        let mut out = Actions::new();
        if let (Some(timeout), Some(heard)) = (self.policy.receive_timeout, self.last_heard) {
            let silent = now.saturating_duration_since(heard);
            if silent >= timeout {
                out.push(Action::PeerSilent);
                return out;
            }
            if silent >= timeout / 2 && !self.pinged {
                self.pinged = true;
                self.last_status = Some(now);
                out.push(Action::SendStatus {
                    write: self.write_lsn(),
                    flush: self.reported_flush(),
                    reply_requested: true,
                });
                return out;
            }
        }
        if let (Some(interval), Some(since)) = (self.policy.flush_interval, self.unflushed_since)
            && !self.sync_pending
            && now.saturating_duration_since(since) >= interval
        {
            // The oldest byte not yet durable is that old: fsync, then say so.
            self.note_sync_request(now);
            self.reply_after_sync |= self.policy.report_flush;
            self.request_sync(&mut out);
            return out;
        }
        let due = self
            .policy
            .status_interval
            .and_then(|interval| self.last_status?.checked_add(interval))
            .is_some_and(|d| now >= d);
        if !due {
            return out;
        }
        if self.policy.report_flush && self.flush < self.received {
            self.reply_after_sync = true;
            self.note_sync_request(now);
            self.request_sync(&mut out);
            // Do not fire again while the sync runs.
            self.last_status = Some(now);
        } else {
            out.push(self.status(now, false));
        }
        out
    }
}

/// A tiny inline vector: the core never returns more than a handful of actions.
pub mod smallvec_lite {
    /// Up to four items inline.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Small<T: Copy> {
        items: [Option<T>; 4],
        len: usize,
    }

    impl<T: Copy> Small<T> {
        /// Empty.
        pub fn new() -> Self {
            Self {
                items: [None; 4],
                len: 0,
            }
        }

        /// Appends; the core's call sites push at most three, so a fifth is a logic error
        /// that debug builds catch and release builds drop.
        pub fn push(&mut self, item: T) {
            debug_assert!(self.len < self.items.len(), "too many receiver actions");
            if let Some(slot) = self.items.get_mut(self.len) {
                *slot = Some(item);
                self.len += 1;
            }
        }

        /// The items in order.
        pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
            self.items.iter().take(self.len).flatten().copied()
        }

        /// Number of items.
        pub fn len(&self) -> usize {
            self.len
        }

        /// Whether there are none.
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }
    }

    impl<T: Copy> Default for Small<T> {
        fn default() -> Self {
            Self::new()
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests need some Instant to start from"
)]
mod tests {
    use super::*;

    fn lsn(v: u64) -> Lsn {
        Lsn(v)
    }

    fn policy(report_flush: bool, synchronous: bool) -> FeedbackPolicy {
        FeedbackPolicy {
            status_interval: Some(Duration::from_secs(10)),
            report_flush,
            synchronous,
            receive_timeout: None,
            flush_interval: None,
        }
    }

    fn collect(a: Actions) -> Vec<Action> {
        a.iter().collect()
    }

    #[test]
    fn without_slot_flush_is_never_reported() {
        let t0 = Instant::now();
        let mut core = ReceiverCore::new(policy(false, false), lsn(100), None);
        assert_eq!(
            collect(core.on_start(t0)),
            vec![Action::SendStatus {
                write: lsn(100),
                flush: Lsn::INVALID,
                reply_requested: false
            }]
        );
        assert!(core.on_data(lsn(200), t0).is_empty());
        core.on_written(lsn(200));
        assert_eq!(
            collect(core.on_keepalive(true, t0)),
            vec![Action::SendStatus {
                write: lsn(200),
                flush: Lsn::INVALID,
                reply_requested: false
            }]
        );
    }

    #[test]
    fn a_flush_cap_bounds_the_reported_flush_and_a_rise_is_said_at_once_when_synchronous() {
        let t0 = Instant::now();
        let mut core = ReceiverCore::new(policy(true, true), lsn(100), None);
        assert!(core.set_flush_cap(Lsn::INVALID, t0).is_empty());
        core.on_start(t0);
        core.on_data(lsn(300), t0);
        core.on_written(lsn(300));
        core.on_flushed(lsn(300), t0);
        assert_eq!(core.reported_flush(), Lsn::INVALID, "nothing shipped yet");
        assert_eq!(
            core.flush_lsn(),
            lsn(300),
            "the local position is unchanged"
        );
        assert_eq!(
            collect(core.set_flush_cap(lsn(200), t0)),
            vec![Action::SendStatus {
                write: lsn(300),
                flush: lsn(200),
                reply_requested: false
            }]
        );
        // Past the local position, the local position is what counts.
        core.set_flush_cap(lsn(900), t0);
        assert_eq!(core.reported_flush(), lsn(300));
        // Not synchronous: the next status carries it; nothing is sent at once.
        let mut quiet = ReceiverCore::new(policy(true, false), lsn(100), None);
        quiet.on_start(t0);
        assert!(quiet.set_flush_cap(lsn(100), t0).is_empty());
    }

    #[test]
    fn keepalive_reply_waits_for_fsync_when_flush_is_reported() {
        let t0 = Instant::now();
        let mut core = ReceiverCore::new(policy(true, false), lsn(100), None);
        core.on_start(t0);
        core.on_data(lsn(300), t0);
        assert_eq!(collect(core.on_keepalive(true, t0)), vec![Action::Sync]);
        // A second request while the sync runs does not queue another sync.
        assert!(core.on_keepalive(true, t0).is_empty());
        assert_eq!(
            collect(core.on_synced(lsn(300), t0)),
            vec![Action::SendStatus {
                write: lsn(300),
                flush: lsn(300),
                reply_requested: false
            }]
        );
    }

    #[test]
    fn synchronous_mode_reports_each_durable_position_at_once() {
        let t0 = Instant::now();
        let mut core = ReceiverCore::new(policy(true, true), lsn(0), None);
        core.on_start(t0);
        assert!(
            core.on_data(lsn(500), t0).is_empty(),
            "the writer group-flushes by itself"
        );
        assert_eq!(
            collect(core.on_flushed(lsn(500), t0)),
            vec![Action::SendStatus {
                write: lsn(500),
                flush: lsn(500),
                reply_requested: false
            }]
        );
        core.on_data(lsn(900), t0);
        // A stale report never moves flush backwards, and says nothing.
        assert!(core.on_flushed(lsn(400), t0).is_empty());
        assert_eq!(core.flush_lsn(), lsn(500));
    }

    #[test]
    fn flush_never_exceeds_what_the_writer_reported() {
        let t0 = Instant::now();
        let mut core = ReceiverCore::new(policy(true, false), lsn(0), None);
        core.on_start(t0);
        core.on_data(lsn(900), t0);
        // A completed segment moves flush without a request; nothing is sent outside
        // synchronous mode.
        assert!(core.on_flushed(lsn(512), t0).is_empty());
        assert_eq!(core.flush_lsn(), lsn(512));
        assert_eq!(collect(core.on_keepalive(true, t0)), vec![Action::Sync]);
        assert_eq!(
            collect(core.on_synced(lsn(900), t0)),
            vec![Action::SendStatus {
                write: lsn(900),
                flush: lsn(900),
                reply_requested: false
            }]
        );
    }

    #[test]
    fn periodic_status_follows_the_interval() {
        let t0 = Instant::now();
        let mut core = ReceiverCore::new(policy(false, false), lsn(0), None);
        core.on_start(t0);
        assert_eq!(core.next_deadline(), Some(t0 + Duration::from_secs(10)));
        assert!(core.on_tick(t0 + Duration::from_secs(9)).is_empty());
        core.on_data(lsn(10), t0);
        core.on_written(lsn(10));
        assert_eq!(
            collect(core.on_tick(t0 + Duration::from_secs(10))),
            vec![Action::SendStatus {
                write: lsn(10),
                flush: Lsn::INVALID,
                reply_requested: false
            }]
        );
        assert_eq!(core.next_deadline(), Some(t0 + Duration::from_secs(20)));
    }

    #[test]
    fn write_is_what_the_writer_wrote_not_what_was_queued() {
        let t0 = Instant::now();
        let mut core = ReceiverCore::new(policy(false, false), lsn(100), None);
        core.on_start(t0);
        core.on_data(lsn(900), t0);
        assert_eq!(core.received_lsn(), lsn(900));
        assert_eq!(
            collect(core.on_keepalive(true, t0)),
            vec![Action::SendStatus {
                write: lsn(100),
                flush: Lsn::INVALID,
                reply_requested: false
            }],
            "queued bytes are not written"
        );
        core.on_written(lsn(600));
        core.on_written(lsn(500));
        assert_eq!(core.write_lsn(), lsn(600), "never backwards");
    }

    #[test]
    fn zero_interval_disables_periodic_status() {
        let t0 = Instant::now();
        let p = FeedbackPolicy {
            status_interval: None,
            report_flush: true,
            synchronous: false,
            receive_timeout: None,
            flush_interval: None,
        };
        let mut core = ReceiverCore::new(p, lsn(0), None);
        core.on_start(t0);
        assert_eq!(core.next_deadline(), None);
        assert!(core.on_tick(t0 + Duration::from_secs(3600)).is_empty());
    }

    #[test]
    fn periodic_status_with_slot_syncs_first() {
        let t0 = Instant::now();
        let mut core = ReceiverCore::new(policy(true, false), lsn(0), None);
        core.on_start(t0);
        core.on_data(lsn(10), t0);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(collect(core.on_tick(t1)), vec![Action::Sync]);
        assert!(core.on_tick(t1).is_empty());
        assert_eq!(
            collect(core.on_synced(lsn(10), t1)),
            vec![Action::SendStatus {
                write: lsn(10),
                flush: lsn(10),
                reply_requested: false
            }]
        );
    }

    #[test]
    fn endpos_stops_only_once_durable() {
        let t0 = Instant::now();
        let mut core = ReceiverCore::new(policy(false, false), lsn(0), Some(lsn(150)));
        core.on_start(t0);
        assert!(core.on_data(lsn(100), t0).is_empty());
        assert_eq!(collect(core.on_data(lsn(200), t0)), vec![Action::Sync]);
        assert_eq!(collect(core.on_synced(lsn(200), t0)), vec![Action::Stop]);
        // Stop is said once.
        assert!(core.on_flushed(lsn(300), t0).is_empty());
    }

    #[test]
    fn endpos_before_the_start_stops_without_waiting_for_data() {
        let t0 = Instant::now();
        let mut core =
            ReceiverCore::new(policy(false, false), lsn(0x90_0000), Some(lsn(0x8F_0000)));
        assert_eq!(
            collect(core.on_start(t0)),
            vec![
                Action::SendStatus {
                    write: lsn(0x90_0000),
                    flush: Lsn::INVALID,
                    reply_requested: false
                },
                Action::Stop
            ]
        );
        // Stop is said once.
        assert!(core.on_data(lsn(0x90_1000), t0).is_empty());
        let mut core =
            ReceiverCore::new(policy(false, false), lsn(0x90_0000), Some(lsn(0x90_0001)));
        assert_eq!(core.on_start(t0).len(), 1, "endpos ahead: stream");
    }

    #[test]
    fn endpos_already_durable_stops_at_once() {
        let t0 = Instant::now();
        let mut core = ReceiverCore::new(policy(false, false), lsn(0), Some(lsn(100)));
        core.on_start(t0);
        core.on_flushed(lsn(150), t0);
        assert_eq!(collect(core.on_data(lsn(150), t0)), vec![Action::Stop]);
    }

    #[test]
    fn a_silent_server_is_asked_for_a_reply_at_half_the_timeout_then_given_up() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = policy(true, false);
        p.status_interval = None;
        p.receive_timeout = Some(s(60));
        let mut core = ReceiverCore::new(p, lsn(100), None);
        let _ = core.on_start(t0);
        assert_eq!(core.next_deadline(), Some(t0 + s(30)));
        assert!(core.on_tick(t0 + s(29)).is_empty());
        // Half the timeout: one reply request.
        assert_eq!(
            collect(core.on_tick(t0 + s(30))),
            [Action::SendStatus {
                write: lsn(100),
                flush: lsn(100),
                reply_requested: true
            }]
        );
        assert_eq!(core.next_deadline(), Some(t0 + s(60)));
        assert!(core.on_tick(t0 + s(45)).is_empty());
        // Still nothing: give up.
        assert_eq!(collect(core.on_tick(t0 + s(60))), [Action::PeerSilent]);
    }

    #[test]
    fn anything_from_the_server_restarts_the_receive_timeout() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = policy(false, false);
        p.receive_timeout = Some(s(60));
        let mut core = ReceiverCore::new(p, lsn(100), None);
        let _ = core.on_start(t0);
        // The status interval (10 s) comes first.
        assert_eq!(core.next_deadline(), Some(t0 + s(10)));
        let _ = core.on_tick(t0 + s(10));
        let _ = core.on_tick(t0 + s(20));
        let _ = core.on_tick(t0 + s(30)); // the reply request
        core.on_heard(t0 + s(31));
        assert_eq!(core.next_deadline(), Some(t0 + s(40)));
        for t in [40, 50, 60] {
            assert!(!collect(core.on_tick(t0 + s(t))).contains(&Action::PeerSilent));
        }
        assert_eq!(
            collect(core.on_tick(t0 + s(61))),
            [Action::SendStatus {
                write: lsn(100),
                flush: Lsn::INVALID,
                reply_requested: true
            }]
        );
        assert_eq!(collect(core.on_tick(t0 + s(91))), [Action::PeerSilent]);
    }

    #[test]
    fn flowing_wal_is_fsynced_and_reported_within_the_flush_interval() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = policy(true, false);
        p.flush_interval = Some(ms(1000));
        let mut core = ReceiverCore::new(p, lsn(100), None);
        let _ = core.on_start(t0);
        assert_eq!(core.unflushed_since(), None);
        // WAL arrives at 0.2 s and keeps arriving.
        assert!(core.on_data(lsn(200), t0 + ms(200)).is_empty());
        assert!(core.on_data(lsn(300), t0 + ms(700)).is_empty());
        assert_eq!(core.unflushed_since(), Some(t0 + ms(200)));
        assert_eq!(core.next_deadline(), Some(t0 + ms(1200)));
        assert!(core.on_tick(t0 + ms(1100)).is_empty());
        // The oldest byte is 1 s old: fsync, and no second request while it runs.
        assert_eq!(collect(core.on_tick(t0 + ms(1200))), [Action::Sync]);
        assert!(core.on_tick(t0 + ms(1300)).is_empty());
        let _ = core.on_data(lsn(400), t0 + ms(1250));
        // The sync covered up to 300; 300..400 arrived after it was asked for.
        assert_eq!(
            collect(core.on_synced(lsn(300), t0 + ms(1400))),
            [Action::SendStatus {
                write: lsn(300),
                flush: lsn(300),
                reply_requested: false
            }]
        );
        assert_eq!(core.unflushed_since(), Some(t0 + ms(1200)));
        assert_eq!(collect(core.on_tick(t0 + ms(2200))), [Action::Sync]);
        let _ = core.on_synced(lsn(400), t0 + ms(2300));
        assert_eq!(core.unflushed_since(), None);
        // Only the periodic status is left, 10 s after the last one.
        assert_eq!(core.next_deadline(), Some(t0 + ms(12_300)));
    }

    #[test]
    fn with_a_flush_interval_a_segment_completed_between_intervals_is_reported_at_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = policy(true, false);
        p.flush_interval = Some(ms(1000));
        let mut core = ReceiverCore::new(p, lsn(100), None);
        let _ = core.on_start(t0);
        let _ = core.on_data(lsn(200), t0);
        assert_eq!(collect(core.on_tick(t0 + ms(1000))), [Action::Sync]);
        let _ = core.on_synced(lsn(200), t0 + ms(1000));
        // More WAL from 1.5 s; at 1.9 s the writer completes a segment (durable up to 300)
        // with 300..400 left over: the interval restarts at 1.9 s, so 300 is said now, not
        // at 2.9 s, when the server would have seen 200 for 1.9 s.
        let _ = core.on_data(lsn(400), t0 + ms(1500));
        assert_eq!(
            collect(core.on_flushed(lsn(300), t0 + ms(1900))),
            [Action::SendStatus {
                write: lsn(300),
                flush: lsn(300),
                reply_requested: false
            }]
        );
        assert_eq!(core.next_deadline(), Some(t0 + ms(2900)));
        // Without a slot the flush position is never reported: nothing to say.
        let mut p = policy(false, false);
        p.flush_interval = Some(ms(1000));
        let mut core = ReceiverCore::new(p, lsn(100), None);
        let _ = core.on_start(t0);
        let _ = core.on_data(lsn(400), t0);
        assert!(core.on_flushed(lsn(300), t0 + ms(100)).is_empty());
    }

    #[test]
    fn without_a_flush_interval_flowing_wal_waits_for_the_segment_end() {
        let t0 = Instant::now();
        let mut p = policy(true, false);
        p.status_interval = None;
        let mut core = ReceiverCore::new(p, lsn(100), None);
        let _ = core.on_start(t0);
        let _ = core.on_data(lsn(200), t0);
        assert_eq!(core.next_deadline(), None);
        assert!(core.on_tick(t0 + Duration::from_secs(3600)).is_empty());
    }
}
