//! `pgwalrus restore FILE PATH -D DIR`: PostgreSQL's `restore_command`
//! (`restore_command = 'pgwalrus restore %f %p -D /archive'`).
//!
//! Finds `%f` in the archive whatever its compression, checks it, writes it beside `%p`,
//! fsyncs it and renames it into place — the server never sees a half-written file — and
//! answers with the exit status PostgreSQL acts on:
//!
//! * `0` — the file was restored.
//! * `1` — the archive does not have it. Recovery moves on: it probes for history files that
//!   do not exist, and ends at the end of the archive.
//! * `255` ([`Exit::AbortRecovery`]) — the file is there but damaged or unreadable, the
//!   archive has a hole where it should be, or restore cannot run (bad arguments, no
//!   archive directory, `%p` not writable). PostgreSQL (14 to 18) treats a status above
//!   125 like death by a signal and stops recovery with FATAL. Any other failure status
//!   would make it take the failure for the end of the archive, finish recovery there and
//!   promote, silently dropping the rest of the WAL.
//!
//! # Layout
//!
//! * `find` — which archive file serves `%f`, or why none does (missing versus hole).
//! * `check` — the checks of a segment's WAL: first page, every record, the boundary.
//! * `copy` — decompress, check and copy one file into a staged destination.
//! * `spool` — `--prefetch`: a background worker keeping the next segments ready.
//! * `bucket` — `--archive s3://…`: the file comes from object storage through `DIR` as a
//!   cache.

mod bucket;
mod check;
mod copy;
mod find;
mod spool;
#[cfg(test)]
mod test_wal;

use std::path::Path;

use pgwalrus_archive::durable::{self, Durability, StagedFile};
use pgwalrus_archive::{ArchiveFile as _, StdFs, reader};
use pgwalrus_client::error_chain;
use pgwalrus_wal::names::{FileName, HistoryName, SegmentName};
use tracing::{info, warn};

use crate::cli::RestoreArgs;
use crate::exit::Exit;
use crate::failure::{Failure, Outcome};
use copy::{Copied, Problem};
use find::{Found, Request};

/// How often a file that vanished between finding and opening it (a receiver renamed its
/// `.partial`) is looked for again.
const ATTEMPTS: usize = 3;

/// Whether the command line asks for `restore`: its usage errors must stop recovery too
/// (exit 255), not pass for "file not found" (which exit 2 would).
pub fn invoked(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .is_some_and(|a| a == "restore")
}

/// Runs `pgwalrus restore` (or, with `--prefetch-worker`, its prefetch worker).
///
/// # Errors
/// A [`Failure`] with [`Exit::NOT_IN_ARCHIVE`] (1) when the archive does not have the file,
/// [`Exit::AbortRecovery`] (255) for everything that must stop recovery.
pub fn run(args: &RestoreArgs) -> Outcome {
    if let (Some(cache), Some(url)) = (&args.prefetch_worker, args.bucket.archive.as_deref()) {
        let worker = |e: String| abort(format!("prefetch worker for \"{}\": {e}", cache.display()));
        let settings = crate::receive::bucket_settings(&args.bucket, url)
            .map_err(|e| worker(format!("{:#}", e.error)))?;
        let bucket = crate::archiver::open_bucket_patient(&settings)
            .map_err(|e| worker(pgwalrus_bucket::ship::error_chain(&e)))?;
        let remote = bucket::Remote::open(bucket, args.system_identifier, cache).map_err(worker)?;
        return bucket::work(&remote, args.prefetch.min(spool::MAX_DEPTH))
            .map_err(|e| worker(e.to_string()));
    }
    if let Some(spool_dir) = &args.prefetch_worker {
        return spool::work(
            spool_dir,
            &args.directory,
            args.prefetch.min(spool::MAX_DEPTH),
        )
        .map_err(|e| {
            abort(format!(
                "prefetch worker for \"{}\": {}",
                spool_dir.display(),
                error_chain(&e)
            ))
        });
    }
    let (Some(file), Some(target)) = (args.file.as_deref(), args.path.as_deref()) else {
        return Err(abort("FILE (%f) and PATH (%p) are required".to_owned()));
    };
    let dir = args.directory.as_path();
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(abort(format!(
                "cannot restore {file}: archive \"{}\" is not a directory",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(abort(format!(
                "cannot restore {file}: cannot access archive directory \"{}\": {e}",
                dir.display()
            )));
        }
    }
    let request = find::parse_request(file).map_err(|e| abort(format!("cannot restore: {e}")))?;
    let fs = StdFs::new();
    if let Some(url) = args.bucket.archive.as_deref() {
        return restore_remote(&fs, dir, url, request, target, args);
    }
    match request {
        Request::Segment(wanted) => restore_segment(&fs, dir, wanted, target, args),
        Request::History(wanted) => restore_history(&fs, dir, wanted, target),
        Request::BackupHistory(wanted) => restore_backup_history(&fs, dir, &wanted, target),
    }
}

/// `%f` from object storage, through `dir` as a cache.
fn restore_remote(
    fs: &StdFs,
    dir: &Path,
    url: &str,
    request: Request,
    target: &Path,
    args: &RestoreArgs,
) -> Outcome {
    let bucket = crate::receive::bucket_settings(&args.bucket, url)
        .map_err(|e| abort(format!("cannot restore from {url}: {:#}", e.error)))?;
    let bucket = crate::archiver::open_bucket_patient(&bucket).map_err(|e| {
        abort(format!(
            "cannot restore from {url}: {}",
            pgwalrus_bucket::ship::error_chain(&e)
        ))
    })?;
    let remote = bucket::Remote::open(bucket, args.system_identifier, dir)
        .map_err(|e| abort(format!("cannot restore from {url}: {e}")))?;
    match request {
        Request::Segment(wanted) => {
            let depth = args.prefetch.min(spool::MAX_DEPTH);
            // The local prefetch spool over the cache holds segments downloaded *and*
            // checked ahead: served by a rename, without a request or a check on the way.
            let spool = (depth > 0)
                .then(|| spool::Spool::for_target(dir, target).ok())
                .flatten();
            if let Some(spool) = &spool
                && let Some(name) = spool.take(fs, wanted, target)
            {
                info!(
                    "restored {wanted} from the prefetch spool (downloaded from {url} and checked ahead) into \"{}\"",
                    target.display()
                );
                advance(fs, spool, name, dir, depth);
                if let Err(e) = remote.advance(name, depth, args, url) {
                    warn!("--prefetch: cannot start prefetching after {name}: {e}");
                }
                return Ok(());
            }
            let cached =
                find::first_existing(fs, dir, find::complete_forms(wanted).map(FileName::Segment))
                    .ok()
                    .flatten();
            let fetched = match cached {
                Some(name) => {
                    info!(
                        "{wanted} was prefetched from {url} into \"{}\"",
                        dir.display()
                    );
                    Ok(bucket::Fetched::Cached(name))
                }
                None => {
                    // The worker keeps the segment a cursor names (PostgreSQL may ask for it
                    // again), so naming this one before its download is safe.
                    if let Some(sized) = (depth > 0).then(|| remote.known_size(wanted)).flatten()
                        && let Err(e) = remote.advance(sized, depth, args, url)
                    {
                        warn!("--prefetch: cannot start prefetching after {sized}: {e}");
                    }
                    remote.segment(wanted)
                }
            };
            // The end of the archive: the open segment, rebuilt from its chunks.
            let fetched = match fetched {
                Ok(bucket::Fetched::Missing(_)) if args.partial => remote.partial(wanted),
                other => other,
            };
            let name = match fetched {
                Ok(bucket::Fetched::Cached(name)) => name,
                Ok(bucket::Fetched::Missing(why)) => return Err(not_found(why)),
                Err(e) => return Err(abort(format!("cannot restore {wanted}: {e}"))),
            };
            let local = RestoreArgs {
                prefetch: 0,
                partial: name.is_partial(),
                ..args.clone()
            };
            restore_segment(fs, dir, wanted, target, &local)?;
            if depth == 0 || name.is_partial() {
                // With prefetching, the worker removes it once recovery has moved on.
                remote.forget(&name);
            }
            if args.prefetch > 0 && !name.is_partial() {
                let served = std::fs::metadata(target)
                    .ok()
                    .and_then(|m| u32::try_from(m.len()).ok())
                    .and_then(|len| pgwalrus_wal::WalSegSize::new(len).ok())
                    .and_then(|seg_size| {
                        match FileName::parse(&wanted.plain().to_string(), seg_size) {
                            Ok(FileName::Segment(s)) => Some(s),
                            _ => None,
                        }
                    });
                if let Some(served) = served {
                    // Two workers, one after the other: the bucket's downloads the next
                    // segments into the cache, the local spool's checks them out of it.
                    if let Some(spool) = &spool {
                        advance(fs, spool, served, dir, depth);
                    }
                    if let Err(e) = remote.advance(served, depth, args, url) {
                        warn!("--prefetch: cannot start prefetching after {served}: {e}");
                    }
                }
            }
            Ok(())
        }
        Request::History(wanted) => {
            let asked = wanted.to_string();
            let content = match remote.history(wanted) {
                Ok(Some(content)) => content,
                Ok(None) => {
                    return Err(not_found(format!("{asked} is not in the archive {url}")));
                }
                Err(e) => return Err(abort(format!("cannot restore {asked}: {e}"))),
            };
            pgwalrus_wal::history::TimelineHistory::parse(wanted.tli(), &content).map_err(|e| {
                abort(format!(
                    "{asked} in the archive {url} is damaged: it does not parse as a timeline history: {e}"
                ))
            })?;
            write_whole(fs, &asked, &content, target)?;
            info!(
                "restored {asked} from {url} (timeline history, {} bytes) into \"{}\"",
                content.len(),
                target.display()
            );
            Ok(())
        }
        Request::BackupHistory(wanted) => Err(not_found(format!(
            "{wanted} is not in the archive {url} (backup history files are not shipped)"
        ))),
    }
}

/// A failure that must stop recovery.
fn abort(message: String) -> Failure {
    Failure::msg(
        Exit::AbortRecovery,
        format!(
            "{message}; exiting with status {} so that PostgreSQL stops recovery here instead of ending it early",
            Exit::AbortRecovery.code()
        ),
    )
}

/// "Not in the archive": recovery may move on. PostgreSQL asks for files that do not
/// exist as a matter of course (the next timeline's history file, the segment after the
/// archive's end: several per recovery), and its documentation asks only for a non-zero
/// status then; the line says what was looked for, without calling it an error.
fn not_found(message: String) -> Failure {
    Failure::msg(Exit::NOT_IN_ARCHIVE, message).informational()
}

fn stage(fs: &StdFs, asked: &str, target: &Path) -> Result<StagedFile<std::fs::File>, Failure> {
    durable::stage_beside(fs, target).map_err(|e| {
        abort(format!(
            "cannot restore {asked}: cannot write beside \"{}\": {}",
            target.display(),
            error_chain(&e)
        ))
    })
}

fn install(fs: &StdFs, asked: &str, staged: StagedFile<std::fs::File>) -> Result<(), Failure> {
    durable::install_staged(fs, staged, Durability::Fsync)
        .map(drop)
        .map_err(|e| abort(format!("cannot restore {asked}: {}", error_chain(&e))))
}

fn restore_segment(
    fs: &StdFs,
    dir: &Path,
    wanted: SegmentName,
    target: &Path,
    args: &RestoreArgs,
) -> Outcome {
    let asked = wanted.to_string();
    let depth = args.prefetch.min(spool::MAX_DEPTH);
    let spool = (depth > 0)
        .then(|| {
            spool::Spool::for_target(dir, target)
                .map_err(|e| warn!("--prefetch: no spool under \"{}\": {e}", dir.display()))
                .ok()
        })
        .flatten();
    if let Some(spool) = &spool
        && let Some(name) = spool.take(fs, wanted, target)
    {
        info!(
            "restored {asked} from the prefetch spool (checked ahead) into \"{}\"",
            target.display()
        );
        advance(fs, spool, name, dir, depth);
        return Ok(());
    }

    for _ in 0..ATTEMPTS {
        let found = find::segment(fs, dir, wanted, args.partial).map_err(|e| {
            abort(format!(
                "cannot restore {asked}: cannot look in \"{}\": {e}",
                dir.display()
            ))
        })?;
        let source = match found {
            Found::File(source) => source,
            Found::Missing(why) => return Err(not_found(why)),
            Found::Hole(why) => return Err(abort(format!("cannot restore {asked}: {why}"))),
        };
        let source_path = dir.join(source.to_string());
        let staged = stage(fs, &asked, target)?;
        match copy::copy_segment(fs, dir, source, &staged.file, &staged.temp_path) {
            Ok(copied) => {
                install(fs, &asked, staged)?;
                info!("{}", served(&asked, &source_path, target, &copied));
                if let Some(spool) = &spool
                    && !copied.name.is_partial()
                {
                    advance(fs, spool, copied.name, dir, depth);
                }
                return Ok(());
            }
            Err(problem) => {
                let _ = durable::discard_staged(fs, staged);
                match problem {
                    Problem::Vanished => continue,
                    Problem::NoWal(why) => return Err(not_found(format!("{asked}: {why}"))),
                    Problem::Damaged(why) => {
                        return Err(abort(format!(
                            "{asked} in the archive is damaged: {}: {why}",
                            source_path.display()
                        )));
                    }
                    Problem::Io(why) => {
                        return Err(abort(format!("cannot restore {asked}: {why}")));
                    }
                }
            }
        }
    }
    Err(abort(format!(
        "cannot restore {asked}: its file in \"{}\" kept changing while it was read",
        dir.display()
    )))
}

fn advance(fs: &StdFs, spool: &spool::Spool, served: SegmentName, dir: &Path, depth: u32) {
    if let Err(e) = spool.advance(fs, served, dir, depth) {
        warn!(
            "--prefetch: cannot start prefetching after {served}: {}",
            error_chain(&e)
        );
    }
}

/// The log line for a served segment.
fn served(asked: &str, source: &Path, target: &Path, copied: &Copied) -> String {
    let format = copied
        .name
        .compression()
        .map_or_else(|| "uncompressed".to_owned(), |c| c.to_string());
    let mut line = format!(
        "restored {asked} from \"{}\" ({format}, {} bytes, WAL checked) into \"{}\"",
        source.display(),
        copied.bytes,
        target.display()
    );
    if let Some(end) = copied.wal_end {
        line.push_str(&format!(
            "; partial segment: WAL ends at {end}, zeros after it, so recovery stops there"
        ));
    } else if copied.tail == check::Tail::Unchecked {
        line.push_str(
            "; its last record runs into the next segment, which is not in the archive yet",
        );
    }
    line
}

fn restore_history(fs: &StdFs, dir: &Path, wanted: HistoryName, target: &Path) -> Outcome {
    let asked = wanted.to_string();
    let (found, content) = match copy::read_history_file(fs, dir, wanted) {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Err(not_found(format!(
                "{asked} is not in the archive \"{}\" (no {asked}, .gz, .lz4 or .zst)",
                dir.display()
            )));
        }
        Err(Problem::Damaged(why)) => {
            return Err(abort(format!("{asked} in the archive is damaged: {why}")));
        }
        Err(problem) => return Err(abort(format!("cannot restore {asked}: {problem:?}"))),
    };
    write_whole(fs, &asked, &content, target)?;
    info!(
        "restored {asked} from \"{}\" (timeline history, {} bytes) into \"{}\"",
        dir.join(found.to_string()).display(),
        content.len(),
        target.display()
    );
    Ok(())
}

fn restore_backup_history(fs: &StdFs, dir: &Path, wanted: &FileName, target: &Path) -> Outcome {
    let asked = wanted.to_string();
    let content = match reader::read_file(fs, dir, wanted) {
        Ok(content) => content,
        Err(e) if e.is_not_found() => {
            return Err(not_found(format!(
                "{asked} is not in the archive \"{}\"",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(abort(format!(
                "cannot restore {asked}: {}",
                error_chain(&e)
            )));
        }
    };
    write_whole(fs, &asked, &content, target)?;
    info!("restored {asked} into \"{}\"", target.display());
    Ok(())
}

fn write_whole(fs: &StdFs, asked: &str, content: &[u8], target: &Path) -> Result<(), Failure> {
    let staged = stage(fs, asked, target)?;
    if let Err(e) = staged.file.write_all_at(content, 0) {
        let _ = durable::discard_staged(fs, staged);
        return Err(abort(format!(
            "cannot restore {asked}: cannot write \"{}\": {e}",
            target.display()
        )));
    }
    install(fs, asked, staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_usage_errors_are_recognised() {
        let args = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert!(invoked(args(&["pgwalrus", "restore", "x"])));
        assert!(invoked(args(&["pgwalrus", "-v", "restore"])));
        assert!(!invoked(args(&["pgwalrus", "receive", "restore"])));
        assert!(!invoked(args(&["pgwalrus"])));
    }
}
