//! `pgwalrus receive`: validated settings from the flags, `--drop-slot`, SIGINT/SIGTERM as
//! the engine's shutdown, the progress line, and the engine's stop reason as an exit code.
//! The receive loop itself is the `pgwalrus-receiver` engine, on a thread of its own. With
//! `--archive s3://…` the shipping stage (`pgwalrus-bucket`) runs beside it on this thread,
//! uploading what the engine completed in the spool; it starts once the engine knows which
//! cluster it streams from, and on a clean stop ships what was completed before it exits.

use std::io::IsTerminal as _;
use std::time::Duration;

use pgwalrus_archive::Durability;
use pgwalrus_archive::compress::Compression;
use pgwalrus_bucket::{
    Bucket, BucketSettings, BucketUrl, Cluster, ProcessEnv, ShipSettings, Shipper,
};
use pgwalrus_client::connect;
use pgwalrus_receiver::{
    FromConfig, ReceiveSettings, ReceiverStatus, Shutdown, StopKind, StopReason,
};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cli::ReceiveArgs;
use crate::exit::Exit;
use crate::failure::{Failure, Outcome};
use crate::progress::{Progress, ProgressMode, REDRAW_EVERY};

/// lz4 levels from here up are liblz4's high-compression (HC) mode.
const LZ4_HC_LEVELS: i32 = 3;

/// Runs `pgwalrus receive`.
///
/// # Errors
/// A [`Failure`] with the documented exit code.
pub fn run(args: &ReceiveArgs, quiet: bool) -> Outcome {
    let conn = crate::connection::resolve(&args.conn)?;
    let runtime = crate::connection::runtime()?;
    if args.drop_slot {
        let slot = args.slot.clone().unwrap_or_default();
        return runtime.block_on(async {
            let mut c = connect(&conn).await.map_err(crate::connection::failure)?;
            c.drop_slot(&slot, true)
                .await
                .map_err(crate::connection::failure)?;
            info!("dropped replication slot \"{slot}\"");
            Ok(())
        });
    }
    let Some(dir) = args.directory.clone() else {
        return Err(Failure::msg(
            Exit::Config,
            "no target directory specified (-D)",
        ));
    };
    if !dir.is_dir() {
        return Err(Failure::msg(
            Exit::Config,
            format!(
                "could not access directory \"{}\": it does not exist or is not a directory",
                dir.display()
            ),
        ));
    }
    if let Some(spec) = args.compress
        && spec.method() == Some(Compression::Lz4)
        && spec.effective_level() >= LZ4_HC_LEVELS
    {
        warn!(
            "lz4 level {} asks for lz4's high-compression mode; pgwalrus compresses lz4 in its fast mode at every level",
            spec.effective_level()
        );
    }
    let bucket = args
        .bucket
        .archive
        .as_deref()
        .map(|url| open_bucket(&args.bucket, url))
        .transpose()?;
    let progress = if quiet {
        ProgressMode::Quiet
    } else if std::io::stderr().is_terminal() {
        ProgressMode::Live
    } else {
        ProgressMode::Log
    };
    let ship = bucket.map(|bucket| {
        (
            bucket,
            ShipSettings {
                spool: dir.clone(),
                durability: if args.no_sync {
                    Durability::NoSync
                } else {
                    Durability::Fsync
                },
                single_writer: args.bucket.single_writer,
                poll: SHIP_POLL,
                partial_interval: (args.ship_partial_interval > 0)
                    .then(|| Duration::from_secs(args.ship_partial_interval)),
            },
        )
    });
    let settings = ReceiveSettings {
        dir,
        slot: args.slot.clone(),
        create_slot: args.create_slot,
        if_not_exists: args.if_not_exists,
        endpos: args.endpos,
        no_loop: args.no_loop,
        durability: if args.no_sync {
            Durability::NoSync
        } else {
            Durability::Fsync
        },
        synchronous: args.synchronous,
        verify: !args.no_verify,
        compression: args.compress.unwrap_or_default(),
        status_interval: (args.status_interval > 0)
            .then(|| Duration::from_secs(args.status_interval)),
        flush_interval: (args.flush_interval > 0).then(|| Duration::from_secs(args.flush_interval)),
        receive_timeout: (args.receive_timeout > 0)
            .then(|| Duration::from_secs(args.receive_timeout)),
        min_free_space: 0,
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(30),
    };
    runtime.block_on(receive(settings, FromConfig::new(conn), progress, ship))
}

/// How often the shipping stage looks at the spool for newly completed files.
const SHIP_POLL: std::time::Duration = Duration::from_millis(500);

/// The bucket of `--archive`, its settings resolved from the flags and the AWS environment.
pub(crate) fn open_bucket(args: &crate::cli::BucketArgs, url: &str) -> Result<Bucket, Failure> {
    let config = |e: pgwalrus_bucket::Error| Failure::new(Exit::Config, e);
    let mut settings = BucketSettings::new(BucketUrl::parse(url).map_err(config)?);
    settings.endpoint.clone_from(&args.endpoint);
    settings.region.clone_from(&args.region);
    settings.profile.clone_from(&args.profile);
    settings.addressing_style = args.addressing_style;
    settings.single_writer = args.single_writer;
    let resolved = settings.resolve(&ProcessEnv).map_err(config)?;
    Bucket::open(&resolved).map_err(config)
}

/// A spool with no WAL in it (a new machine, or the old one's disk lost) is prepared from
/// the bucket, so the engine resumes where the WAL in the bucket ends instead of at the
/// server's current position.
async fn resume_from_bucket(bucket: &Bucket, settings: &ShipSettings) -> Result<(), Failure> {
    let inventory = pgwalrus_archive::Inventory::list(
        &pgwalrus_archive::StdFs::new(),
        &settings.spool,
        pgwalrus_wal::WalSegSize::MIN,
    )
    .map_err(|e| Failure::new(Exit::Io, e))?;
    if !inventory.segments.is_empty() {
        return Ok(());
    }
    match pgwalrus_bucket::partial::hydrate(bucket, &settings.spool, settings.durability).await {
        Ok(Some(h)) => {
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
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(ship_failure(e)),
    }
}

/// The exit code of a shipping failure.
fn ship_failure(e: pgwalrus_bucket::Error) -> Failure {
    // Another cluster's prefix, or a key holding other WAL: an archive mismatch, as for a
    // directory. Damaged local files and spool I/O: local I/O. The rest (a store that
    // ignores create-only writes, denied access, bad settings): configuration.
    let exit = if e.is_archive_mismatch() {
        Exit::OtherCluster
    } else if matches!(
        e,
        pgwalrus_bucket::Error::Damaged { .. }
            | pgwalrus_bucket::Error::Local(_)
            | pgwalrus_bucket::Error::LocalFile { .. }
    ) {
        Exit::Io
    } else if matches!(e, pgwalrus_bucket::Error::Store { .. }) && !e.is_permanent() {
        // The store did not answer: trying again later may work.
        Exit::Connection
    } else {
        Exit::Config
    };
    Failure::new(exit, e)
}

/// The shipping stage: waits for the engine to learn the cluster, checks the bucket, then
/// ships until told to stop. Returns at once (Ok) if the engine stops before connecting.
async fn ship(
    bucket: Bucket,
    settings: ShipSettings,
    mut engine: watch::Receiver<ReceiverStatus>,
    stop: watch::Receiver<bool>,
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
    let mut shipper =
        Shipper::new(bucket, cluster, settings).with_durable_end(Box::new(move || {
            let s = durable.borrow();
            s.received_tli.map(|tli| (tli, s.flushed_lsn))
        }));
    // The bucket may be out of reach for a while: WAL keeps going into the spool, and the
    // stage starts once it can (1 s doubling to 30 s). A refusal (another cluster, a store
    // that ignores create-only writes, denied access) ends the run.
    let mut wait = Duration::from_secs(1);
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
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
    info!(url = %shipper.status().borrow().url, "shipping completed segments to object storage");
    shipper.run(stop).await
}

/// Runs the engine on its thread until it stops; SIGINT and SIGTERM ask it to stop cleanly.
async fn receive(
    settings: ReceiveSettings,
    source: FromConfig,
    mode: ProgressMode,
    shipping: Option<(Bucket, ShipSettings)>,
) -> Outcome {
    let mut signals = StopSignals::install().map_err(|e| {
        Failure::new(
            Exit::Io,
            anyhow::Error::new(e).context("could not install signal handlers"),
        )
    })?;
    if let Some((bucket, ship_settings)) = &shipping {
        resume_from_bucket(bucket, ship_settings).await?;
    }
    let (trigger, shutdown) = Shutdown::new();
    let engine =
        pgwalrus_receiver::spawn("pgwalrus-receive", settings, source, shutdown).map_err(|e| {
            Failure::new(
                Exit::Io,
                anyhow::Error::new(e).context("could not start the receive engine"),
            )
        })?;
    let mut progress = Progress::new(mode, engine.status());
    let mut redraw = tokio::time::interval(REDRAW_EVERY);
    redraw.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (stop_shipping, ship_stop) = watch::channel(false);
    let shipper = shipping.map(|(bucket, ship_settings)| {
        tokio::spawn(ship(bucket, ship_settings, engine.status(), ship_stop))
    });
    let mut shipper_running = shipper.is_some();
    let shipper = async move {
        match shipper {
            Some(task) => task
                .await
                .unwrap_or_else(|e| Err(pgwalrus_bucket::Error::Settings(e.to_string()))),
            None => std::future::pending().await,
        }
    };
    tokio::pin!(shipper);
    let mut ship_error = None;
    let done = engine.wait();
    tokio::pin!(done);
    let result = loop {
        tokio::select! {
            result = &mut done => break result,
            () = signals.recv() => trigger.trigger(),
            shipped = &mut shipper, if shipper_running => {
                // The stage stopped on its own: only a permanent failure does that. Stop
                // the engine cleanly (everything received is made durable in the spool).
                shipper_running = false;
                if let Err(e) = shipped {
                    ship_error = Some(e);
                    trigger.trigger();
                }
            }
            tick = redraw.tick(), if progress.is_live() => progress.tick(tick.into_std()),
        }
    };
    progress.finish();
    if shipper_running {
        // Ship what the engine completed before it stopped, then end.
        let _ = stop_shipping.send(true);
        if let Err(e) = (&mut shipper).await {
            ship_error = Some(e);
        }
    }
    if let Some(e) = ship_error {
        return Err(ship_failure(e));
    }
    result.map(|_| ()).map_err(failure)
}

/// The exit code of each reason the engine stops for.
fn exit_of(kind: StopKind) -> Exit {
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

fn failure(reason: StopReason) -> Failure {
    Failure::new(exit_of(reason.kind), reason)
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
}
