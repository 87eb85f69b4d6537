//! One streaming session: the client stream, the policy ([`ReceiverCore`]), the streaming
//! verification ([`StreamVerifier`]) and the [writer](crate::writer) glued together with
//! `tokio::select!`, and the status snapshot kept current as it goes.
//!
//! Verification runs here, on the network side, before a chunk is handed to the writer:
//! the writer's time goes to writing and compressing, and a chunk that completes a corrupt
//! record never reaches it, while everything before it is closed durably.
//!
//! Streaming begins at (timeline, start) in one place, [`Session::begin`], used both at the
//! start of the session and when the server ends a timeline and the stream follows it.

use std::time::Duration;

use bytes::Bytes;
use pgwalrus_archive::{ArchiveWriter, Inventory};
use pgwalrus_client::{Connection, ReplicationMessage, ReplicationStream};
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};
use tracing::{debug, info};

use crate::classify::{
    SessionError, StreamPosition, archive_error, corrupt_wal, out_of_place, stream_error,
};
use crate::clock::{now, wall_clock};
use crate::engine::EngineFs;
use crate::error::{Error, StopKind, Stopped};
use crate::policy::{Action, Actions, FeedbackPolicy, ReceiverCore};
use crate::settings::ReceiveSettings;
use crate::shutdown::Shutdown;
use crate::start::{Prepared, history_if_missing};
use crate::status::{State, StatusSender};
use crate::timed_fs::{FsyncTimes, TimedFs};
use crate::timelines;
use crate::verify::{StreamVerifier, stream_history};
use crate::writer::{Command, Event, WriterHandle};

/// The log target of the per-segment "completed segment" line, so a host that shows
/// progress some other way (a live line on a terminal) can filter it out.
pub const SEGMENT_LOG_TARGET: &str = "pgwalrus_receiver::segment";

/// Outside synchronous mode, once the stream has caught up with the server and nothing more
/// is buffered, the socket is read again only after this pause, so the trickle of small
/// messages a steady load produces (about 100 per MiB) is taken in batches: one wake-up and
/// one writer hand-off per batch instead of per message. A stream that falls behind (the
/// server says it has more than was received) is read at once. Measured in
/// docs/benchmarks.md ("Steady streaming"); synchronous mode never waits: commits do.
const READ_BATCH: Duration = Duration::from_millis(10);

/// During that pause the socket's low-water mark is raised to this (`SO_RCVLOWAT`), so WAL
/// arriving meanwhile does not wake the thread once per packet only to be left unread: the
/// pause ends on its timer (the mark lowered again makes waiting data readable at once) or
/// when this much is waiting, whichever comes first.
const PAUSED_LOW_WATER: u32 = 256 * 1024;

/// Sets the stream's receive low-water mark; a failure only costs wake-ups.
fn low_water(stream: &ReplicationStream, bytes: u32) {
    if let Err(e) = stream.connection().set_receive_low_water(bytes) {
        tracing::debug!("could not set the receive low-water mark to {bytes}: {e}");
    }
}

/// Runs one prepared session until a clean stop or an error; the writer is created here and
/// closed (what was written fsynced, the segment left `.partial`) whatever happens.
pub(crate) async fn session<F: EngineFs>(
    fs: &F,
    settings: &ReceiveSettings,
    prepared: Prepared,
    shutdown: &mut Shutdown,
    status: &StatusSender,
) -> Result<Stopped, SessionError> {
    // Synchronous mode is a chain of waits (received, written, fsynced, acknowledged) that
    // a commit on the primary sits through: inline, without two thread hand-offs in it.
    // Every fsync the writer makes is timed on its way to the file system.
    let fsync_times = FsyncTimes::default();
    let sink = ArchiveWriter::new(
        TimedFs::new(fs.clone(), fsync_times.clone()),
        settings.dir.clone(),
        prepared.seg_size,
        settings.durability,
    )
    .with_compression(settings.compression)
    .with_min_free_space(settings.min_free_space)
    // Inline and idle: zero-fill ahead so the next commits' fsyncs allocate no blocks.
    .with_zero_ahead(settings.synchronous);
    let mut writer = if settings.synchronous {
        WriterHandle::inline(Box::new(sink))
    } else {
        WriterHandle::spawn(Box::new(sink)).map_err(|e| {
            SessionError::fatal(
                StopKind::Io,
                Error::context(e, "could not start the writer thread"),
            )
        })?
    };
    let result = stream(
        fs,
        settings,
        prepared,
        &mut writer,
        &fsync_times,
        shutdown,
        status,
    )
    .await;
    // Whatever happened, what was written gets fsynced and the segment stays `.partial`.
    let _ = writer.send(Command::ClosePartial).await;
    writer.shutdown();
    // The closing fsyncs count too.
    let last = fsync_times.take();
    if last.count() > 0 {
        status.send_modify(|s| s.fsync.merge(&last));
    }
    result
}

/// What a streaming session carries between messages.
struct Session<'a, F> {
    fs: &'a F,
    settings: &'a ReceiveSettings,
    status: &'a StatusSender,
    writer: &'a mut WriterHandle,
    /// The writer's fsyncs timed since they were last moved into the status.
    fsync_times: &'a FsyncTimes,
    policy: FeedbackPolicy,
    seg_size: WalSegSize,
    server: String,
    system_id: u64,
    verifier: Option<StreamVerifier>,
    tli: TimeLineId,
    position: StreamPosition,
    core: ReceiverCore,
    /// The writer wrote WAL in this session, on an earlier timeline (a later failure
    /// resets the backoff).
    progressed: bool,
    /// Where the current timeline's stream began.
    begun_at: Lsn,
}

async fn stream<F: EngineFs>(
    fs: &F,
    settings: &ReceiveSettings,
    prepared: Prepared,
    writer: &mut WriterHandle,
    fsync_times: &FsyncTimes,
    shutdown: &mut Shutdown,
    status: &StatusSender,
) -> Result<Stopped, SessionError> {
    let Prepared {
        conn,
        tli,
        start,
        seg_size,
        histories,
        archive_has_wal,
        partial,
        system_id,
    } = prepared;
    let policy = FeedbackPolicy {
        status_interval: settings.status_interval,
        report_flush: settings.slot.is_some() || settings.synchronous,
        synchronous: settings.synchronous,
        receive_timeout: settings.receive_timeout,
        flush_interval: settings.flush_interval,
    };
    let server = conn.target().to_owned();
    status.send_modify(|s| {
        s.slot_name.clone_from(&settings.slot);
        s.sender_host = Some(host_name(&conn));
        s.sender_port = Some(conn.host().port);
        s.segment_size = Some(seg_size);
        s.system_identifier = Some(system_id);
    });
    let mut session = Session {
        fs,
        settings,
        status,
        writer,
        fsync_times,
        policy,
        seg_size,
        server,
        system_id,
        verifier: settings
            .verify
            .then(|| StreamVerifier::new(system_id, seg_size)),
        tli,
        position: StreamPosition {
            tli,
            start,
            slot: settings.slot.clone(),
            archive_has_wal,
            partial,
        },
        core: ReceiverCore::new(policy, start, settings.endpos),
        progressed: false,
        begun_at: start,
    };
    let mut stream = session.begin(conn, tli, start, histories).await?;
    // Another stage's bound on the reported flush position (an object-storage archive).
    let mut cap = settings
        .flush_cap
        .as_ref()
        .map(crate::settings::FlushCap::receiver);
    if let Some(cap) = &mut cap {
        let _ = session.core.set_flush_cap(*cap.borrow_and_update(), now());
    }
    let actions = session.core.on_start(now());
    if session.perform(actions, &mut stream).await? {
        return Ok(Stopped::EndPosition {
            flushed: session.core.flush_lsn(),
        });
    }
    let mut read_gate: Option<std::time::Instant> = None;
    loop {
        // What the writer thread has written since the last turn, before anything below
        // builds a status update from it.
        session.take_written();
        let deadline = session.core.next_deadline();
        let gate = read_gate;
        let gated = async {
            match gate {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let capped = async {
            match cap.as_mut() {
                Some(cap) => match cap.changed().await {
                    Ok(()) => *cap.borrow_and_update(),
                    // The stage is gone: its last bound stays.
                    Err(_) => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        };
        let writer = &mut *session.writer;
        // Biased: a stop first, then what the writer reported, then timers, then the socket;
        // the inline writer's group flush once the socket has nothing more (or much was
        // written without a pause), and its idle work only once nothing else is left.
        let actions: Actions = tokio::select! {
            biased;
            () = shutdown.triggered() => {
                if read_gate.is_some() {
                    low_water(&stream, 1);
                }
                let flushed = session.graceful_stop(stream).await?;
                return Ok(Stopped::Shutdown { flushed });
            }
            event = writer.recv() => session.on_event(event)?,
            () = sleep => session.core.on_tick(now()),
            bound = capped => session.core.set_flush_cap(bound, now()),
            // Inline: WAL that never pauses must not hold back the acknowledgement forever.
            () = std::future::ready(()), if writer.flush_overdue() => {
                writer.group_flush();
                Actions::new()
            }
            () = gated => {
                read_gate = None;
                low_water(&stream, 1);
                Actions::new()
            }
            msg = stream.next(), if read_gate.is_none() => match msg {
                Ok(Some(ReplicationMessage::XLogData { start, end, wal_end, time, data })) => {
                    let actions = session.on_wal(start, end, wal_end, time, data).await?;
                    if !settings.synchronous && end >= wal_end && !stream.has_buffered_message() {
                        read_gate = Some(now() + READ_BATCH);
                        low_water(&stream, PAUSED_LOW_WATER);
                    }
                    actions
                }
                Ok(Some(ReplicationMessage::Keepalive { wal_end, time, reply_requested })) => {
                    let received = wall_clock();
                    let sent = time.to_system_time().unwrap_or(received);
                    status.send_modify(|s| s.on_server_end(wal_end, sent, received));
                    let at = now();
                    session.core.on_heard(at);
                    session.core.on_keepalive(reply_requested, at)
                }
                Ok(Some(ReplicationMessage::EndOfTimeline { next_tli, next_start })) => {
                    stream = session.next_timeline(stream, next_tli, next_start).await?;
                    session.core.on_start(now())
                }
                Ok(None) => {
                    // A walsender ends the copy on its own only at the end of a historic
                    // timeline, with the next timeline's result set, or at shutdown.
                    return Err(session.retry(Error::msg(format!(
                        "server {} ended the replication stream of timeline {} at {} without naming a next timeline",
                        session.server,
                        session.tli,
                        session.core.received_lsn()
                    ))));
                }
                Err(e) => {
                    // Named where the stream stood, not where it began: an error in the
                    // middle of a copy is about the WAL that was to come next.
                    let at = StreamPosition {
                        start: session.core.received_lsn(),
                        ..session.position.clone()
                    };
                    let failed = stream_error(e, &at);
                    return Err(failed.progressed(session.progressed()));
                }
            },
            () = std::future::ready(()), if writer.flush_due() => {
                writer.group_flush();
                Actions::new()
            }
            // Last: only once the feedback for the group flush is out.
            () = std::future::ready(()), if writer.idle_due() => {
                writer.idle_work();
                Actions::new()
            }
        };
        if session.perform(actions, &mut stream).await? {
            return Ok(Stopped::EndPosition {
                flushed: session.core.flush_lsn(),
            });
        }
    }
}

/// The host name (or socket directory) of a connection, for status.
fn host_name(conn: &Connection) -> String {
    match &conn.host().host {
        pgwalrus_client::config::Host::Tcp(name) => name.clone(),
        pgwalrus_client::config::Host::Unix(dir) => dir.display().to_string(),
    }
}

impl<F: EngineFs> Session<'_, F> {
    /// Whether the writer wrote WAL in this session. WAL merely received does not count: a
    /// session that receives and then fails to write (a full disk) makes no progress, and
    /// must not reset the reconnect backoff.
    fn progressed(&self) -> bool {
        self.progressed || self.core.write_lsn() > self.begun_at
    }

    fn retry(&self, error: Error) -> SessionError {
        SessionError::Retry {
            error,
            progressed: self.progressed(),
            disk_full: false,
        }
    }

    /// Begins streaming `tli` at `start` (a segment boundary) over `conn`: the history files
    /// go to the writer first, then the writer, the verifier, the policy and the status
    /// start there, and `START_REPLICATION` is sent.
    async fn begin(
        &mut self,
        conn: Connection,
        tli: TimeLineId,
        start: Lsn,
        histories: Vec<(TimeLineId, Bytes)>,
    ) -> Result<ReplicationStream, SessionError> {
        let start_history = histories
            .iter()
            .find(|(t, _)| *t == tli)
            .map(|(_, content)| content.clone());
        for (tli, content) in histories {
            self.send(Command::History { tli, content }).await?;
        }
        self.send(Command::Start { tli, lsn: start }).await?;
        if let Some(verifier) = self.verifier.as_mut() {
            verifier.start(
                tli,
                start,
                stream_history(self.fs, &self.settings.dir, tli, start_history.as_deref()),
            );
        }
        self.tli = tli;
        self.position.tli = tli;
        self.position.start = start;
        let stream = conn
            .start_physical(self.position.slot.as_deref(), start, tli)
            .await
            .map_err(|e| stream_error(e, &self.position))?;
        self.progressed = self.progressed();
        self.begun_at = start;
        self.core = ReceiverCore::new(self.policy, start, self.settings.endpos);
        if let Some(cap) = &self.settings.flush_cap {
            let _ = self.core.set_flush_cap(*cap.receiver().borrow(), now());
        }
        self.status.send_modify(|s| {
            s.state = State::Streaming;
            s.receive_start_lsn = start;
            s.receive_start_tli = Some(tli);
            s.received_tli = Some(tli);
            s.received_lsn = s.received_lsn.max(start);
            s.written_lsn = s.written_lsn.max(start);
            s.flushed_lsn = s.flushed_lsn.max(start);
        });
        Ok(stream)
    }

    /// The server ended the timeline being streamed: close its last segment (kept
    /// `.partial` unless the switch is at a segment boundary) and begin the next timeline.
    async fn next_timeline(
        &mut self,
        stream: ReplicationStream,
        next_tli: TimeLineId,
        next_start: Lsn,
    ) -> Result<ReplicationStream, SessionError> {
        let (tli, write) = (self.tli, self.core.received_lsn());
        let switch = timelines::follow_switch(tli, write, next_tli, next_start, self.seg_size)
            .map_err(|refused| {
                SessionError::fatal(StopKind::Connection, Error::msg(refused.to_string()))
            })?;
        let start = switch.start;
        let kept = if switch.keeps_partial {
            " (its last segment stays .partial)"
        } else {
            ""
        };
        info!(
            "end of timeline {tli}: server {} switched to timeline {next_tli} at {next_start}; \
             received timeline {tli} up to {write}{kept}; switching to timeline {next_tli}, streaming it from {start}",
            stream.connection().target()
        );
        self.close_partial().await?;
        let mut conn = stream.into_connection().map_err(|_| {
            SessionError::retry(Error::msg(
                "replication stream did not end cleanly at the timeline switch",
            ))
        })?;
        let inventory =
            Inventory::list(self.fs, &self.settings.dir, self.seg_size).map_err(archive_error)?;
        let histories = history_if_missing(&mut conn, &inventory, next_tli)
            .await?
            .map(|content| vec![(next_tli, content)])
            .unwrap_or_default();
        self.position.archive_has_wal = true;
        self.position.partial = None;
        self.begin(conn, next_tli, start, histories).await
    }

    /// XLogData: checked, then handed to the writer.
    async fn on_wal(
        &mut self,
        start: Lsn,
        end: Lsn,
        wal_end: Lsn,
        time: pgwalrus_client::PgTimestamp,
        data: Bytes,
    ) -> Result<Actions, SessionError> {
        let at = now();
        self.core.on_heard(at);
        let received = wall_clock();
        let sent = time.to_system_time().unwrap_or(received);
        // Before the verifier, which takes the bytes as the continuation of the stream: a
        // chunk out of place would otherwise be blamed on the WAL (a page header or record
        // "at" the wrong position) and stop the engine as corrupt, instead of naming the
        // two positions and starting over from what is durable.
        let expected = self.core.received_lsn();
        if start != expected {
            return Err(self.retry(out_of_place(&self.server, start, end, expected)));
        }
        // Checked before the writer sees it: the chunk that completes a corrupt record is
        // never archived.
        if let Some(verifier) = self.verifier.as_mut()
            && let Err(e) = verifier.check(&data)
        {
            return Err(corrupt_wal(&e, &self.server, self.system_id));
        }
        let tli = self.tli;
        self.send(Command::Data {
            tli,
            lsn: start,
            bytes: data,
        })
        .await?;
        let len = end.checked_distance(start).unwrap_or(0);
        let unflushed = self.unflushed_since(at, received);
        self.status.send_modify(|s| {
            s.on_received(end, received);
            s.on_server_end(wal_end, sent, received);
            s.bytes_received += len;
            s.unflushed_since = unflushed;
        });
        Ok(self.core.on_data(end, at))
    }

    /// What the writer reported.
    fn on_event(&mut self, event: Option<Event>) -> Result<Actions, SessionError> {
        self.take_written();
        let actions = match event {
            Some(Event::Synced(lsn)) => self.core.on_synced(lsn, now()),
            Some(Event::Flushed(lsn)) => self.core.on_flushed(lsn, now()),
            Some(Event::Written(lsn)) => {
                self.core.on_written(lsn);
                Actions::new()
            }
            Some(Event::Completed(name)) => {
                info!(target: SEGMENT_LOG_TARGET, "completed segment {name}");
                self.status.send_modify(|s| {
                    s.last_completed_segment = Some(name);
                    s.segments_completed += 1;
                });
                Actions::new()
            }
            Some(Event::HistoryWritten(path)) => {
                info!("wrote timeline history file \"{}\"", path.display());
                Actions::new()
            }
            Some(Event::Closed(_)) => Actions::new(),
            Some(Event::Failed(e)) => {
                return Err(archive_error(e).progressed(self.progressed()));
            }
            None => return Err(self.retry(Error::msg("the writer stopped"))),
        };
        self.publish_positions();
        Ok(actions)
    }

    /// Takes in how far a writer thread has written (it says so without an event).
    fn take_written(&mut self) {
        if let Some(written) = self.writer.written() {
            self.core.on_written(written);
        }
    }

    fn publish_positions(&self) {
        let (written, flushed) = (self.core.write_lsn(), self.core.flush_lsn());
        let unflushed = self.unflushed_since(now(), wall_clock());
        let fsyncs = self.fsync_times.take();
        self.status.send_if_modified(|s| {
            let changed = s.written_lsn < written
                || s.flushed_lsn < flushed
                || s.unflushed_since != unflushed
                || fsyncs.count() > 0;
            s.written_lsn = s.written_lsn.max(written);
            s.flushed_lsn = s.flushed_lsn.max(flushed);
            s.unflushed_since = unflushed;
            s.fsync.merge(&fsyncs);
            changed
        });
    }

    /// The policy's "oldest byte not yet durable" on the wall clock, for the status.
    fn unflushed_since(
        &self,
        at: std::time::Instant,
        wall: std::time::SystemTime,
    ) -> Option<std::time::SystemTime> {
        let since = self.core.unflushed_since()?;
        Some(wall - at.saturating_duration_since(since))
    }

    /// Carries out the core's actions; `Ok(true)` when it said stop (and the stop is done).
    async fn perform(
        &mut self,
        actions: Actions,
        stream: &mut ReplicationStream,
    ) -> Result<bool, SessionError> {
        for action in actions.iter() {
            match action {
                Action::Sync => self.send(Command::Sync).await?,
                Action::SendStatus {
                    write,
                    flush,
                    reply_requested,
                } => {
                    stream
                        .send_status(write, flush, Lsn::INVALID, reply_requested, wall_clock())
                        .await
                        .map_err(|e| {
                            SessionError::retry(Error::context(e, "could not send feedback"))
                        })?;
                }
                Action::PeerSilent => {
                    let timeout = self.policy.receive_timeout.unwrap_or_default();
                    return Err(self.retry(Error::msg(format!(
                        "server {} sent nothing for {} s, not even an answer to a request for a reply (receive timeout); \
                         giving the connection up",
                        self.server,
                        timeout.as_secs()
                    ))));
                }
                Action::Stop => {
                    self.status.send_modify(|s| s.state = State::Stopping);
                    self.close_and_report(stream).await?;
                    info!(
                        "reached end position; everything up to {} is durable",
                        self.core.flush_lsn()
                    );
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Fsyncs and closes the open segment (kept `.partial`); returns the durable position.
    async fn close_partial(&mut self) -> Result<Lsn, SessionError> {
        self.send(Command::ClosePartial).await?;
        loop {
            match self.writer.recv().await {
                Some(Event::Closed(lsn)) => {
                    self.core.on_flushed(lsn, now());
                    self.publish_positions();
                    return Ok(lsn);
                }
                Some(Event::Failed(e)) => return Err(archive_error(e)),
                Some(Event::Synced(lsn) | Event::Flushed(lsn)) => {
                    self.core.on_flushed(lsn, now());
                }
                Some(Event::Written(lsn)) => self.core.on_written(lsn),
                Some(event @ (Event::Completed(_) | Event::HistoryWritten(_))) => {
                    self.on_event(Some(event))?;
                }
                None => {
                    return Err(SessionError::retry(Error::msg("the writer stopped")));
                }
            }
        }
    }

    /// A clean stop's last step before the stream ends: fsync and close the open segment
    /// (kept `.partial`), then tell the server the final positions (best effort: the data
    /// is durable either way). Returns the durable position.
    async fn close_and_report(
        &mut self,
        stream: &mut ReplicationStream,
    ) -> Result<Lsn, SessionError> {
        let flush = self.close_partial().await?;
        let _ = stream
            .send_status(
                self.core.write_lsn(),
                self.core.reported_flush(),
                Lsn::INVALID,
                false,
                wall_clock(),
            )
            .await;
        Ok(flush)
    }

    /// Shutdown: finish in-flight writes, fsync, report, send CopyDone.
    async fn graceful_stop(&mut self, mut stream: ReplicationStream) -> Result<Lsn, SessionError> {
        self.status.send_modify(|s| s.state = State::Stopping);
        let flush = self.close_and_report(&mut stream).await?;
        if let Err(e) = stream.finish().await {
            debug!(
                "while ending the replication stream: {}",
                Error::from(e).chain()
            );
        }
        info!("stopped at {flush}; the current segment stays resumable");
        Ok(flush)
    }
}

impl<F: EngineFs> Session<'_, F> {
    /// Gives the writer a command; when it has stopped, the reason it gave. What it
    /// reported before it stopped is taken in first: a segment it completed just before
    /// failing (the chunk that filled it could not start the next one) is logged and
    /// counted like any other.
    async fn send(&mut self, command: Command) -> Result<(), SessionError> {
        if self.writer.send(command).await.is_ok() {
            return Ok(());
        }
        // The writer has stopped: it said why among its events (`on_event` turns the
        // failure into the error). Actions for a stream about to be dropped are moot.
        while let Some(event) = self.writer.recv().await {
            self.on_event(Some(event))?;
        }
        Err(self.retry(Error::msg("the writer stopped")))
    }
}
