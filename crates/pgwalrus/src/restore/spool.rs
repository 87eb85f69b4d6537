//! `--prefetch N`: segments decompressed and checked ahead of recovery, in a private spool
//! directory under the archive, so a long recovery is not bound by one-at-a-time
//! decompression inside `restore_command`.
//!
//! # Layout
//!
//! `DIR/.pgwalrus-spool/<key>/` per restoring server, `<key>` a hash of the canonical
//! directory of `%p` (the server's `pg_wal`), so servers restoring from one archive at once
//! never share a spool:
//!
//! * `lock` — held (`flock`) by the one prefetch worker of this spool while it runs; the
//!   kernel releases it when the worker exits, however it exits.
//! * `cursor` — the last segment served (`NAME SEGSIZE`), written by each restore: the
//!   worker keeps the `N` segments that follow it, along the archive's plan, spooled.
//! * `TTTTTTTTXXXXXXXXYYYYYYYY` — a spooled segment: fully checked, written under a
//!   temporary name, fsynced, then renamed. A file under a segment name is therefore whole;
//!   restore still checks its length and first page before handing it over (by `rename`
//!   when the spool and `%p` share a file system, else by a checked copy).
//!
//! # The worker
//!
//! A restore with `--prefetch` that finds no worker holding `lock` starts one
//! (`pgwalrus restore --prefetch-worker SPOOL …`, detached; it stays in the process group
//! of the server's startup process, so a server shutdown signals it too). The worker exits
//! when no restore has moved the cursor for [`IDLE`] (recovery ended), when the archive or
//! its spool directory disappears, or when another worker holds the lock. It only spools
//! complete segments (`.partial` files change while a receiver writes them), removes spool
//! files outside its window, and skips a segment that fails its check (the restore asked
//! for it meets the damage itself and stops recovery).

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgwalrus_archive::durable::{self, Durability};
use pgwalrus_archive::plan::plan;
use pgwalrus_archive::{ArchiveFile as _, StdFs};
use pgwalrus_client::error_chain;
use pgwalrus_wal::WalSegSize;
use pgwalrus_wal::names::{FileName, SegmentName};
use pgwalrus_wal::page::LONG_HEADER_LEN;
use tracing::{debug, warn};

use super::check;
use super::copy::{self, Problem};

/// The spool root under the archive directory.
pub(crate) const SPOOL_ROOT: &str = ".pgwalrus-spool";
const LOCK: &str = "lock";
const CURSOR: &str = "cursor";
/// A worker exits after this long without a restore.
pub(crate) const IDLE: Duration = Duration::from_secs(10);
/// How often an idle worker looks at the cursor.
const POLL: Duration = Duration::from_millis(20);
/// How often the worker lists the archive again while waiting for segments to arrive.
const REPLAN: Duration = Duration::from_secs(1);
/// The deepest prefetch accepted.
pub(crate) const MAX_DEPTH: u32 = 1024;

/// The one place the restore command reads the clock: the prefetch workers' idle timers.
#[allow(
    clippy::disallowed_methods,
    reason = "the prefetch worker's idle timeout and replanning interval are its only use of time"
)]
pub(super) fn now() -> Instant {
    Instant::now()
}

/// The spool of one restoring server.
#[derive(Debug, Clone)]
pub(crate) struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The spool of the server that restores into `target`'s directory, created if needed.
    ///
    /// # Errors
    /// The directory of `target` cannot be resolved, or the spool cannot be created (a
    /// read-only archive).
    pub(crate) fn for_target(archive: &Path, target: &Path) -> io::Result<Spool> {
        let target_dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let key = fnv1a(target_dir.canonicalize()?.as_os_str().as_bytes());
        let dir = archive.join(SPOOL_ROOT).join(format!("{key:016x}"));
        std::fs::create_dir_all(&dir)?;
        Ok(Spool { dir })
    }

    /// The spool at `dir` (the worker's argument).
    pub(crate) fn at(dir: &Path) -> Spool {
        Spool {
            dir: dir.to_owned(),
        }
    }

    /// Where segment `name` is spooled.
    fn segment_path(&self, name: SegmentName) -> PathBuf {
        self.dir.join(name.plain().to_string())
    }

    /// Hands spooled segment `wanted` (plain name at any segment size) over to `target`,
    /// if the spool has it whole. Returns its name at the real segment size.
    pub(crate) fn take(
        &self,
        fs: &StdFs,
        wanted: SegmentName,
        target: &Path,
    ) -> Option<SegmentName> {
        let path = self.segment_path(wanted);
        let name = match spooled_name(&path, wanted) {
            Ok(Some(name)) => name,
            Ok(None) => return None,
            Err(problem) => {
                warn!(
                    "prefetched {} is not usable ({problem}); reading the archive instead",
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        match durable::move_into_place(fs, &path, target, Durability::Fsync) {
            Ok(_) => Some(name),
            Err(e)
                if e.io_error()
                    .is_some_and(|io| io.kind() == io::ErrorKind::CrossesDevices) =>
            {
                let copied = copy_file(fs, &path, target);
                let _ = std::fs::remove_file(&path);
                match copied {
                    Ok(()) => Some(name),
                    Err(e) => {
                        warn!("could not copy prefetched {}: {e}", path.display());
                        None
                    }
                }
            }
            Err(e) => {
                debug!(
                    "prefetched {} not taken: {}",
                    path.display(),
                    error_chain(&e)
                );
                None
            }
        }
    }

    /// Records that `served` was restored and makes sure a worker keeps the `depth`
    /// segments after it spooled.
    ///
    /// # Errors
    /// Writing the cursor, or starting the worker.
    pub(crate) fn advance(
        &self,
        fs: &StdFs,
        served: SegmentName,
        archive: &Path,
        depth: u32,
    ) -> io::Result<()> {
        let cursor = self.dir.join(CURSOR);
        let staged = durable::stage_beside(fs, &cursor).map_err(into_io)?;
        let text = cursor_text(served);
        if let Err(e) = staged.file.write_all_at(text.as_bytes(), 0) {
            let _ = durable::discard_staged(fs, staged);
            return Err(e);
        }
        // A hint, not data: no fsync.
        durable::install_staged(fs, staged, Durability::NoSync).map_err(into_io)?;
        if self.worker_running()? {
            return Ok(());
        }
        let exe = std::env::current_exe()?;
        Command::new(exe)
            .arg("restore")
            .arg("--prefetch-worker")
            .arg(&self.dir)
            .arg("-D")
            .arg(archive)
            .arg("--prefetch")
            .arg(depth.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        Ok(())
    }

    /// Whether a worker holds the lock.
    fn worker_running(&self) -> io::Result<bool> {
        Ok(try_lock(&self.dir.join(LOCK))?.is_none())
    }

    /// The last segment a restore served.
    fn cursor(&self) -> Option<SegmentName> {
        parse_cursor(&std::fs::read_to_string(self.dir.join(CURSOR)).ok()?)
    }

    /// Spooled segment files (and our temporary files) with their names.
    fn files(&self) -> Vec<(String, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_owned();
                (name != LOCK && name != CURSOR).then(|| (name, e.path()))
            })
            .collect()
    }
}

/// A cursor file's content: the segment served and the cluster's segment size, which its
/// name alone does not tell.
pub(super) fn cursor_text(served: SegmentName) -> String {
    format!("{} {}\n", served.plain(), served.seg_size().bytes())
}

/// The segment a cursor file names.
pub(super) fn parse_cursor(text: &str) -> Option<SegmentName> {
    let mut fields = text.split_whitespace();
    let name = fields.next()?;
    let seg_size = WalSegSize::new(fields.next()?.parse().ok()?).ok()?;
    match FileName::parse(name, seg_size) {
        Ok(FileName::Segment(s)) => Some(s),
        _ => None,
    }
}

/// The lock file at `path` (created if missing), taken: `None` when another process holds
/// it. The kernel releases it when the holder exits, however it exits.
pub(super) fn try_lock(path: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Reads the length and first page of a spooled file: `Ok(None)` when there is none,
/// the segment name at its real size when it is whole.
fn spooled_name(path: &Path, wanted: SegmentName) -> Result<Option<SegmentName>, String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut head = [0u8; LONG_HEADER_LEN];
    let n = file.read_full_at(&mut head, 0).map_err(|e| e.to_string())?;
    let header = pgwalrus_wal::page::PageHeader::parse(head.get(..n).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let seg_size = header
        .long
        .and_then(|l| WalSegSize::new(l.seg_size).ok())
        .ok_or("no valid long page header")?;
    let name = match FileName::parse(&wanted.plain().to_string(), seg_size) {
        Ok(FileName::Segment(s)) => s,
        _ => return Err(format!("not a segment name at {seg_size}")),
    };
    if len != seg_size.as_u64() {
        return Err(format!("{len} bytes instead of {}", seg_size.as_u64()));
    }
    check::first_page(&head, name)?;
    Ok(Some(name))
}

/// Copies a whole spooled file to `target` through a staged file.
fn copy_file(fs: &StdFs, from: &Path, target: &Path) -> Result<(), String> {
    let data = std::fs::read(from).map_err(|e| e.to_string())?;
    let staged = durable::stage_beside(fs, target).map_err(|e| error_chain(&e).to_string())?;
    if let Err(e) = staged.file.write_all_at(&data, 0) {
        let _ = durable::discard_staged(fs, staged);
        return Err(e.to_string());
    }
    durable::install_staged(fs, staged, Durability::Fsync)
        .map(drop)
        .map_err(|e| error_chain(&e).to_string())
}

fn into_io(e: pgwalrus_archive::Error) -> io::Error {
    let kind = e.io_error().map_or(io::ErrorKind::Other, io::Error::kind);
    io::Error::new(kind, e)
}

/// FNV-1a, 64 bits: a stable short name for a path.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The worker: keeps the `depth` segments after the cursor spooled until it is idle for
/// [`IDLE`]. See the [module documentation](self).
///
/// # Errors
/// The lock file cannot be opened.
pub(crate) fn work(spool_dir: &Path, archive: &Path, depth: u32) -> io::Result<()> {
    work_until_idle(spool_dir, archive, depth, IDLE)
}

/// [`work`] with its idle time as an argument.
fn work_until_idle(spool_dir: &Path, archive: &Path, depth: u32, idle: Duration) -> io::Result<()> {
    let spool = Spool::at(spool_dir);
    let Some(_lock) = try_lock(&spool.dir.join(LOCK))? else {
        return Ok(());
    };
    let fs = StdFs::new();
    let mut cursor: Option<SegmentName> = None;
    let mut moved = now();
    let mut window: Vec<SegmentName> = Vec::new();
    let mut planned_at: Option<Instant> = None;
    let mut skipped: Vec<SegmentName> = Vec::new();
    loop {
        if !archive.is_dir() || !spool_dir.is_dir() {
            return Ok(());
        }
        let current = spool.cursor();
        if current != cursor {
            cursor = current;
            moved = now();
            planned_at = None;
            skipped.clear();
        }
        if now().duration_since(moved) > idle {
            for (_, path) in spool.files() {
                let _ = std::fs::remove_file(path);
            }
            return Ok(());
        }
        let Some(at) = cursor else {
            std::thread::sleep(POLL);
            continue;
        };
        let complete = window.len() >= depth as usize;
        if planned_at.is_none_or(|t| !complete && now().duration_since(t) > REPLAN) {
            window = plan_window(&fs, archive, at, depth);
            planned_at = Some(now());
        }
        let keep: Vec<String> = window.iter().map(|n| n.plain().to_string()).collect();
        for (name, path) in spool.files() {
            if !keep.contains(&name) {
                let _ = std::fs::remove_file(path);
            }
        }
        let next = window
            .iter()
            .find(|n| !skipped.contains(n) && !spool.segment_path(**n).exists())
            .copied();
        let Some(next) = next else {
            std::thread::sleep(POLL);
            continue;
        };
        if let Err(problem) = spool_one(&fs, archive, &spool, next) {
            if !matches!(problem, Problem::Vanished) {
                warn!("prefetch: not spooling {next}: {problem:?}");
            }
            skipped.push(next);
        }
    }
}

/// The complete segments after `at` (up to `depth` segment numbers on), along the plan of
/// the newest timeline whose history holds `at`'s timeline (else `at`'s own).
fn plan_window(fs: &StdFs, archive: &Path, at: SegmentName, depth: u32) -> Vec<SegmentName> {
    let seg_size = at.seg_size();
    let newest = plan(fs, archive, seg_size, None)
        .ok()
        .filter(|p| p.history.contains(at.tli()));
    let Some(archive_plan) = newest.or_else(|| plan(fs, archive, seg_size, Some(at.tli())).ok())
    else {
        return Vec::new();
    };
    let first = at.segno().0.saturating_add(1);
    let last = at.segno().0.saturating_add(u64::from(depth));
    archive_plan
        .segments
        .iter()
        .filter(|s| (first..=last).contains(&s.segno.0) && !s.name.is_partial())
        .map(|s| s.name)
        .collect()
}

/// Checks and spools one segment.
fn spool_one(fs: &StdFs, archive: &Path, spool: &Spool, name: SegmentName) -> Result<(), Problem> {
    let target = spool.segment_path(name);
    let staged =
        durable::stage_beside(fs, &target).map_err(|e| Problem::Io(error_chain(&e).to_string()))?;
    match copy::copy_segment(fs, archive, name, &staged.file, &staged.temp_path) {
        Ok(_) => durable::install_staged(fs, staged, Durability::Fsync)
            .map(drop)
            .map_err(|e| Problem::Io(error_chain(&e).to_string())),
        Err(problem) => {
            let _ = durable::discard_staged(fs, staged);
            Err(problem)
        }
    }
}

#[cfg(test)]
mod tests;
