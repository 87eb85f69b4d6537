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
use pgwalrus_bucket::{BucketSettings, BucketUrl};
use pgwalrus_client::connect;
use pgwalrus_receiver::{FromConfig, ReceiveSettings};
use tokio::signal::unix::{Signal, SignalKind, signal};
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
    let ship = args
        .bucket
        .archive
        .as_deref()
        .map(|url| {
            bucket_settings(&args.bucket, url).map(|bucket| crate::archiver::ShipConfig {
                bucket,
                partial_interval: (args.ship_partial_interval > 0)
                    .then(|| Duration::from_secs(args.ship_partial_interval)),
                flush_after_shipped: args.flush_after_shipped,
            })
        })
        .transpose()?;
    let progress = if quiet {
        ProgressMode::Quiet
    } else if std::io::stderr().is_terminal() {
        ProgressMode::Live
    } else {
        ProgressMode::Log
    };
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
        flush_cap: None,
    };
    runtime.block_on(receive(settings, FromConfig::new(conn), progress, ship))
}

/// The bucket settings of `--archive URL` and the `--s3-*` flags.
///
/// # Errors
/// A malformed URL (exit 2).
pub(crate) fn bucket_settings(
    args: &crate::cli::BucketArgs,
    url: &str,
) -> Result<BucketSettings, Failure> {
    let url = BucketUrl::parse(url).map_err(|e| Failure::new(Exit::Config, e))?;
    let mut settings = BucketSettings::new(url);
    settings.endpoint.clone_from(&args.endpoint);
    settings.region.clone_from(&args.region);
    settings.profile.clone_from(&args.profile);
    settings.addressing_style = args.addressing_style;
    settings.single_writer = args.single_writer;
    Ok(settings)
}

/// Runs the engine on its thread (and the shipping stage beside it) until it stops; SIGINT
/// and SIGTERM ask it to stop cleanly.
async fn receive(
    settings: ReceiveSettings,
    source: FromConfig,
    mode: ProgressMode,
    ship: Option<crate::archiver::ShipConfig>,
) -> Outcome {
    let mut signals = StopSignals::install().map_err(|e| {
        Failure::new(
            Exit::Io,
            anyhow::Error::new(e).context("could not install signal handlers"),
        )
    })?;
    let (handle, done) = crate::archiver::start("pgwalrus-receive", settings, source, ship);
    let trigger = handle.trigger;
    let mut progress = Progress::new(mode, handle.status);
    let mut redraw = tokio::time::interval(REDRAW_EVERY);
    redraw.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(done);
    loop {
        tokio::select! {
            result = &mut done => {
                progress.finish();
                return result.map(|_| ()).map_err(failure);
            }
            () = signals.recv() => trigger.trigger(),
            tick = redraw.tick(), if progress.is_live() => progress.tick(tick.into_std()),
        }
    }
}

fn failure(stop: crate::archiver::Stop) -> Failure {
    let exit = crate::archiver::exit_of(stop.kind());
    match stop {
        crate::archiver::Stop::Engine(reason) => Failure::new(exit, reason),
        crate::archiver::Stop::Ship(e) => Failure::new(exit, e),
        crate::archiver::Stop::Spawn(e) => Failure::new(
            exit,
            anyhow::Error::new(e).context("could not start the receive engine"),
        ),
    }
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
