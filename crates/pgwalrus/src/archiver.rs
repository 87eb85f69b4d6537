//! One server's archiving as a unit, shared by `receive` and the daemon: the receive engine
//! on its thread and, with an object-storage archive, the shipping stage beside it.
//!
//! With a bucket, an empty spool is first prepared from the bucket (so the engine resumes
//! where the WAL in the bucket ends); the stage starts once the engine knows which cluster
//! it streams from, and waits out a bucket that does not answer yet while WAL keeps going
//! into the spool. A permanent shipping failure (a key holding other WAL, another cluster's
//! prefix, a store that ignores create-only writes) stops the engine cleanly; when the
//! engine stops, the stage ships what was completed before it ends.

use std::time::Duration;

use pgwalrus_bucket::{
    Bucket, BucketSettings, Cluster, ProcessEnv, ShipSettings, ShipStatus, Shipper,
};
use pgwalrus_receiver::{
    ConnectionSource, FlushCap, ReceiveSettings, ReceiverStatus, Shutdown, ShutdownTrigger,
    StatusReceiver, StopKind, StopReason, Stopped,
};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::exit::Exit;

/// How often the shipping stage looks at the spool for newly completed files.
const SHIP_POLL: Duration = Duration::from_millis(500);

/// First and longest wait for a bucket that does not answer at start.
const BUCKET_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// Where and how to ship, besides the engine's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipConfig {
    /// The bucket.
    pub bucket: BucketSettings,
    /// `--ship-partial-interval` / `ship_partial_interval`.
    pub partial_interval: Option<Duration>,
    /// `--flush-after-shipped` / `flush_after_shipped`: report flush to the server only up
    /// to what the bucket holds, so the slot keeps the WAL on the server until then.
    pub flush_after_shipped: bool,
}

/// A client for `settings`, resolved against the process environment the AWS way.
///
/// # Errors
/// The settings or the environment are not usable.
pub(crate) fn open_bucket(settings: &BucketSettings) -> Result<Bucket, pgwalrus_bucket::Error> {
    Bucket::open(&settings.resolve(&ProcessEnv)?)
}

/// [`open_bucket`] for `restore`: a store that is briefly unavailable (a 503 while a node
/// rejoins its cluster) is waited for, up to about a minute, before recovery is stopped.
pub(crate) fn open_bucket_patient(
    settings: &BucketSettings,
) -> Result<Bucket, pgwalrus_bucket::Error> {
    Bucket::open_with_retries(&settings.resolve(&ProcessEnv)?, 10)
}

/// Why an archiver stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The engine stopped with this reason.
    Engine(StopReason),
    /// Shipping failed (or could not start) for good.
    Ship(pgwalrus_bucket::Error),
    /// The engine's thread could not start.
    Spawn(std::io::Error),
}

impl Stop {
    /// The engine's kind of reason this is, for the daemon's parking and the exit code.
    pub(crate) fn kind(&self) -> StopKind {
        match self {
            Stop::Engine(reason) => reason.kind,
            Stop::Ship(e) => ship_kind(e),
            Stop::Spawn(_) => StopKind::Io,
        }
    }

    /// The whole cause chain, on one line.
    pub(crate) fn chain(&self) -> String {
        match self {
            Stop::Engine(reason) => reason.error.chain(),
            Stop::Ship(e) => pgwalrus_bucket::ship::error_chain(e),
            Stop::Spawn(e) => format!("could not start the receive engine: {e}"),
        }
    }
}

/// Shipping failures as the engine's kinds: another cluster's prefix or a key holding other
/// WAL is an archive of another cluster; the spool is local I/O; a store that does not answer
/// is like a lost connection; the rest (refused settings, denied access, a store that ignores
/// create-only writes) is configuration.
pub(crate) fn ship_kind(e: &pgwalrus_bucket::Error) -> StopKind {
    use pgwalrus_bucket::Error as E;
    if e.is_archive_mismatch() {
        StopKind::OtherCluster
    } else if matches!(e, E::Damaged { .. } | E::Local(_) | E::LocalFile { .. }) {
        StopKind::Io
    } else if matches!(e, E::Store { .. }) && !e.is_permanent() {
        StopKind::Connection
    } else {
        StopKind::Config
    }
}

/// The exit code of each reason to stop.
pub(crate) fn exit_of(kind: StopKind) -> Exit {
    match kind {
        StopKind::Config => Exit::Config,
        StopKind::OtherCluster => Exit::OtherCluster,
        StopKind::WalGone => Exit::WalGone,
        StopKind::Io => Exit::Io,
        StopKind::CorruptWal => Exit::CorruptWal,
        // `StopKind` may grow; an unknown reason is reported like a lost connection, which
        // a service manager retries.
        _ => Exit::Connection,
    }
}

/// What a caller holds of a started archiver: its status channels and the trigger that
/// stops it cleanly.
#[derive(Debug, Clone)]
pub struct Handle {
    /// The engine's status (starting until the engine runs).
    pub status: StatusReceiver,
    /// The shipping stage's status, with a bucket.
    pub ship_status: Option<watch::Receiver<ShipStatus>>,
    /// Stops the archiver cleanly.
    pub trigger: ShutdownTrigger,
}

/// Starts an archiver: returns its handle at once, and the future that runs it — prepares
/// an empty spool from the bucket, starts the engine (thread `name`) and the shipping stage,
/// and ends when the engine stops (after the trigger fired, at its end position, or for a
/// reason) or shipping fails for good (the engine is then stopped cleanly), once the stage
/// has shipped what the engine completed.
///
/// The future's error says why it stopped; a shipping failure wins over the engine's clean
/// stop.
pub(crate) fn start<S: ConnectionSource>(
    name: &str,
    settings: ReceiveSettings,
    source: S,
    ship_config: Option<ShipConfig>,
) -> (Handle, impl Future<Output = Result<Stopped, Stop>> + use<S>) {
    let mut settings = settings;
    // With flush-after-shipped, the engine reports at most what the bucket holds.
    let cap = ship_config
        .as_ref()
        .filter(|c| c.flush_after_shipped)
        .map(|_| {
            let (tx, cap) = FlushCap::channel(pgwalrus_wal::Lsn::INVALID);
            settings.flush_cap = Some(cap);
            tx
        });
    let (trigger, shutdown) = Shutdown::new();
    let (status_tx, status) = pgwalrus_receiver::status::channel();
    let ship_status = ship_config.as_ref().map(|config| {
        watch::channel(ShipStatus {
            url: config.bucket.url.to_string(),
            ..ShipStatus::default()
        })
    });
    let handle = Handle {
        status: status.clone(),
        ship_status: ship_status.as_ref().map(|(_, rx)| rx.clone()),
        trigger: trigger.clone(),
    };
    let name = name.to_owned();
    let run = async move {
        let mut stopping = shutdown.clone();
        let shipping = match ship_config.zip(ship_status) {
            None => None,
            Some((config, (ship_tx, _))) => {
                let prepared = async {
                    let bucket = open_bucket(&config.bucket)?;
                    let ship_settings = ShipSettings {
                        spool: settings.dir.clone(),
                        durability: settings.durability,
                        single_writer: config.bucket.single_writer,
                        poll: SHIP_POLL,
                        partial_interval: config.partial_interval,
                    };
                    resume_from_bucket(&bucket, &ship_settings).await?;
                    Ok::<_, pgwalrus_bucket::Error>((bucket, ship_settings, ship_tx))
                };
                tokio::select! {
                    prepared = prepared => Some(prepared.map_err(Stop::Ship)?),
                    () = stopping.triggered() => {
                        return Ok(Stopped::Shutdown { flushed: pgwalrus_wal::Lsn::INVALID });
                    }
                }
            }
        };
        let engine = pgwalrus_receiver::spawn_with_status(
            &name,
            pgwalrus_archive::StdFs::new(),
            settings,
            source,
            shutdown,
            (status_tx, status.clone()),
        )
        .map_err(Stop::Spawn)?;
        let done = engine.wait();
        tokio::pin!(done);
        let Some((bucket, ship_settings, ship_tx)) = shipping else {
            return done.await.map_err(Stop::Engine);
        };
        let (stop, stop_rx) = watch::channel(false);
        if let Some(cap) = cap {
            let mut shipped = ship_tx.subscribe();
            tokio::spawn(async move {
                loop {
                    let end = shipped.borrow_and_update().shipped_end();
                    if let Some(end) = end {
                        cap.send_if_modified(|c| {
                            let rises = end > *c;
                            if rises {
                                *c = end;
                            }
                            rises
                        });
                    }
                    if shipped.changed().await.is_err() {
                        return;
                    }
                }
            });
        }
        let task = tokio::spawn(ship(bucket, ship_settings, status, stop_rx, ship_tx));
        let task = async move {
            task.await.unwrap_or_else(|e| {
                Err(pgwalrus_bucket::Error::Settings(format!(
                    "the shipping stage failed: {e}"
                )))
            })
        };
        tokio::pin!(task);
        let result = tokio::select! {
            result = &mut done => result,
            shipped = &mut task => {
                // The stage ends on its own only for a permanent failure: stop the engine
                // cleanly (everything received is made durable in the spool).
                trigger.trigger();
                let result = done.await;
                if let Err(e) = shipped {
                    return Err(Stop::Ship(e));
                }
                return result.map_err(Stop::Engine);
            }
        };
        // Ship what the engine completed before it stopped, then end.
        let _ = stop.send(true);
        if let Err(e) = task.await {
            return Err(Stop::Ship(e));
        }
        result.map_err(Stop::Engine)
    };
    (handle, run)
}

/// A spool with no WAL in it (a new machine, or the old one's disk lost) is prepared from
/// the bucket, so the engine resumes where the WAL in the bucket ends instead of at the
/// server's current position.
async fn resume_from_bucket(
    bucket: &Bucket,
    settings: &ShipSettings,
) -> Result<(), pgwalrus_bucket::Error> {
    let inventory = pgwalrus_archive::Inventory::list(
        &pgwalrus_archive::StdFs::new(),
        &settings.spool,
        pgwalrus_wal::WalSegSize::MIN,
    )?;
    if !inventory.segments.is_empty() {
        return Ok(());
    }
    if let Some(h) =
        pgwalrus_bucket::partial::hydrate(bucket, &settings.spool, settings.durability).await?
    {
        match h.partial_bytes {
            Some(bytes) => info!(
                "the spool was empty: resuming from {} in {} ({bytes} bytes of it were in the bucket as chunks)",
                h.newest,
                bucket.url()
            ),
            None => info!(
                "the spool was empty: resuming after {}, the newest segment in {}",
                h.newest,
                bucket.url()
            ),
        }
    }
    Ok(())
}

/// The shipping stage: waits for the engine to learn the cluster, checks the bucket, then
/// ships until told to stop. Returns at once (Ok) if the engine stops before connecting.
async fn ship(
    bucket: Bucket,
    settings: ShipSettings,
    mut engine: watch::Receiver<ReceiverStatus>,
    stop: watch::Receiver<bool>,
    status: watch::Sender<ShipStatus>,
) -> Result<(), pgwalrus_bucket::Error> {
    let cluster = loop {
        {
            let s = engine.borrow_and_update();
            if let (Some(system_id), Some(seg_size)) = (s.system_identifier, s.segment_size) {
                break Cluster {
                    system_id,
                    seg_size,
                };
            }
        }
        let mut stopping = stop.clone();
        tokio::select! {
            changed = engine.changed() => if changed.is_err() { return Ok(()) },
            _ = stopping.wait_for(|s| *s) => return Ok(()),
        }
    };
    let durable = engine.clone();
    // A segment the engine completes goes up at once, not at the next look at the spool.
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut completed = engine.clone();
    let waker = std::sync::Arc::clone(&wake);
    tokio::spawn(async move {
        let mut seen = completed.borrow_and_update().segments_completed;
        while completed.changed().await.is_ok() {
            let now = completed.borrow_and_update().segments_completed;
            if now != seen {
                seen = now;
                waker.notify_one();
            }
        }
    });
    let mut shipper = Shipper::new(bucket, cluster, settings)
        .with_status(status)
        .with_wake(wake)
        .with_durable_end(Box::new(move || {
            let s = durable.borrow();
            s.received_tli.map(|tli| (tli, s.flushed_lsn))
        }));
    // The bucket may be out of reach for a while: WAL keeps going into the spool, and the
    // stage starts once it can. A refusal ends the run.
    let mut wait = BUCKET_BACKOFF.0;
    loop {
        match shipper.prepare().await {
            Ok(()) => break,
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                warn!(
                    "object storage is not reachable yet, WAL stays in the spool: {}",
                    pgwalrus_bucket::ship::error_chain(&e)
                );
                let mut stopping = stop.clone();
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stopping.wait_for(|s| *s) => return Ok(()),
                }
                wait = (wait * 2).min(BUCKET_BACKOFF.1);
            }
        }
    }
    info!(url = %shipper.status().borrow().url, "shipping completed segments to object storage");
    let status = shipper.status();
    let result = shipper.run(stop).await;
    // What the run cost in the bucket, once, as operators budget requests.
    let s = status.borrow().clone();
    info!(
        url = %s.url,
        "shipping ended: {} object(s) created ({} chunk(s)), {} already there, {} bytes uploaded; requests: {} PUT, {} GET, {} HEAD, {} LIST, {} DELETE",
        s.uploads + s.chunks,
        s.chunks,
        s.already_there,
        s.bytes_uploaded,
        s.requests.put,
        s.requests.get,
        s.requests.head,
        s.requests.list,
        s.requests.delete
    );
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stop_reason_has_its_documented_exit_code() {
        assert_eq!(exit_of(StopKind::Connection), Exit::Connection);
        assert_eq!(exit_of(StopKind::Config), Exit::Config);
        assert_eq!(exit_of(StopKind::OtherCluster), Exit::OtherCluster);
        assert_eq!(exit_of(StopKind::WalGone), Exit::WalGone);
        assert_eq!(exit_of(StopKind::Io), Exit::Io);
        assert_eq!(exit_of(StopKind::CorruptWal), Exit::CorruptWal);
    }

    #[test]
    fn shipping_failures_take_the_kind_an_operator_acts_on() {
        let conflict = pgwalrus_bucket::Error::Conflict {
            key: "k".into(),
            theirs: "a".into(),
            ours: "b".into(),
            kept_at: "c".into(),
        };
        assert_eq!(ship_kind(&conflict), StopKind::OtherCluster);
        let refused = pgwalrus_bucket::Error::CreateOnlyIgnored {
            url: "s3://b".into(),
            key: "p".into(),
        };
        assert_eq!(ship_kind(&refused), StopKind::Config);
        let damaged = pgwalrus_bucket::Error::Damaged {
            key: "k".into(),
            why: "w".into(),
        };
        assert_eq!(ship_kind(&damaged), StopKind::Io);
    }
}
