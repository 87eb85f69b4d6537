//! The start of a session: connect, identify the server, guard the archive against another
//! cluster, compare the archive's history files with the server's, create the slot, and
//! choose where to stream from (the archive's end, else the slot's restart point, else the
//! server's position) along the server's history by the rules of [`timelines`].
//!
//! One [`Start`] value holds what the steps share (the connection, the server's identity
//! and history, the archive's listing), so each step is a method, not an argument list.

use std::path::PathBuf;

use bytes::Bytes;
use pgwalrus_archive::{Inventory, durable, identity, reader, resume};
use pgwalrus_client::{Connection, SlotRow, SqlState, SystemIdentity};
use pgwalrus_wal::history::TimelineHistory;
use pgwalrus_wal::names::{FileName, HistoryName};
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};
use tracing::{debug, info, warn};

use crate::classify::{SessionError, archive_error, client_error};
use crate::engine::EngineFs;
use crate::error::{Error, StopKind};
use crate::settings::ReceiveSettings;
use crate::source::ConnectionSource;
use crate::timelines::{self, Behind, Route};

/// What one session leaves for the next.
#[derive(Debug, Default)]
pub(crate) struct Carried {
    /// This engine created the slot (on some server): "already exists" is fine from now on.
    pub(crate) slot_created: bool,
    /// The server the last session streamed from.
    pub(crate) server: Option<String>,
}

/// What the start of a session found out: where to stream from and what to write first.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) conn: Connection,
    pub(crate) tli: TimeLineId,
    pub(crate) start: Lsn,
    pub(crate) seg_size: WalSegSize,
    /// History files to write before the first segment, oldest timeline first.
    pub(crate) histories: Vec<(TimeLineId, Bytes)>,
    pub(crate) archive_has_wal: bool,
    /// The `.partial` the stream rewrites first, for error messages.
    pub(crate) partial: Option<PathBuf>,
    /// The server's system identifier (streaming verification checks every page's).
    pub(crate) system_id: u64,
}

/// The steps of a session's start, over one connection.
struct Start<'a, F> {
    settings: &'a ReceiveSettings,
    conn: Connection,
    identity: SystemIdentity,
    seg_size: WalSegSize,
    fs: &'a F,
    inventory: &'a Inventory,
    server_history: ServerHistory,
}

/// Connects through `source` and prepares a session (see the module documentation).
pub(crate) async fn prepare<F: EngineFs, S: ConnectionSource>(
    fs: &F,
    settings: &ReceiveSettings,
    source: &mut S,
    carried: &mut Carried,
) -> Result<Prepared, SessionError> {
    let mut conn = source.connect().await.map_err(client_error)?;
    let identity = conn.identify_system().await.map_err(client_error)?;
    if identity.dbname.is_some() {
        return Err(SessionError::fatal(
            StopKind::Config,
            Error::msg("replication connection is unexpectedly database specific"),
        ));
    }
    let seg_size = conn.wal_segment_size().await.map_err(client_error)?;

    let scan = resume::scan(fs, &settings.dir, seg_size).map_err(archive_error)?;
    let evidence = identity::inspect(fs, &scan).map_err(archive_error)?;
    evidence.check_server(identity.system_id, seg_size).map_err(|e| {
        // Another cluster's header, or no WAL header at all (random bytes, another
        // segment's copy): both stop before anything is touched, worded for which it is.
        let context = if e.is_cluster_mismatch() {
            format!(
                "archive directory \"{}\" holds WAL of another cluster than server {} (nothing was changed)",
                settings.dir.display(),
                conn.target()
            )
        } else {
            format!(
                "archive directory \"{}\" holds a segment file that is not the WAL its name says, which streaming would resume into or after (nothing was changed; move the file aside)",
                settings.dir.display()
            )
        };
        SessionError::fatal(StopKind::OtherCluster, Error::context(e, context))
    })?;
    let mut start = Start {
        settings,
        server_history: ServerHistory::new(identity.timeline),
        conn,
        identity,
        seg_size,
        fs,
        inventory: &scan.inventory,
    };
    // Timelines, before anything is touched: the archive's history files must agree with
    // the server's, and the archive's timeline must be in the server's history.
    start.check_histories().await?;
    let archived = match &scan.resume {
        Some(point) => Some(start.choose_route((point.tli, point.start)).await?),
        None => None,
    };
    for temp in &scan.temp_files {
        if let Err(e) = durable::remove_temp_file(fs, &settings.dir, temp) {
            warn!(
                "could not remove temporary file {temp}: {}",
                Error::from(e).chain()
            );
        }
    }
    let archive_has_wal = scan.resume.is_some();

    if settings.create_slot
        && let Some(slot) = settings.slot.as_deref()
    {
        create_slot(&mut start.conn, settings, carried, slot).await?;
    }

    let route = match archived {
        Some(route) => route,
        None => {
            let from = start.start_from_server(source).await?;
            start.choose_route(from).await?
        }
    };
    let Start {
        mut conn, identity, ..
    } = start;
    let (tli, start) = (route.tli, route.start);
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
        if let Some(content) = history_if_missing(&mut conn, &scan.inventory, entered_tli).await? {
            histories.push((entered_tli, content));
        }
    }
    let target = conn.target().to_owned();
    info!("starting log streaming at {start} (timeline {tli}) from {target}");
    match carried.server.replace(target.clone()) {
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

/// Slot creation, in every session: a failover to another server needs the slot there
/// too. "Already exists" is fine with `if_not_exists`, and when this engine created it
/// earlier (on this server, or on the one it streamed from before).
async fn create_slot(
    conn: &mut Connection,
    settings: &ReceiveSettings,
    carried: &mut Carried,
    slot: &str,
) -> Result<(), SessionError> {
    match conn.create_physical_slot(slot, false, true).await {
        Ok(_) => {
            info!(
                "created replication slot \"{slot}\" on {} (it keeps WAL from the last checkpoint's redo point on)",
                conn.target()
            );
            carried.slot_created = true;
            Ok(())
        }
        Err(e) if e.sqlstate() == Some(SqlState::DUPLICATE_OBJECT) && carried.slot_created => {
            debug!("replication slot \"{slot}\" exists on {}", conn.target());
            Ok(())
        }
        Err(e) if e.sqlstate() == Some(SqlState::DUPLICATE_OBJECT) && settings.if_not_exists => {
            info!(
                "replication slot \"{slot}\" exists already on {}",
                conn.target()
            );
            Ok(())
        }
        // Retrying cannot help: the operator asked to create a slot that exists.
        Err(e) if e.sqlstate() == Some(SqlState::DUPLICATE_OBJECT) => Err(SessionError::fatal(
            StopKind::Config,
            Error::context(
                e,
                format!(
                    "could not create replication slot \"{slot}\"; add --if-not-exists to stream through the existing slot"
                ),
            ),
        )),
        Err(e) if e.is_transient() => Err(SessionError::retry(e)),
        Err(e) if e.is_permanent() => Err(SessionError::fatal(StopKind::Config, e)),
        Err(e) => Err(SessionError::fatal(StopKind::Connection, e)),
    }
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
                SessionError::retry(Error::context(
                    e,
                    format!(
                        "server {} sent a history file {} that does not parse",
                        conn.target(),
                        file.filename
                    ),
                ))
            }),
        Err(e) if e.sqlstate() == Some(SqlState::UNDEFINED_FILE) => Ok(None),
        Err(e) => Err(client_error(e)),
    }
}

impl<F: EngineFs> Start<'_, F> {
    /// Every history file of the archive for a timeline up to the server's must agree with
    /// the server's (`TIMELINE_HISTORY`, or the part of the server's own history that covers
    /// it when the server has no file of that timeline): a disagreement means the archive
    /// followed another promotion of this cluster, and nothing written from here would fit.
    async fn check_histories(&mut self) -> Result<(), SessionError> {
        for &name in &self.inventory.histories {
            let tli = name.tli();
            if tli == TimeLineId::ONE {
                continue;
            }
            // Every history file must parse, a future timeline's too: a damaged one is
            // named now, before anything is touched, not when the server gets there.
            let local = self.local_history(&name)?;
            if tli > self.server_history.tli {
                continue;
            }
            let path = self.settings.dir.join(name.to_string());
            let server = if tli == self.server_history.tli {
                self.server_history.get(&mut self.conn).await?.cloned()
            } else {
                match fetch_history(&mut self.conn, tli).await? {
                    Some(h) => Some(h),
                    None => self
                        .server_history
                        .get(&mut self.conn)
                        .await?
                        .and_then(|h| timelines::history_of(h, tli)),
                }
            };
            let Some(server) = server else {
                debug!(
                    "server {} has no history of timeline {tli}; \"{}\" not compared",
                    self.conn.target(),
                    path.display()
                );
                continue;
            };
            if let Some(conflict) = timelines::first_conflict(&local, &server) {
                return Err(SessionError::fatal(
                    StopKind::OtherCluster,
                    Error::msg(format!(
                        "timeline history file \"{}\" in the archive disagrees with server {}'s history of timeline {tli}: {conflict}; \
                         the archive followed another promotion of this cluster than the server did (nothing was changed)",
                        path.display(),
                        self.conn.target()
                    )),
                ));
            }
        }
        Ok(())
    }

    /// A history file of the archive, read (decompressed) and parsed.
    fn local_history(&self, name: &HistoryName) -> Result<TimelineHistory, SessionError> {
        let content = reader::read_file(self.fs, &self.settings.dir, &FileName::History(*name))
            .map_err(archive_error)?;
        TimelineHistory::parse(name.tli(), &content).map_err(|e| {
            SessionError::fatal(
                StopKind::OtherCluster,
                Error::context(
                    e,
                    format!(
                        "timeline history file \"{}\" in the archive does not parse (nothing was changed)",
                        self.settings.dir.join(name.to_string()).display()
                    ),
                ),
            )
        })
    }

    /// Where to stream from `from` (the archive's end, or the server's start for an empty
    /// archive) along the server's history; see [`timelines`] for the rules.
    async fn choose_route(
        &mut self,
        (tli, start): (TimeLineId, Lsn),
    ) -> Result<Route, SessionError> {
        let server_tli = self.identity.timeline;
        let target = self.conn.target().to_owned();
        if tli < server_tli {
            let seg_size = self.seg_size;
            let Some(history) = self.server_history.get(&mut self.conn).await? else {
                return Err(SessionError::retry(Error::msg(format!(
                    "server {target} is on timeline {server_tli} but has no history file for it"
                ))));
            };
            return timelines::route(tli, start, history, seg_size, &self.inventory.segments)
                .map_err(|e| {
                    SessionError::fatal(
                        StopKind::OtherCluster,
                        Error::msg(format!(
                            "archive is on timeline {tli}, which is not in the history of server {target} ({e}); \
                             the archive followed another branch of this cluster (nothing was changed)"
                        )),
                    )
                });
        }
        if tli > server_tli {
            let xlogpos = self.identity.xlogpos;
            let judged = if let Some(name) = self.inventory.history(tli) {
                let archive = self.local_history(&name)?;
                Some(timelines::behind(&archive, server_tli, xlogpos))
            } else {
                None
            };
            return Err(match judged {
                Some(Behind::Diverged { switch_point }) => SessionError::fatal(
                    StopKind::OtherCluster,
                    Error::msg(format!(
                        "archive is on timeline {tli}, which branched off timeline {server_tli} at {switch_point}, \
                         but server {target} is still on timeline {server_tli} and has WAL up to {xlogpos}: it went another way (nothing was changed)"
                    )),
                ),
                Some(Behind::NotAncestor) => SessionError::fatal(
                    StopKind::OtherCluster,
                    Error::msg(format!(
                        "archive is on timeline {tli}, whose history does not contain server {target}'s timeline {server_tli} (nothing was changed)"
                    )),
                ),
                Some(Behind::Wait { .. }) | None => SessionError::retry(Error::msg(format!(
                    "archive is on timeline {tli}, but server {target} is still on timeline {server_tli} (at {xlogpos}); waiting for it to reach timeline {tli}"
                ))),
            });
        }
        Ok(Route {
            tli,
            start,
            forks: Vec::new(),
        })
    }

    /// An empty archive starts where the slot restarts, else at the server's position. The
    /// slot's restart position comes from `READ_REPLICATION_SLOT` (15+), or before 15 from
    /// `pg_replication_slots` over an ordinary connection made by the source (pg_receivewal
    /// 14 starts at the server's position instead, and the slot then moves past WAL it kept
    /// for the archive).
    async fn start_from_server<S: ConnectionSource>(
        &mut self,
        source: &mut S,
    ) -> Result<(TimeLineId, Lsn), SessionError> {
        let identity = &self.identity;
        let current = (
            identity.timeline,
            identity.xlogpos.segment_start(self.seg_size),
        );
        let Some(slot) = self.settings.slot.as_deref() else {
            return Ok(current);
        };
        let missing = |conn: &Connection| {
            SessionError::fatal(
                StopKind::Config,
                Error::msg(format!(
                    "replication slot \"{slot}\" does not exist on {}; create it with --create-slot",
                    conn.target()
                )),
            )
        };
        if self.conn.server_version_num() >= 150_000 {
            let Some(info) = self
                .conn
                .read_replication_slot(slot)
                .await
                .map_err(client_error)?
            else {
                return Err(missing(&self.conn));
            };
            return Ok(match info.restart_lsn {
                Some(restart) => (
                    info.restart_tli.unwrap_or(identity.timeline),
                    restart.segment_start(self.seg_size),
                ),
                None => current,
            });
        }
        let host = self.conn.host().clone();
        let row = source.slot_row(&host, slot).await;
        match row {
            Some(Ok(None)) => Err(missing(&self.conn)),
            Some(Ok(Some(SlotRow {
                restart_lsn: Some(restart),
                ..
            }))) => {
                // The view has no restart timeline: the server's history knows it.
                let tli = self
                    .server_history
                    .get(&mut self.conn)
                    .await?
                    .map_or(self.identity.timeline, |h| h.timeline_of(restart));
                info!(
                    "the archive is empty: starting at the restart position {restart} of replication slot \"{slot}\" \
                     (read from pg_replication_slots on {}: before PostgreSQL 15 there is no READ_REPLICATION_SLOT)",
                    self.conn.target()
                );
                Ok((tli, restart.segment_start(self.seg_size)))
            }
            Some(Ok(Some(_))) => Ok(current),
            Some(Err(e)) => {
                warn!(
                    "could not read the restart position of replication slot \"{slot}\" from pg_replication_slots on {} ({}); \
                     before PostgreSQL 15 that view is the only source, so the empty archive starts at the server's current position {}: \
                     WAL the slot keeps from before it is not archived (allow this role an ordinary connection to database \"postgres\" in pg_hba.conf, \
                     or seed the archive with the first segment wanted)",
                    self.conn.target(),
                    Error::from(e).chain(),
                    current.1
                );
                Ok(current)
            }
            None => {
                warn!(
                    "the restart position of replication slot \"{slot}\" on {} is not known: before PostgreSQL 15 it is read over an ordinary \
                     connection, which this connection source does not make; the empty archive starts at the server's current position {}: \
                     WAL the slot keeps from before it is not archived (seed the archive with the first segment wanted)",
                    self.conn.target(),
                    current.1
                );
                Ok(current)
            }
        }
    }
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

/// The history file of `tli` from the server, unless the archive (as `inventory` lists it)
/// has it already, plain or compressed by whoever wrote it; `None` on timeline 1.
pub(crate) async fn history_if_missing(
    conn: &mut Connection,
    inventory: &Inventory,
    tli: TimeLineId,
) -> Result<Option<Bytes>, SessionError> {
    if tli == TimeLineId::ONE || inventory.history(tli).is_some() {
        return Ok(None);
    }
    let file = conn.timeline_history(tli).await.map_err(client_error)?;
    Ok(Some(file.content))
}
