//! The receive loop's I/O: connect, identify the server, guard the archive against another
//! cluster, choose the start point, then stream — the client stream, the policy
//! [`core`](super::core), the streaming verification ([`inspect`](super::inspect)) and the
//! [writer](super::writer) glued together with `tokio::select!`. Reconnects with capped
//! exponential backoff; stops cleanly on SIGINT/SIGTERM or `--endpos`. This is the one
//! place that reads the clock.
//!
//! Verification runs here, on the network side, before a chunk is handed to the writer: the
//! writer thread's time goes to writing and compressing, and a chunk that completes a
//! corrupt record never reaches it, while everything before it is closed durably.
//!
//! Timelines: every session first compares the archive's history files with the server's
//! (a disagreement is refused before anything is touched), then chooses the start along
//! the server's history by the rules of [`timelines`], and at an end of timeline follows
//! the server to the next one. With `--create-slot` the slot is created in every session,
//! so a failover to a promoted standby (several hosts and `target_session_attrs=read-write`
//! in the conninfo) gets one too.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use pgwalrus_archive::{
    ArchiveFs as _, CompressionSpec, Durability, Error as ArchiveError, StdFs, durable, identity,
    reader, resume,
};
use pgwalrus_client::config::Config;
use pgwalrus_client::{
    Connection, Error as ClientError, ReplicationMessage, ReplicationStream, connect,
};
use pgwalrus_wal::history::TimelineHistory;
use pgwalrus_wal::names::{Compression, FileName, HistoryName, SegmentName};
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{debug, info, warn};

use super::core::{Action, Actions, FeedbackPolicy, ReceiverCore};
use super::inspect::{StreamInspector, stream_history};
use super::progress::{Progress, ProgressMode};
use super::timelines::{self, Behind, Route};
use super::writer::{Command, Event, WriterHandle};
use crate::connection::{SlotRow, exit_for};
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
    /// Decode and CRC-check every record as it arrives (off with `--no-verify`).
    pub verify: bool,
    /// `-Z`: how new segments are compressed (by the writer).
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
    let mut sessions = Sessions::default();
    let mut last_problem: Option<String> = None;
    let mut progress = Progress::new(settings.progress);
    loop {
        match session(&settings, &mut stop, &mut sessions, &mut progress).await {
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

/// What one session leaves for the next.
#[derive(Debug, Default)]
struct Sessions {
    /// This process created the slot (on some server): "already exists" is fine from now on.
    slot_created: bool,
    /// The server the last session streamed from.
    server: Option<String>,
}

/// What the preparation of a session found out.
struct Prepared {
    conn: Connection,
    tli: TimeLineId,
    start: Lsn,
    seg_size: WalSegSize,
    /// History files to write before the first segment, oldest timeline first.
    histories: Vec<(TimeLineId, bytes::Bytes)>,
    archive_has_wal: bool,
    partial: Option<PathBuf>,
    /// The server's system identifier (streaming verification checks every page's).
    system_id: u64,
}

async fn session(
    settings: &ReceiveSettings,
    stop: &mut StopSignals,
    sessions: &mut Sessions,
    progress: &mut Progress,
) -> Result<End, SessionError> {
    let prepared = tokio::select! {
        prepared = prepare(settings, sessions) => prepared?,
        () = stop.recv() => return Ok(End::Stopped),
    };
    // Synchronous mode is a chain of waits (received, written, fsynced, acknowledged) that
    // a commit on the primary sits through: inline, without two thread hand-offs in it.
    let mut writer = if settings.synchronous {
        WriterHandle::inline(
            settings.dir.clone(),
            prepared.seg_size,
            settings.durability,
            settings.compression,
        )
    } else {
        WriterHandle::spawn(
            settings.dir.clone(),
            prepared.seg_size,
            settings.durability,
            settings.compression,
        )
        .map_err(|e| {
            SessionError::fatal(
                Exit::Io,
                anyhow::Error::new(e).context("could not start the writer thread"),
            )
        })?
    };
    let result = stream(settings, prepared, &mut writer, stop, progress).await;
    // Whatever happened, what was written gets fsynced and the segment stays `.partial`.
    let _ = writer.send(Command::ClosePartial).await;
    writer.shutdown();
    result
}

async fn prepare(
    settings: &ReceiveSettings,
    sessions: &mut Sessions,
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
    // Timelines, before anything is touched: the archive's history files must agree with
    // the server's, and the archive's timeline must be in the server's history.
    let names = archive_names(&fs, settings, seg_size)?;
    let mut server_history = ServerHistory::new(identity.timeline);
    check_histories(&mut conn, &fs, settings, &names, &mut server_history).await?;
    let archived = match &scan.resume {
        Some(point) => Some(
            choose_route(
                &mut conn,
                &identity,
                &fs,
                settings,
                seg_size,
                &names,
                &mut server_history,
                (point.tli, point.start),
            )
            .await?,
        ),
        None => None,
    };
    for temp in &scan.temp_files {
        if let Err(e) = durable::remove_temp_file(&fs, &settings.dir, temp) {
            warn!("could not remove temporary file {temp}: {e}");
        }
    }
    let archive_has_wal = scan.resume.is_some();

    if settings.create_slot
        && let Some(slot) = settings.slot.as_deref()
    {
        create_slot(&mut conn, settings, sessions, slot).await?;
    }

    let route = match archived {
        Some(route) => route,
        None => {
            let from = start_from_server(
                &mut conn,
                settings,
                &identity,
                seg_size,
                &mut server_history,
            )
            .await?;
            choose_route(
                &mut conn,
                &identity,
                &fs,
                settings,
                seg_size,
                &names,
                &mut server_history,
                from,
            )
            .await?
        }
    };
    let (tli, start) = (route.tli, route.start);
    // The `.partial` the stream rewrites first, for error messages.
    let partial = scan
        .resume
        .as_ref()
        .filter(|p| (p.tli, p.start) == (tli, start))
        .and_then(|p| p.partial.as_ref())
        .map(|p| p.path.clone());
    report_forks(&route, &conn);
    // Every timeline the route enters gets its history file first, oldest first.
    let mut histories = Vec::new();
    let entered = route
        .forks
        .iter()
        .map(|f| f.next)
        .chain(std::iter::once(tli));
    for entered_tli in entered {
        if histories.iter().any(|(t, _)| *t == entered_tli) {
            continue;
        }
        if let Some(content) = history_if_missing(&mut conn, settings, entered_tli).await? {
            histories.push((entered_tli, content));
        }
    }
    let target = conn.target().to_owned();
    info!("starting log streaming at {start} (timeline {tli}) from {target}");
    match sessions.server.replace(target.clone()) {
        Some(previous) if previous != target => {
            info!("now streaming from {target} (was {previous})");
        }
        _ => {}
    }
    Ok(Prepared {
        conn,
        tli,
        start,
        seg_size,
        histories,
        archive_has_wal,
        partial,
        system_id: identity.system_id,
    })
}

/// `--create-slot`, in every session: a failover to another server needs the slot there
/// too. "Already exists" is fine with `--if-not-exists`, and when this process created it
/// earlier (on this server, or on the one it streamed from before).
async fn create_slot(
    conn: &mut Connection,
    settings: &ReceiveSettings,
    sessions: &mut Sessions,
    slot: &str,
) -> Result<(), SessionError> {
    match conn.create_physical_slot(slot, false, true).await {
        Ok(_) => {
            info!(
                "created replication slot \"{slot}\" on {} (it keeps WAL from the last checkpoint's redo point on)",
                conn.target()
            );
            sessions.slot_created = true;
            Ok(())
        }
        Err(e) if sqlstate(&e) == Some(DUPLICATE_OBJECT) && sessions.slot_created => {
            debug!("replication slot \"{slot}\" exists on {}", conn.target());
            Ok(())
        }
        Err(e) if sqlstate(&e) == Some(DUPLICATE_OBJECT) && settings.if_not_exists => {
            info!(
                "replication slot \"{slot}\" exists already on {}",
                conn.target()
            );
            Ok(())
        }
        // Retrying cannot help: the operator asked to create a slot that exists.
        Err(e) if sqlstate(&e) == Some(DUPLICATE_OBJECT) => Err(SessionError::fatal(
            Exit::Config,
            anyhow::Error::new(e).context(format!(
                "could not create replication slot \"{slot}\"; add --if-not-exists to stream through the existing slot"
            )),
        )),
        Err(e) if e.is_transient() => Err(SessionError::retry(e)),
        Err(e) => Err(SessionError::fatal(exit_for(&e), e)),
    }
}

/// The archive's segment and history file names (temporary files left out).
struct ArchiveNames {
    segments: Vec<SegmentName>,
    histories: Vec<HistoryName>,
}

fn archive_names(
    fs: &StdFs,
    settings: &ReceiveSettings,
    seg_size: WalSegSize,
) -> Result<ArchiveNames, SessionError> {
    let mut listed = fs.list_dir(&settings.dir).map_err(|e| {
        SessionError::fatal(
            Exit::Io,
            anyhow::Error::new(e).context(format!(
                "could not list directory \"{}\"",
                settings.dir.display()
            )),
        )
    })?;
    listed.sort();
    let mut names = ArchiveNames {
        segments: Vec::new(),
        histories: Vec::new(),
    };
    for name in &listed {
        match name.to_str().map(|n| FileName::parse(n, seg_size)) {
            Some(Ok(FileName::Segment(s))) if !s.is_temporary() => names.segments.push(s),
            Some(Ok(FileName::History(h))) if !h.is_temporary() => names.histories.push(h),
            _ => {}
        }
    }
    Ok(names)
}

/// The history of the server's timeline, fetched once per session when needed.
struct ServerHistory {
    tli: TimeLineId,
    fetched: Option<Option<TimelineHistory>>,
}

impl ServerHistory {
    fn new(tli: TimeLineId) -> Self {
        Self { tli, fetched: None }
    }

    /// The parsed `TIMELINE_HISTORY` of the server's timeline; `None` when the server has
    /// no such file.
    async fn get(
        &mut self,
        conn: &mut Connection,
    ) -> Result<Option<&TimelineHistory>, SessionError> {
        if self.fetched.is_none() {
            let history = if self.tli == TimeLineId::ONE {
                Some(TimelineHistory::without_parents(self.tli))
            } else {
                fetch_history(conn, self.tli).await?
            };
            self.fetched = Some(history);
        }
        Ok(self.fetched.as_ref().and_then(Option::as_ref))
    }
}

/// `TIMELINE_HISTORY tli`, parsed; `None` when the server has no such file.
async fn fetch_history(
    conn: &mut Connection,
    tli: TimeLineId,
) -> Result<Option<TimelineHistory>, SessionError> {
    match conn.timeline_history(tli).await {
        Ok(file) => TimelineHistory::parse(tli, &file.content)
            .map(Some)
            .map_err(|e| {
                SessionError::retry(anyhow::Error::new(e).context(format!(
                    "server {} sent a history file {} that does not parse",
                    conn.target(),
                    file.filename
                )))
            }),
        Err(e) if sqlstate(&e) == Some(UNDEFINED_FILE) => Ok(None),
        Err(e) => Err(client_error(e)),
    }
}

/// Every history file of the archive for a timeline up to the server's must agree with the
/// server's (`TIMELINE_HISTORY`, or the part of the server's own history that covers it
/// when the server has no file of that timeline): a disagreement means the archive
/// followed another promotion of this cluster, and nothing written from here would fit.
async fn check_histories(
    conn: &mut Connection,
    fs: &StdFs,
    settings: &ReceiveSettings,
    names: &ArchiveNames,
    server_history: &mut ServerHistory,
) -> Result<(), SessionError> {
    for name in &names.histories {
        let tli = name.tli();
        if tli == TimeLineId::ONE || tli > server_history.tli {
            continue;
        }
        let path = settings.dir.join(name.to_string());
        let local = local_history(fs, settings, name)?;
        let server = if tli == server_history.tli {
            server_history.get(conn).await?.cloned()
        } else {
            match fetch_history(conn, tli).await? {
                Some(h) => Some(h),
                None => server_history
                    .get(conn)
                    .await?
                    .and_then(|h| timelines::history_of(h, tli)),
            }
        };
        let Some(server) = server else {
            debug!(
                "server {} has no history of timeline {tli}; \"{}\" not compared",
                conn.target(),
                path.display()
            );
            continue;
        };
        if let Some(conflict) = timelines::first_conflict(&local, &server) {
            return Err(SessionError::fatal(
                Exit::OtherCluster,
                anyhow::anyhow!(
                    "timeline history file \"{}\" in the archive disagrees with server {}'s history of timeline {tli}: {conflict}; \
                     the archive followed another promotion of this cluster than the server did (nothing was changed)",
                    path.display(),
                    conn.target()
                ),
            ));
        }
    }
    Ok(())
}

/// A history file of the archive, read (decompressed) and parsed.
fn local_history(
    fs: &StdFs,
    settings: &ReceiveSettings,
    name: &HistoryName,
) -> Result<TimelineHistory, SessionError> {
    let content =
        reader::read_file(fs, &settings.dir, &FileName::History(*name)).map_err(archive_error)?;
    TimelineHistory::parse(name.tli(), &content).map_err(|e| {
        SessionError::fatal(
            Exit::OtherCluster,
            anyhow::Error::new(e).context(format!(
                "timeline history file \"{}\" in the archive does not parse (nothing was changed)",
                settings.dir.join(name.to_string()).display()
            )),
        )
    })
}

/// Where to stream from `from` (the archive's end, or the server's start for an empty
/// archive) along the server's history; see [`timelines`] for the rules.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site per start; a struct would only rename them"
)]
async fn choose_route(
    conn: &mut Connection,
    identity: &pgwalrus_client::SystemIdentity,
    fs: &StdFs,
    settings: &ReceiveSettings,
    seg_size: WalSegSize,
    names: &ArchiveNames,
    server_history: &mut ServerHistory,
    (tli, start): (TimeLineId, Lsn),
) -> Result<Route, SessionError> {
    let server_tli = identity.timeline;
    let target = conn.target().to_owned();
    if tli < server_tli {
        let Some(history) = server_history.get(conn).await? else {
            return Err(SessionError::retry(anyhow::anyhow!(
                "server {target} is on timeline {server_tli} but has no history file for it"
            )));
        };
        return timelines::route(tli, start, history, seg_size, &names.segments).map_err(|e| {
            SessionError::fatal(
                Exit::OtherCluster,
                anyhow::anyhow!(
                    "archive is on timeline {tli}, which is not in the history of server {target} ({e}); \
                     the archive followed another branch of this cluster (nothing was changed)"
                ),
            )
        });
    }
    if tli > server_tli {
        let name = HistoryName::new(tli);
        let judged = if names.histories.iter().any(|h| h.tli() == tli) {
            let archive = local_history(fs, settings, &name)?;
            Some(timelines::behind(&archive, server_tli, identity.xlogpos))
        } else {
            None
        };
        return Err(match judged {
            Some(Behind::Diverged { switch_point }) => SessionError::fatal(
                Exit::OtherCluster,
                anyhow::anyhow!(
                    "archive is on timeline {tli}, which branched off timeline {server_tli} at {switch_point}, \
                     but server {target} is still on timeline {server_tli} and has WAL up to {}: it went another way (nothing was changed)",
                    identity.xlogpos
                ),
            ),
            Some(Behind::NotAncestor) => SessionError::fatal(
                Exit::OtherCluster,
                anyhow::anyhow!(
                    "archive is on timeline {tli}, whose history does not contain server {target}'s timeline {server_tli} (nothing was changed)"
                ),
            ),
            Some(Behind::Wait { .. }) | None => SessionError::retry(anyhow::anyhow!(
                "archive is on timeline {tli}, but server {target} is still on timeline {server_tli} (at {}); waiting for it to reach timeline {tli}",
                identity.xlogpos
            )),
        });
    }
    Ok(Route {
        tli,
        start,
        forks: Vec::new(),
    })
}

/// Says which forks the route passes and which files of the old timelines it leaves.
fn report_forks(route: &Route, conn: &Connection) {
    for fork in &route.forks {
        let (old, next, at) = (fork.old, fork.next, fork.switch_point);
        match (fork.past_fork.first(), fork.past_fork.last()) {
            (Some(first), Some(last)) => warn!(
                "the archive holds WAL of timeline {old} past {at}, where timeline {next} of server {} branched off: \
                 {} file(s) from {first} to {last} hold WAL written on timeline {old} after the fork, which is not in the server's history; \
                 they are left untouched, and recovery following timeline {next} does not read them; continuing on timeline {next}",
                conn.target(),
                fork.past_fork.len()
            ),
            _ => info!(
                "timeline {old} ended at {at} on server {}; continuing on timeline {next}",
                conn.target()
            ),
        }
    }
}

/// An empty archive starts where the slot restarts, else at the server's position. The
/// slot's restart position comes from `READ_REPLICATION_SLOT` (15+), or before 15 from
/// `pg_replication_slots` over an ordinary connection (pg_receivewal 14 starts at the
/// server's position instead, and the slot then moves past WAL it kept for the archive).
async fn start_from_server(
    conn: &mut Connection,
    settings: &ReceiveSettings,
    identity: &pgwalrus_client::SystemIdentity,
    seg_size: WalSegSize,
    server_history: &mut ServerHistory,
) -> Result<(TimeLineId, Lsn), SessionError> {
    let current = (identity.timeline, identity.xlogpos.segment_start(seg_size));
    let Some(slot) = settings.slot.as_deref() else {
        return Ok(current);
    };
    let missing = |conn: &Connection| {
        SessionError::fatal(
            Exit::Config,
            anyhow::anyhow!(
                "replication slot \"{slot}\" does not exist on {}; create it with --create-slot",
                conn.target()
            ),
        )
    };
    if conn.server_version_num() >= 150_000 {
        let Some(info) = conn
            .read_replication_slot(slot)
            .await
            .map_err(client_error)?
        else {
            return Err(missing(conn));
        };
        return Ok(match info.restart_lsn {
            Some(restart) => (
                info.restart_tli.unwrap_or(identity.timeline),
                restart.segment_start(seg_size),
            ),
            None => current,
        });
    }
    match crate::connection::slot_row(&settings.conn, conn.host(), slot).await {
        Ok(None) => Err(missing(conn)),
        Ok(Some(SlotRow {
            restart_lsn: Some(restart),
            ..
        })) => {
            // The view has no restart timeline: the server's history knows it.
            let tli = server_history
                .get(conn)
                .await?
                .map_or(identity.timeline, |h| h.timeline_of(restart));
            info!(
                "the archive is empty: starting at the restart position {restart} of replication slot \"{slot}\" \
                 (read from pg_replication_slots on {}: before PostgreSQL 15 there is no READ_REPLICATION_SLOT)",
                conn.target()
            );
            Ok((tli, restart.segment_start(seg_size)))
        }
        Ok(Some(_)) => Ok(current),
        Err(e) => {
            warn!(
                "could not read the restart position of replication slot \"{slot}\" from pg_replication_slots on {} ({e}); \
                 before PostgreSQL 15 that view is the only source, so the empty archive starts at the server's current position {}: \
                 WAL the slot keeps from before it is not archived (allow this role an ordinary connection to database \"postgres\" in pg_hba.conf, \
                 or seed the archive with the first segment wanted)",
                conn.target(),
                current.1
            );
            Ok(current)
        }
    }
}

async fn history_if_missing(
    conn: &mut Connection,
    settings: &ReceiveSettings,
    tli: TimeLineId,
) -> Result<Option<bytes::Bytes>, SessionError> {
    if tli == TimeLineId::ONE {
        return Ok(None);
    }
    // Plain, or compressed by whoever wrote it: either way the archive has it.
    let plain = HistoryName::new(tli);
    let variants = std::iter::once(None).chain(Compression::ALL.into_iter().map(Some));
    if variants
        .map(|c| FileName::from(plain.with_compression(c)).to_string())
        .any(|name| settings.dir.join(name).exists())
    {
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

/// The server sent WAL that does not verify: stop, never archive it silently.
fn corrupt_wal(e: &pgwalrus_wal::DecodeError, server: &str, system_id: u64) -> SessionError {
    SessionError::fatal(
        Exit::CorruptWal,
        anyhow::anyhow!(
            "server {server} (system identifier {system_id}) sent WAL that fails verification at {}: {}; \
             the chunk completing it was not archived and its segment stays .partial",
            e.lsn,
            e.kind
        ),
    )
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
        histories,
        archive_has_wal,
        partial,
        system_id,
    } = prepared;
    let server = conn.target().to_owned();
    let slot = settings.slot.as_deref();
    let policy = FeedbackPolicy {
        status_interval: settings.status_interval,
        report_flush: slot.is_some() || settings.synchronous,
        synchronous: settings.synchronous,
    };
    let mut inspector = settings
        .verify
        .then(|| StreamInspector::new(system_id, seg_size));
    let start_history = histories
        .iter()
        .find(|(t, _)| *t == tli)
        .map(|(_, content)| content.clone());
    for (tli, content) in histories {
        send(writer, Command::History { tli, content }).await?;
    }
    send(writer, Command::Start { tli, lsn: start }).await?;
    if let Some(inspector) = inspector.as_mut() {
        inspector.start(
            tli,
            start,
            stream_history(&settings.dir, tli, start_history.as_deref()),
        );
    }
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
        // Biased: a stop first, then what the writer reported, then timers, then the socket;
        // the inline writer's group flush once the socket has nothing more (or much was
        // written without a pause), and its idle work only once nothing else is left.
        let actions: Actions = tokio::select! {
            biased;
            () = stop.recv() => {
                graceful_stop(&mut core, stream, writer).await?;
                return Ok(End::Stopped);
            }
            event = writer.recv() => match event {
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
                None => return Err(retry(anyhow::anyhow!("the writer stopped"), streamed)),
            },
            () = sleep => core.on_tick(now()),
            // Inline: WAL that never pauses must not hold back the acknowledgement forever.
            () = std::future::ready(()), if writer.flush_overdue() => {
                writer.group_flush();
                Actions::new()
            }
            msg = stream.next() => match msg {
                Ok(Some(ReplicationMessage::XLogData { start, end, wal_end, data, .. })) => {
                    streamed = true;
                    let at = now();
                    progress.on_data(end, wal_end, data.len(), at);
                    // Checked before the writer sees it: the chunk that completes a corrupt
                    // record is never archived.
                    if let Some(inspector) = inspector.as_mut()
                        && let Err(e) = inspector.check(&data)
                    {
                        return Err(corrupt_wal(&e, &server, system_id));
                    }
                    send(writer, Command::Data { tli, lsn: start, bytes: data }).await
                        .map_err(|e| mark_streamed(e, streamed))?;
                    core.on_data(end, at)
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
                    let start = next_start.segment_start(seg_size);
                    let kept = if next_start.is_segment_start(seg_size) { "" } else { " (its last segment stays .partial)" };
                    info!(
                        "end of timeline {tli}: server {} switched to timeline {next_tli} at {next_start}; \
                         received timeline {tli} up to {write}{kept}; switching to timeline {next_tli}, streaming it from {start}",
                        stream.connection().target()
                    );
                    close_partial(writer, &mut core).await?;
                    let mut conn = stream.into_connection().map_err(|_| SessionError::retry(anyhow::anyhow!("replication stream did not end cleanly at the timeline switch")))?;
                    tli = next_tli;
                    let fetched = history_if_missing(&mut conn, settings, tli).await?;
                    if let Some(content) = fetched.clone() {
                        send(writer, Command::History { tli, content }).await?;
                    }
                    send(writer, Command::Start { tli, lsn: start }).await?;
                    if let Some(inspector) = inspector.as_mut() {
                        inspector.start(tli, start, stream_history(&settings.dir, tli, fetched.as_deref()));
                    }
                    position = StreamPosition { tli, start, slot, archive_has_wal: true, partial: None };
                    stream = conn.start_physical(slot, start, tli).await.map_err(|e| stream_error(e, &position))?;
                    core = ReceiverCore::new(policy, start, settings.endpos);
                    progress.start(tli, start, seg_size);
                    core.on_start(now())
                }
                Ok(None) => return Err(retry(anyhow::anyhow!("server ended the replication stream"), streamed)),
                Err(e) => return Err(mark_streamed(stream_error(e, &position), streamed)),
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
    if writer.send(command).await.is_ok() {
        return Ok(());
    }
    // The writer has stopped: it said why among its events.
    while let Some(event) = writer.recv().await {
        if let Event::Failed(e) = event {
            return Err(archive_error(e));
        }
    }
    Err(SessionError::retry(anyhow::anyhow!("the writer stopped")))
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
                close_and_report(core, stream, writer).await?;
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
        match writer.recv().await {
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
                return Err(SessionError::retry(anyhow::anyhow!("the writer stopped")));
            }
        }
    }
}

/// A clean stop's last step before the stream ends: fsync and close the open segment (kept
/// `.partial`), then tell the server the final positions (best effort: the data is durable
/// either way). Returns the durable position.
async fn close_and_report(
    core: &mut ReceiverCore,
    stream: &mut ReplicationStream,
    writer: &mut WriterHandle,
) -> Result<Lsn, SessionError> {
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
    Ok(flush)
}

/// SIGINT/SIGTERM: finish in-flight writes, fsync, report, send CopyDone.
async fn graceful_stop(
    core: &mut ReceiverCore,
    mut stream: ReplicationStream,
    writer: &mut WriterHandle,
) -> Result<(), SessionError> {
    let flush = close_and_report(core, &mut stream, writer).await?;
    if let Err(e) = stream.finish().await {
        debug!("while ending the replication stream: {e}");
    }
    info!("stopped at {flush}; the current segment stays resumable");
    Ok(())
}
