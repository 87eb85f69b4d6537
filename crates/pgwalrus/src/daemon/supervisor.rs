//! The daemon's servers and their engines: start each, park one whose engine stopped for a
//! reason retrying cannot fix (another cluster's archive, WAL gone, corrupt WAL, a dropped
//! slot, bad settings) while the others go on, and apply a new configuration by name —
//! added servers start, removed ones stop cleanly, changed ones restart once their old
//! engine has stopped, unchanged ones are left alone (their replication connection stays).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use pgwalrus_bucket::ShipStatus;
use pgwalrus_receiver::{FromConfig, ShutdownTrigger, StatusReceiver, StopKind, Stopped};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use super::config::{DaemonConfig, ServerConfig};

/// A request from the HTTP side, answered with a summary or why not.
#[derive(Debug)]
pub(crate) enum Request {
    /// Re-read the configuration file.
    Reload(oneshot::Sender<Result<String, String>>),
    /// Start a parked server again.
    Retry(String, oneshot::Sender<Result<String, String>>),
}

/// Why a server is parked.
#[derive(Debug, Clone)]
pub struct Parked {
    /// The engine's reason; `None` when it stopped without one.
    pub kind: Option<StopKind>,
    /// What happened, whole chain.
    pub error: String,
    /// Since when.
    pub since: SystemTime,
}

/// What the HTTP side shows of one server.
#[derive(Debug, Clone)]
pub struct ServerView {
    /// The server's name.
    pub name: String,
    /// Its engine's status.
    pub status: StatusReceiver,
    /// Its shipping stage's status, with an object-storage archive.
    pub ship_status: Option<watch::Receiver<ShipStatus>>,
    /// Set while parked.
    pub parked: Option<Parked>,
    /// What the daemon observes beside the engine (retention, slot, free space).
    pub observed: Observed,
}

/// What the daemon learns of a server beside its engine's status, shared with the tasks
/// that find it out.
pub type Observed = Arc<Mutex<Observations>>;

/// See [`Observed`].
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// The oldest segment retention keeps, once retention ran.
    pub horizon: Option<String>,
    /// The slot's `wal_status` (`reserved`, `extended`, `unreserved`, `lost`).
    pub wal_status: Option<String>,
    /// The slot's `safe_wal_size`, as the server prints it.
    pub safe_wal_size: Option<String>,
    /// Bytes free on the archive's file system.
    pub free_bytes: Option<u64>,
}

/// Every server's view, in the configuration's order.
pub type View = Arc<Mutex<Vec<ServerView>>>;

/// An engine that ended.
#[derive(Debug)]
pub(crate) struct End {
    name: String,
    generation: u64,
    result: Result<Stopped, crate::archiver::Stop>,
}

enum Run {
    Running(ShutdownTrigger),
    /// Asked to stop; then what.
    Stopping(After),
    Parked(Parked),
}

enum After {
    Remove,
    Restart(Box<ServerConfig>),
}

struct Server {
    config: ServerConfig,
    generation: u64,
    status: StatusReceiver,
    ship_status: Option<watch::Receiver<ShipStatus>>,
    run: Run,
    observed: Observed,
}

/// The servers of the running configuration.
pub(crate) struct Supervisor {
    config: DaemonConfig,
    servers: BTreeMap<String, Server>,
    view: View,
    ends_tx: mpsc::UnboundedSender<End>,
    ends_rx: mpsc::UnboundedReceiver<End>,
    generation: u64,
}

impl Supervisor {
    pub(crate) fn new(config: DaemonConfig) -> Self {
        let (ends_tx, ends_rx) = mpsc::unbounded_channel();
        Self {
            config,
            servers: BTreeMap::new(),
            view: View::default(),
            ends_tx,
            ends_rx,
            generation: 0,
        }
    }

    pub(crate) fn view(&self) -> View {
        self.view.clone()
    }

    /// How many servers the running configuration has.
    pub(crate) fn len(&self) -> usize {
        self.config.servers.len()
    }

    pub(crate) fn start_all(&mut self) {
        for server in self.config.servers.clone() {
            self.start(server);
        }
        self.refresh();
    }

    /// Starts `config`'s engine (replacing whatever ran under its name).
    fn start(&mut self, config: ServerConfig) {
        self.generation += 1;
        let generation = self.generation;
        let name = config.name.clone();
        let source = FromConfig::new(config.conn.clone());
        let server = match ensure_dir(&config.settings.dir) {
            Ok(()) => {
                let (handle, run) = crate::archiver::start(
                    &format!("pgwalrus-{name}"),
                    config.settings.clone(),
                    source,
                    config.ship.clone(),
                );
                let ends = self.ends_tx.clone();
                let task_name = name.clone();
                tokio::spawn(async move {
                    let result = run.await;
                    let _ = ends.send(End {
                        name: task_name,
                        generation,
                        result,
                    });
                });
                match &config.ship {
                    Some(ship) => info!(
                        server = %name,
                        "started archiving into {} through the spool \"{}\"",
                        ship.bucket.url,
                        config.settings.dir.display()
                    ),
                    None => {
                        info!(server = %name, "started archiving into \"{}\"", config.settings.dir.display())
                    }
                }
                Server {
                    config,
                    generation,
                    status: handle.status,
                    ship_status: handle.ship_status,
                    run: Run::Running(handle.trigger),
                    observed: Observed::default(),
                }
            }
            Err(e) => {
                let parked = Parked {
                    kind: Some(StopKind::Io),
                    error: format!(
                        "could not create the archive directory \"{}\": {e}",
                        config.settings.dir.display()
                    ),
                    since: crate::clock::now(),
                };
                error!(server = %name, "parked: {}", parked.error);
                Server {
                    config,
                    generation,
                    status: pgwalrus_receiver::status::channel().1,
                    ship_status: None,
                    run: Run::Parked(parked),
                    observed: Observed::default(),
                }
            }
        };
        self.servers.insert(name, server);
    }

    /// The next engine to end (pending forever while none runs).
    pub(crate) async fn next_end(&mut self) -> End {
        match self.ends_rx.recv().await {
            Some(end) => end,
            // The supervisor holds a sender: never closed.
            None => std::future::pending().await,
        }
    }

    pub(crate) fn on_end(&mut self, end: End) {
        let Some(server) = self.servers.get_mut(&end.name) else {
            return;
        };
        if server.generation != end.generation {
            return;
        }
        let run = std::mem::replace(
            &mut server.run,
            Run::Parked(Parked {
                kind: None,
                error: String::new(),
                since: crate::clock::now(),
            }),
        );
        match run {
            Run::Running(_) => {
                let parked = match end.result {
                    Err(stop) => {
                        let error = stop.chain();
                        let kind = stop.kind();
                        error!(
                            server = %end.name,
                            "parked ({kind}): {error}; it is retried when its configuration changes or on request (POST /servers/{}/retry)",
                            end.name
                        );
                        Parked {
                            kind: Some(kind),
                            error,
                            since: crate::clock::now(),
                        }
                    }
                    Ok(stopped) => Parked {
                        kind: None,
                        error: format!("the engine stopped ({stopped:?})"),
                        since: crate::clock::now(),
                    },
                };
                server.run = Run::Parked(parked);
            }
            Run::Stopping(After::Remove) => {
                info!(server = %end.name, "stopped and removed");
                self.servers.remove(&end.name);
            }
            Run::Stopping(After::Restart(config)) => {
                info!(server = %end.name, "restarting with its new configuration");
                self.start(*config);
            }
            parked @ Run::Parked(_) => server.run = parked,
        }
        self.refresh();
    }

    /// Applies a new configuration; returns a summary of what changed.
    pub(crate) fn apply(&mut self, new: DaemonConfig) -> String {
        if new.listen != self.config.listen {
            warn!(
                "the new listen address {} takes effect at the next start; still listening on {}",
                new.listen, self.config.listen
            );
        }
        let (mut added, mut removed, mut changed, mut kept) = (0, 0, 0, 0);
        let wanted: BTreeMap<&str, &ServerConfig> =
            new.servers.iter().map(|s| (s.name.as_str(), s)).collect();
        let names: Vec<String> = self.servers.keys().cloned().collect();
        for name in names {
            if wanted.contains_key(name.as_str()) {
                continue;
            }
            removed += 1;
            self.stop(&name, After::Remove);
        }
        for config in &new.servers {
            match self.servers.get(&config.name) {
                None => {
                    added += 1;
                    self.start(config.clone());
                }
                Some(server) if server.config == *config => kept += 1,
                Some(_) => {
                    changed += 1;
                    self.stop(&config.name, After::Restart(Box::new(config.clone())));
                }
            }
        }
        let listen = self.config.listen;
        self.config = new;
        self.config.listen = listen;
        self.refresh();
        format!("{added} added, {removed} removed, {changed} changed, {kept} unchanged")
    }

    /// Stops `name`'s engine, then does `after` (at once when it is parked).
    fn stop(&mut self, name: &str, after: After) {
        let Some(server) = self.servers.get_mut(name) else {
            return;
        };
        match std::mem::replace(&mut server.run, Run::Stopping(After::Remove)) {
            Run::Running(trigger) => {
                trigger.trigger();
                server.run = Run::Stopping(after);
            }
            Run::Stopping(_) => server.run = Run::Stopping(after),
            Run::Parked(_) => match after {
                After::Remove => {
                    self.servers.remove(name);
                }
                After::Restart(config) => self.start(*config),
            },
        }
    }

    /// Applies each server's retention to its archive, on blocking threads (the supervisor
    /// loop goes on); what was removed is logged.
    pub(crate) fn retain(&self) {
        for server in self.servers.values() {
            let keep = server.config.keep;
            if !keep.is_set() || matches!(server.run, Run::Stopping(_)) {
                continue;
            }
            let (name, dir, observed) = (
                server.config.name.clone(),
                server.config.settings.dir.clone(),
                server.observed.clone(),
            );
            // A spool keeps everything the bucket does not hold yet.
            let shipped = match &server.ship_status {
                None => None,
                Some(ship) => match ship.borrow().shipped_segment.clone() {
                    Some(segment) => Some(segment),
                    None => continue,
                },
            };
            tokio::task::spawn_blocking(move || {
                match crate::prune::prune_shipped(&dir, keep, false, shipped.as_deref()) {
                    Ok(plan) => {
                        if !plan.remove.is_empty() {
                            info!(
                                server = %name,
                                "retention removed {} segment(s) ({} bytes), {} to {}",
                                plan.remove.len(),
                                plan.freed,
                                plan.remove[0],
                                plan.remove[plan.remove.len() - 1]
                            );
                        }
                        observed.lock().unwrap_or_else(|e| e.into_inner()).horizon =
                            plan.horizon.map(|h| h.to_string());
                    }
                    Err(e) => warn!(server = %name, "retention failed: {e:#}"),
                }
            });
        }
    }

    /// Looks at what the engines do not: each server's slot (`wal_status`,
    /// `safe_wal_size`, over an ordinary connection to the host it streams from) and the
    /// free space of its archive's file system. Runs in tasks; failures leave the old values.
    pub(crate) fn observe(&self) {
        for server in self.servers.values() {
            let observed = server.observed.clone();
            let dir = server.config.settings.dir.clone();
            let free =
                pgwalrus_archive::ArchiveFs::available_space(&pgwalrus_archive::StdFs::new(), &dir)
                    .ok();
            observed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .free_bytes = free;
            let Some(slot) = server.config.settings.slot.clone() else {
                continue;
            };
            let status = server.status.borrow().clone();
            let conn = server.config.conn.clone();
            // The host the engine streams from, else the first of the list.
            let host = conn
                .hosts
                .iter()
                .find(|h| Some(h.port) == status.sender_port)
                .or(conn.hosts.first())
                .cloned();
            let Some(host) = host else { continue };
            tokio::spawn(async move {
                if let Ok(Some(row)) = pgwalrus_client::slot_row(&conn, &host, &slot).await {
                    let mut o = observed.lock().unwrap_or_else(|e| e.into_inner());
                    o.wal_status = row.wal_status;
                    o.safe_wal_size = row.safe_wal_size;
                }
            });
        }
    }

    /// Starts a parked server again.
    pub(crate) fn retry(&mut self, name: &str) -> Result<String, String> {
        let config = match self.servers.get(name) {
            None => return Err(format!("no server \"{name}\"")),
            Some(Server {
                run: Run::Parked(_),
                config,
                ..
            }) => config.clone(),
            Some(_) => return Err(format!("server \"{name}\" is not parked")),
        };
        info!(server = %name, "retrying on request");
        self.start(config);
        self.refresh();
        Ok(format!("server \"{name}\" restarted"))
    }

    /// Stops every engine cleanly and waits for them.
    pub(crate) async fn stop_all(&mut self) {
        let names: Vec<String> = self.servers.keys().cloned().collect();
        for name in &names {
            self.stop(name, After::Remove);
        }
        self.refresh();
        while self
            .servers
            .values()
            .any(|s| matches!(s.run, Run::Stopping(_)))
        {
            let end = self.next_end().await;
            self.on_end(end);
        }
    }

    /// Rebuilds what the HTTP side shows: the configuration's servers in its order, then
    /// those still stopping after a removal.
    fn refresh(&self) {
        let mut rows: Vec<ServerView> = Vec::new();
        let order = self
            .config
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.servers.keys().map(String::as_str));
        for name in order {
            if rows.iter().any(|r| r.name == name) {
                continue;
            }
            let Some(server) = self.servers.get(name) else {
                continue;
            };
            rows.push(ServerView {
                name: name.to_owned(),
                observed: server.observed.clone(),
                status: server.status.clone(),
                ship_status: server.ship_status.clone(),
                parked: match &server.run {
                    Run::Parked(p) => Some(p.clone()),
                    _ => None,
                },
            });
        }
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = rows;
    }
}

/// Creates the archive directory `dir` if it is missing, durably: every directory made is
/// entered in its parent, and the parent fsynced, before any WAL goes in (a crash must not
/// take the directory, and the WAL in it, away after the slot moved on).
fn ensure_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    std::fs::create_dir_all(dir)?;
    let fs = pgwalrus_archive::StdFs::new();
    for made in missing {
        if let Some(parent) = made.parent() {
            pgwalrus_archive::durable::sync_dir(&fs, parent, pgwalrus_archive::Durability::Fsync)
                .map_err(std::io::Error::other)?;
        }
    }
    Ok(())
}
