//! `pgwalrus receive`: validated settings from the flags, `--drop-slot`, SIGINT/SIGTERM as
//! the engine's shutdown, the progress line, and the engine's stop reason as an exit code.
//! The receive loop itself is the `pgwalrus-receiver` engine, on a thread of its own.

use std::io::IsTerminal as _;
use std::time::Duration;

use pgwalrus_archive::Durability;
use pgwalrus_archive::compress::Compression;
use pgwalrus_client::connect;
use pgwalrus_receiver::{FromConfig, ReceiveSettings, Shutdown, StopKind, StopReason};
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
    };
    runtime.block_on(receive(settings, FromConfig::new(conn), progress))
}

/// Runs the engine on its thread until it stops; SIGINT and SIGTERM ask it to stop cleanly.
async fn receive(settings: ReceiveSettings, source: FromConfig, mode: ProgressMode) -> Outcome {
    let mut signals = StopSignals::install().map_err(|e| {
        Failure::new(
            Exit::Io,
            anyhow::Error::new(e).context("could not install signal handlers"),
        )
    })?;
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
    let done = engine.wait();
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
