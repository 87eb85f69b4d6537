//! The receive loop's I/O: connect, identify the server, guard the archive against another
//! cluster, choose the start point, then stream — the client stream, the policy
//! [`core`](super::core) and the [writer thread](super::writer) glued together with
//! `tokio::select!`. Reconnects with capped exponential backoff; stops cleanly on
//! SIGINT/SIGTERM or `--endpos`. This is the one place that reads the clock.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use pgwalrus_archive::{
    CompressionSpec, Durability, Error as ArchiveError, StdFs, durable, identity, resume,
};
use pgwalrus_client::config::Config;
use pgwalrus_client::{
    Connection, Error as ClientError, ReplicationMessage, ReplicationStream, connect,
};
use pgwalrus_wal::names::{FileName, HistoryName};
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{debug, info, warn};

use super::core::{Action, Actions, FeedbackPolicy, ReceiverCore};
use super::progress::{Progress, ProgressMode};
use super::writer::{Command, Event, WriterHandle};
use crate::connection::exit_for;
use crate::exit::Exit;
use crate::failure::{Failure, Outcome};

/// SQLSTATE `42704` undefined_object: the slot does not exist.
const UNDEFINED_OBJECT: &str = "42704";
/// SQLSTATE `42710` duplicate_object: the slot already exists.
const DUPLICATE_OBJECT: &str = "42710";
/// SQLSTATE `58P01` undefined_file: "requested WAL segment … has already been removed".
const UNDEFINED_FILE: &str = "58P01";
/// SQLSTATE `55000` object_not_in_prerequisite_state: e.g. an invalidated slot.
const NOT_IN_PREREQUISITE_STATE: &str = "55000";

/// Everything `pgwalrus receive` was asked to do.
#[derive(Debug, Clone)]
pub struct ReceiveSettings {
    /// The archive directory.
    pub dir: PathBuf,
    /// Connection settings (replication=true).
    pub conn: Config,
    /// Replication slot.
    pub slot: Option<String>,
    /// Create the slot (with RESERVE_WAL) before streaming.
    pub create_slot: bool,
    /// With `create_slot`: an existing slot is fine.
    pub if_not_exists: bool,
    /// Stop once everything up to here is durable.
    pub endpos: Option<Lsn>,
    /// Exit instead of reconnecting when the connection is lost.
    pub no_loop: bool,
    /// fsync or not (`--no-sync`).
    pub durability: Durability,
    /// `--synchronous`.
    pub synchronous: bool,
    /// `-Z`: how new segments are compressed (in the writer thread).
    pub compression: CompressionSpec,
    /// `-s`; `None` for 0.
    pub status_interval: Option<Duration>,
    /// Progress output.
    pub progress: ProgressMode,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
}

/// How a streaming session ended when it did not fail.
enum End {
    /// Signal or endpos: exit 0.
    Stopped,
}

/// How a session failed.
enum SessionError {
    /// Stop with this exit code.
    Fatal(Failure),
    /// Reconnect (unless `--no-loop`).
    Retry {
        /// What happened.
        error: anyhow::Error,
        /// Whether WAL was received before it happened (resets the backoff).
        streamed: bool,
    },
}

impl SessionError {
    fn fatal(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        SessionError::Fatal(Failure::new(exit, error))
    }

    fn retry(error: impl Into<anyhow::Error>) -> Self {
        SessionError::Retry {
            error: error.into(),
            streamed: false,
        }
    }
}

/// The only clock reads of the receiver.
#[allow(
    clippy::disallowed_methods,
    reason = "the driver is the one place that reads the clock"
)]
fn now() -> Instant {
    Instant::now()
}

#[allow(
    clippy::disallowed_methods,
    reason = "the driver is the one place that reads the clock"
)]
fn wall_clock() -> SystemTime {
    SystemTime::now()
}

/// SIGINT and SIGTERM.
struct StopSignals {
    int: Signal,
    term: Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// Doubling delay between reconnects, capped.
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

/// Runs `pgwalrus receive` until a clean stop or a fatal error.
///
/// # Errors
/// A [`Failure`] whose exit code is the documented one for the reason.
pub async fn receive(settings: ReceiveSettings) -> Outcome {
    let mut stop = StopSignals::install().map_err(|e| {
        Failure::new(
            Exit::Io,
            anyhow::Error::new(e).context("could not install signal handlers"),
        )
    })?;
    let mut backoff = Backoff::new(settings.backoff_initial, settings.backoff_max);
    let mut slot_ready = !settings.create_slot;
    let mut last_problem: Option<String> = None;
    let mut progress = Progress::new(settings.progress);
    loop {
        match session(&settings, &mut stop, &mut slot_ready, &mut progress).await {
            Ok(End::Stopped) => {
                progress.finish();
                return Ok(());
            }
            Err(SessionError::Fatal(failure)) => {
                progress.finish();
                return Err(failure);
            }
            Err(SessionError::Retry { error, streamed }) => {
                progress.finish();
                if settings.no_loop {
                    return Err(Failure::new(Exit::Connection, error));
                }
                if streamed {
                    backoff.reset();
                    last_problem = None;
                }
                let delay = backoff.next_delay();
                let problem = format!("{}", Failure::new(Exit::Connection, error));
                // Log once per state change; a repeated failure goes to debug.
                if last_problem.as_deref() == Some(problem.as_str()) {
                    debug!("{problem}; retrying in {}s", delay.as_secs_f32());
                } else {
                    warn!("{problem}; retrying in {}s", delay.as_secs_f32());
                    last_problem = Some(problem);
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.recv() => return Ok(()),
                }
            }
        }
    }
}

/// What the preparation of a session found out.
struct Prepared {
    conn: Connection,
    tli: TimeLineId,
    start: Lsn,
    seg_size: WalSegSize,
    history: Option<bytes::Bytes>,
    archive_has_wal: bool,
    partial: Option<PathBuf>,
}

async fn session(
    settings: &ReceiveSettings,
    stop: &mut StopSignals,
    slot_ready: &mut bool,
    progress: &mut Progress,
) -> Result<End, SessionError> {
    let prepared = tokio::select! {
        prepared = prepare(settings, slot_ready) => prepared?,
        () = stop.recv() => return Ok(End::Stopped),
    };
    let mut writer = WriterHandle::spawn(
        settings.dir.clone(),
        prepared.seg_size,
        settings.durability,
        settings.synchronous,
        settings.compression,
    )
    .map_err(|e| {
        SessionError::fatal(
            Exit::Io,
            anyhow::Error::new(e).context("could not start the writer thread"),
        )
    })?;
    let result = stream(settings, prepared, &mut writer, stop, progress).await;
    // Whatever happened, what was written gets fsynced and the segment stays `.partial`.
    let _ = writer.commands.send(Command::ClosePartial).await;
    writer.shutdown();
    result
}

async fn prepare(
    settings: &ReceiveSettings,
    slot_ready: &mut bool,
) -> Result<Prepared, SessionError> {
    let mut conn = connect(&settings.conn).await.map_err(client_error)?;
    let identity = conn.identify_system().await.map_err(client_error)?;
    if identity.dbname.is_some() {
        return Err(SessionError::fatal(
            Exit::Config,
            anyhow::anyhow!("replication connection is unexpectedly database specific"),
        ));
    }
    let seg_size = conn.wal_segment_size().await.map_err(client_error)?;

    let fs = StdFs::new();
    let scan = resume::scan(&fs, &settings.dir, seg_size).map_err(archive_error)?;
    let evidence = identity::inspect(&fs, &scan).map_err(archive_error)?;
    evidence.check_server(identity.system_id, seg_size).map_err(|e| {
        SessionError::fatal(
            Exit::OtherCluster,
            anyhow::Error::new(e).context(format!(
                "archive directory \"{}\" holds WAL of another cluster than server {} (nothing was changed)",
                settings.dir.display(),
                conn.target()
            )),
        )
    })?;
    for temp in &scan.temp_files {
        if let Err(e) = durable::remove_temp_file(&fs, &settings.dir, temp) {
            warn!("could not remove temporary file {temp}: {e}");
        }
    }
    let archive_has_wal = scan.resume.is_some();

    if let Some(slot) = settings.slot.as_deref()
        && !*slot_ready
    {
        match conn.create_physical_slot(slot, false, true).await {
            Ok(_) => info!("created replication slot \"{slot}\" (WAL reserved from now on)"),
            Err(e) if sqlstate(&e) == Some(DUPLICATE_OBJECT) && settings.if_not_exists => {
                info!("replication slot \"{slot}\" exists already");
            }
            // Retrying cannot help: the operator asked to create a slot that exists.
            Err(e) if sqlstate(&e) == Some(DUPLICATE_OBJECT) => {
                return Err(SessionError::fatal(
                    Exit::Config,
                    anyhow::Error::new(e).context(format!(
                        "could not create replication slot \"{slot}\"; add --if-not-exists to stream through the existing slot"
                    )),
                ));
            }
            Err(e) => return Err(SessionError::fatal(exit_for(&e), e)),
        }
        *slot_ready = true;
    }

    let (tli, start) = match &scan.resume {
        Some(point) => (point.tli, point.start),
        None => start_from_server(&mut conn, settings, &identity, seg_size).await?,
    };
    let partial = scan
        .resume
        .as_ref()
        .and_then(|p| p.partial.as_ref())
        .map(|p| p.path.clone());
    let history = history_if_missing(&mut conn, settings, tli).await?;
    info!(
        "starting log streaming at {start} (timeline {tli}) from {}",
        conn.target()
    );
    Ok(Prepared {
        conn,
        tli,
        start,
        seg_size,
        history,
        archive_has_wal,
        partial,
    })
}

/// An empty archive starts where the slot restarts (15+), else at the server's position.
async fn start_from_server(
    conn: &mut Connection,
    settings: &ReceiveSettings,
    identity: &pgwalrus_client::SystemIdentity,
    seg_size: WalSegSize,
) -> Result<(TimeLineId, Lsn), SessionError> {
    if let Some(slot) = settings.slot.as_deref()
        && conn.server_version_num() >= 150_000
    {
        match conn
            .read_replication_slot(slot)
            .await
            .map_err(client_error)?
        {
            Some(info) => {
                if let Some(restart) = info.restart_lsn {
                    let tli = info.restart_tli.unwrap_or(identity.timeline);
                    return Ok((tli, restart.segment_start(seg_size)));
                }
            }
            None => {
                return Err(SessionError::fatal(
                    Exit::Config,
                    anyhow::anyhow!(
                        "replication slot \"{slot}\" does not exist on {}; create it with --create-slot",
                        conn.target()
                    ),
                ));
            }
        }
    }
    Ok((identity.timeline, identity.xlogpos.segment_start(seg_size)))
}

async fn history_if_missing(
    conn: &mut Connection,
    settings: &ReceiveSettings,
    tli: TimeLineId,
) -> Result<Option<bytes::Bytes>, SessionError> {
    if tli == TimeLineId::ONE {
        return Ok(None);
    }
    let name = FileName::from(HistoryName::new(tli)).to_string();
    if settings.dir.join(&name).exists() {
        return Ok(None);
    }
    let file = conn.timeline_history(tli).await.map_err(client_error)?;
    Ok(Some(file.content))
}

fn sqlstate(e: &ClientError) -> Option<&str> {
    e.server_error().map(|s| match s.code().code() {
        UNDEFINED_OBJECT => UNDEFINED_OBJECT,
        DUPLICATE_OBJECT => DUPLICATE_OBJECT,
        UNDEFINED_FILE => UNDEFINED_FILE,
        NOT_IN_PREREQUISITE_STATE => NOT_IN_PREREQUISITE_STATE,
        _ => "",
    })
}

/// Connection-phase client errors: configuration problems are fatal, the rest retried.
fn client_error(e: ClientError) -> SessionError {
    match exit_for(&e) {
        Exit::Config => SessionError::fatal(Exit::Config, e),
        _ => SessionError::retry(e),
    }
}

/// Archive errors: another cluster is exit 3, and so is a segment file whose size no
/// segment of this cluster can have (docs/failure-modes.md); a full disk or a failed fsync
/// is retried (the slot still holds the WAL; streaming restarts from the last durable
/// position); any other local I/O problem is exit 5.
fn archive_error(e: ArchiveError) -> SessionError {
    if e.is_cluster_mismatch()
        || matches!(
            e,
            ArchiveError::WrongSegmentSize { .. } | ArchiveError::OversizedPartial { .. }
        )
    {
        return SessionError::fatal(Exit::OtherCluster, e);
    }
    if e.is_no_space() || e.is_poisoning() || e.is_poisoned() || e.is_discontinuity() {
        return SessionError::retry(e);
    }
    SessionError::fatal(Exit::Io, e)
}

/// Errors while streaming: WAL gone from the server and dropped slots are fatal (4).
fn stream_error(e: ClientError, p: &StreamPosition<'_>) -> SessionError {
    match sqlstate(&e) {
        Some(UNDEFINED_FILE) | Some(NOT_IN_PREREQUISITE_STATE) => {
            let kept = p.partial.map_or_else(String::new, |f| {
                format!("; \"{}\" was left as it was", f.display())
            });
            SessionError::fatal(
                Exit::WalGone,
                anyhow::Error::new(e).context(format!(
                    "the server no longer has the WAL the archive needs next (timeline {}, from {}){kept}; \
                     to continue with a gap, move the archive's newest files aside or start a new archive directory",
                    p.tli, p.start
                )),
            )
        }
        Some(UNDEFINED_OBJECT) => {
            let exit = if p.archive_has_wal {
                Exit::WalGone
            } else {
                Exit::Config
            };
            SessionError::fatal(
                exit,
                anyhow::Error::new(e).context(format!(
                    "replication slot {} is gone; WAL after {} may have been removed — recreate it with --create-slot and check the archive for a gap",
                    p.slot.map_or_else(|| "(none)".to_owned(), |s| format!("\"{s}\"")),
                    p.start
                )),
            )
        }
        _ => match exit_for(&e) {
            Exit::Config => SessionError::fatal(Exit::Config, e),
            _ => SessionError::retry(e),
        },
    }
}

/// Where a stream stands, for error messages.
struct StreamPosition<'a> {
    tli: TimeLineId,
    start: Lsn,
    slot: Option<&'a str>,
    archive_has_wal: bool,
    partial: Option<&'a PathBuf>,
}

async fn stream(
    settings: &ReceiveSettings,
    prepared: Prepared,
    writer: &mut WriterHandle,
    stop: &mut StopSignals,
    progress: &mut Progress,
) -> Result<End, SessionError> {
    let Prepared {
        conn,
        mut tli,
        start,
        seg_size,
        history,
        archive_has_wal,
        partial,
    } = prepared;
    let slot = settings.slot.as_deref();
    let policy = FeedbackPolicy {
        status_interval: settings.status_interval,
        report_flush: slot.is_some() || settings.synchronous,
        synchronous: settings.synchronous,
    };
    if let Some(content) = history {
        send(writer, Command::History { tli, content }).await?;
    }
    send(writer, Command::Start { tli, lsn: start }).await?;
    let mut position = StreamPosition {
        tli,
        start,
        slot,
        archive_has_wal,
        partial: partial.as_ref(),
    };
    let mut stream = conn
        .start_physical(slot, start, tli)
        .await
        .map_err(|e| stream_error(e, &position))?;
    let mut core = ReceiverCore::new(policy, start, settings.endpos);
    progress.start(tli, start, seg_size);
    let mut streamed = false;
    let retry = |error: anyhow::Error, streamed: bool| SessionError::Retry { error, streamed };

    let actions = core.on_start(now());
    if perform(actions, &mut core, &mut stream, writer).await? {
        return Ok(End::Stopped);
    }
    loop {
        let deadline = core.next_deadline();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let actions: Actions = tokio::select! {
            msg = stream.next() => match msg {
                Ok(Some(ReplicationMessage::XLogData { start, end, wal_end, data, .. })) => {
                    streamed = true;
                    progress.on_data(end, wal_end, data.len(), now());
                    send(writer, Command::Data { tli, lsn: start, bytes: data }).await
                        .map_err(|e| mark_streamed(e, streamed))?;
                    core.on_data(end, now())
                }
                Ok(Some(ReplicationMessage::Keepalive { wal_end, reply_requested, .. })) => {
                    progress.on_server_end(wal_end);
                    core.on_keepalive(reply_requested, now())
                }
                Ok(Some(ReplicationMessage::EndOfTimeline { next_tli, next_start })) => {
                    let write = core.received_lsn();
                    if next_tli <= tli || next_start > write {
                        return Err(SessionError::fatal(Exit::Connection, anyhow::anyhow!(
                            "server reported new timeline {next_tli} starting at {next_start}, but we were on timeline {tli} and received up to {write}"
                        )));
                    }
                    info!("end of timeline {tli} at {write}; switching to timeline {next_tli} at {next_start}");
                    close_partial(writer, &mut core).await?;
                    let mut conn = stream.into_connection().map_err(|_| SessionError::retry(anyhow::anyhow!("replication stream did not end cleanly at the timeline switch")))?;
                    tli = next_tli;
                    let start = next_start.segment_start(seg_size);
                    if let Some(content) = history_if_missing(&mut conn, settings, tli).await? {
                        send(writer, Command::History { tli, content }).await?;
                    }
                    send(writer, Command::Start { tli, lsn: start }).await?;
                    position = StreamPosition { tli, start, slot, archive_has_wal: true, partial: None };
                    stream = conn.start_physical(slot, start, tli).await.map_err(|e| stream_error(e, &position))?;
                    core = ReceiverCore::new(policy, start, settings.endpos);
                    progress.start(tli, start, seg_size);
                    core.on_start(now())
                }
                Ok(None) => return Err(retry(anyhow::anyhow!("server ended the replication stream"), streamed)),
                Err(e) => return Err(mark_streamed(stream_error(e, &position), streamed)),
            },
            event = writer.events.recv() => match event {
                Some(Event::Synced(lsn)) => core.on_synced(lsn, now()),
                Some(Event::Flushed(lsn)) => core.on_flushed(lsn, now()),
                Some(Event::Written(lsn)) => {
                    core.on_written(lsn);
                    Actions::new()
                }
                Some(Event::Completed(name)) => {
                    progress.on_completed(&name);
                    Actions::new()
                }
                Some(Event::HistoryWritten(path)) => {
                    info!("wrote timeline history file \"{}\"", path.display());
                    Actions::new()
                }
                Some(Event::Closed(_)) => Actions::new(),
                Some(Event::Failed(e)) => return Err(mark_streamed(archive_error(e), streamed)),
                None => return Err(retry(anyhow::anyhow!("the writer thread stopped"), streamed)),
            },
            () = sleep => core.on_tick(now()),
            () = stop.recv() => {
                graceful_stop(&mut core, stream, writer).await?;
                return Ok(End::Stopped);
            }
        };
        if perform(actions, &mut core, &mut stream, writer).await? {
            return Ok(End::Stopped);
        }
    }
}

fn mark_streamed(e: SessionError, streamed: bool) -> SessionError {
    match e {
        SessionError::Retry { error, .. } => SessionError::Retry { error, streamed },
        fatal => fatal,
    }
}

async fn send(writer: &mut WriterHandle, command: Command) -> Result<(), SessionError> {
    if writer.commands.send(command).await.is_ok() {
        return Ok(());
    }
    // The thread is gone: it said why on the event channel.
    while let Some(event) = writer.events.recv().await {
        if let Event::Failed(e) = event {
            return Err(archive_error(e));
        }
    }
    Err(SessionError::retry(anyhow::anyhow!(
        "the writer thread stopped"
    )))
}

/// Carries out the core's actions; `Ok(true)` when it said stop (and the stop is done).
async fn perform(
    actions: Actions,
    core: &mut ReceiverCore,
    stream: &mut ReplicationStream,
    writer: &mut WriterHandle,
) -> Result<bool, SessionError> {
    for action in actions.iter() {
        match action {
            Action::Sync => send(writer, Command::Sync).await?,
            Action::SendStatus {
                write,
                flush,
                reply_requested,
            } => {
                stream
                    .send_status(write, flush, Lsn::INVALID, reply_requested, wall_clock())
                    .await
                    .map_err(|e| {
                        SessionError::retry(
                            anyhow::Error::new(e).context("could not send feedback"),
                        )
                    })?;
            }
            Action::Stop => {
                close_partial(writer, core).await?;
                let _ = stream
                    .send_status(
                        core.write_lsn(),
                        core.reported_flush(),
                        Lsn::INVALID,
                        false,
                        wall_clock(),
                    )
                    .await;
                info!(
                    "reached end position; everything up to {} is durable",
                    core.flush_lsn()
                );
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Fsyncs and closes the open segment (kept `.partial`); returns the durable position.
async fn close_partial(
    writer: &mut WriterHandle,
    core: &mut ReceiverCore,
) -> Result<Lsn, SessionError> {
    send(writer, Command::ClosePartial).await?;
    loop {
        match writer.events.recv().await {
            Some(Event::Closed(lsn)) => {
                core.on_flushed(lsn, now());
                return Ok(lsn);
            }
            Some(Event::Failed(e)) => return Err(archive_error(e)),
            Some(Event::Synced(lsn) | Event::Flushed(lsn)) => {
                core.on_flushed(lsn, now());
            }
            Some(Event::Written(lsn)) => core.on_written(lsn),
            Some(_) => {}
            None => {
                return Err(SessionError::retry(anyhow::anyhow!(
                    "the writer thread stopped"
                )));
            }
        }
    }
}

/// SIGINT/SIGTERM: finish in-flight writes, fsync, report, send CopyDone.
async fn graceful_stop(
    core: &mut ReceiverCore,
    mut stream: ReplicationStream,
    writer: &mut WriterHandle,
) -> Result<(), SessionError> {
    let flush = close_partial(writer, core).await?;
    let _ = stream
        .send_status(
            core.write_lsn(),
            core.reported_flush(),
            Lsn::INVALID,
            false,
            wall_clock(),
        )
        .await;
    if let Err(e) = stream.finish().await {
        debug!("while ending the replication stream: {e}");
    }
    info!("stopped at {flush}; the current segment stays resumable");
    Ok(())
}
