//! `pgwalrus prune`: removes the complete segments an archive directory no longer needs,
//! by age and size, with the rules of `pgwalrus_archive::retention` (never a `.partial` or
//! a `.history` file, no holes in what is kept, nothing of a newer timeline than the oldest
//! kept segment's). The daemon applies the same rules to each server's archive.

use std::path::Path;

use pgwalrus_archive::retention::{self, Candidate, Keep, Plan};
use pgwalrus_archive::{Durability, Inventory, StdFs, durable, plan};
use tracing::info;

use crate::cli::PruneArgs;
use crate::exit::Exit;
use crate::failure::{Failure, Outcome};

/// Runs `pgwalrus prune`.
///
/// # Errors
/// Exit 2 without a rule or for a directory that is not an archive, exit 5 for I/O errors.
pub fn run(args: &PruneArgs) -> Outcome {
    let keep = Keep {
        time: args
            .keep_time
            .as_deref()
            .map(crate::units::parse_duration)
            .transpose()
            .map_err(|e| Failure::msg(Exit::Config, format!("--keep-time: {e}")))?,
        size: args
            .keep_size
            .as_deref()
            .map(crate::units::parse_size)
            .transpose()
            .map_err(|e| Failure::msg(Exit::Config, format!("--keep-size: {e}")))?,
    };
    if !keep.is_set() {
        return Err(Failure::msg(
            Exit::Config,
            "nothing to prune by: give --keep-time, --keep-size or both",
        ));
    }
    let planned = match (&args.directory, args.bucket.archive.as_deref()) {
        (_, Some(url)) => prune_bucket(args, url, keep)?,
        (Some(dir), None) => {
            prune(dir, keep, args.dry_run).map_err(|e| Failure::new(Exit::Io, e))?
        }
        (None, None) => {
            return Err(Failure::msg(Exit::Config, "give -D DIR or --archive URL"));
        }
    };
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    info!(
        "{verb} {} segment(s), {} bytes; the oldest segment kept is {}",
        planned.remove.len(),
        planned.freed,
        planned
            .horizon
            .map_or_else(|| "(none)".to_owned(), |h| h.to_string())
    );
    for name in &planned.remove {
        info!("{verb} {name}");
    }
    Ok(())
}

/// Retention of an object-storage archive: the same plan over the bucket's complete
/// segments (LISTs of `wal/`), removed with batch deletes.
fn prune_bucket(args: &PruneArgs, url: &str, keep: Keep) -> Result<Plan, Failure> {
    let settings = crate::receive::bucket_settings(&args.bucket, url)?;
    let failed = |e: pgwalrus_bucket::Error| {
        let exit = crate::archiver::exit_of(crate::archiver::ship_kind(&e));
        Failure::new(exit, e)
    };
    let bucket = crate::archiver::open_bucket(&settings).map_err(failed)?;
    let runtime = crate::connection::runtime()?;
    runtime.block_on(async {
        let Some(found) = pgwalrus_bucket::archive::find(&bucket, args.system_identifier)
            .await
            .map_err(failed)?
        else {
            return Err(Failure::msg(
                Exit::Config,
                format!("{url} holds no pgwalrus archive"),
            ));
        };
        let (objects, _) = pgwalrus_bucket::archive::segments(&bucket, &found)
            .await
            .map_err(failed)?;
        let planned = pgwalrus_bucket::archive::plan(&objects, keep, crate::clock::now());
        if !args.dry_run {
            pgwalrus_bucket::archive::remove(&bucket, &found, &planned)
                .await
                .map_err(failed)?;
        }
        Ok(planned)
    })
}

/// Plans retention for the archive in `dir` by `keep` and, unless `dry_run`, removes what
/// the plan says.
///
/// # Errors
/// Reading the directory or a file's metadata, or removing a file.
pub fn prune(dir: &Path, keep: Keep, dry_run: bool) -> anyhow::Result<Plan> {
    prune_shipped(dir, keep, dry_run, None)
}

/// [`prune`] of a spool whose segments go to object storage: only segments up to `shipped`
/// (the last one the bucket holds, plain name) are candidates, so nothing leaves the spool
/// before it is in the bucket. `None` prunes the whole archive.
///
/// # Errors
/// Listing the spool, reading its files' metadata, removing files.
pub fn prune_shipped(
    dir: &Path,
    keep: Keep,
    dry_run: bool,
    shipped: Option<&str>,
) -> anyhow::Result<Plan> {
    let fs = StdFs::new();
    let Some(seg_size) = plan::detect_seg_size(&fs, dir)? else {
        return Ok(Plan::default());
    };
    let upto = match shipped.map(|name| pgwalrus_wal::names::FileName::parse(name, seg_size)) {
        None => None,
        Some(Ok(pgwalrus_wal::names::FileName::Segment(s))) => Some((s.tli(), s.segno())),
        Some(_) => return Ok(Plan::default()),
    };
    let inventory = Inventory::list(&fs, dir, seg_size)?;
    let mut candidates = Vec::new();
    for &name in &inventory.segments {
        if upto.is_some_and(|(tli, segno)| (name.segno(), name.tli()) > (segno, tli)) {
            continue;
        }
        let meta = std::fs::metadata(inventory.path(name))?;
        candidates.push(Candidate {
            name,
            bytes: meta.len(),
            modified: meta.modified()?,
        });
    }
    let planned = retention::plan(&candidates, keep, crate::clock::now());
    if !dry_run {
        durable::remove_segments(&fs, dir, &planned.remove, Durability::Fsync)?;
    }
    Ok(planned)
}
