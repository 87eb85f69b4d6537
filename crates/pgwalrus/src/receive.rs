//! `pgwalrus receive`: validated settings from the flags, `--drop-slot`, and the runtime the
//! receive loop runs on.

use std::io::IsTerminal as _;
use std::time::Duration;

use pgwalrus_archive::Durability;
use pgwalrus_archive::compress::Compression;
use pgwalrus_client::connect;
use tracing::{info, warn};

/// lz4 levels from here up are liblz4's high-compression (HC) mode.
const LZ4_HC_LEVELS: i32 = 3;

use crate::cli::ReceiveArgs;
use crate::exit::Exit;
use crate::failure::{Failure, Outcome};
use crate::receiver::driver::{ReceiveSettings, receive};
use crate::receiver::progress::ProgressMode;

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
        conn,
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
        progress,
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(30),
    };
    runtime.block_on(receive(settings))
}
