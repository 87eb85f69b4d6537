//! The only module that makes things durable or moves them: every `fsync`, `fdatasync`,
//! directory sync and `rename` of the archive happens in a function here, and each function
//! lists its system calls in order with the crash each one guards against.
//!
//! Whether syncs happen at all is a [`Durability`], never a bool: with
//! [`Durability::NoSync`] (`--no-sync`) the same steps run with every sync skipped, so
//! names and contents are right unless the machine itself crashes.
//!
//! The invariants these functions keep, whatever instant the power fails at:
//!
//! * a `.partial` segment is visible only once it has its full length (a crash never leaves
//!   a half-initialised `.partial` that would stop a restart);
//! * a segment under its final name has all of its bytes;
//! * a `.history` file is either absent or complete;
//! * anything else left behind carries a temporary name (`*.tmp`, see
//!   [`pgwalrus_wal::names`]) and may be deleted ([`remove_temp_file`]).
//!
//! Failures: if a sync or rename fails, the caller must not carry on with the file — the
//! kernel may have dropped the unwritten pages, and a second fsync would report success for
//! data that is gone. [`Op::poisons`] says which failures those are; the archive writer
//! poisons itself on them.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use pgwalrus_wal::names::{FileName, HistoryName, SegmentName};

use crate::error::{Error, Op, Result};
use crate::fs::{ArchiveFile, ArchiveFs};

/// Whether the archive syncs what it writes to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// fsync files and directories as [the module documentation](self) describes. The
    /// flush position reported to the server is backed by stable storage.
    #[default]
    Fsync,
    /// Skip every fsync (pg_receivewal's `--no-sync`). Files are written and renamed in the
    /// same order, so a crash of pgwalrus alone loses nothing, but a crash of the machine
    /// can lose or tear anything written since the operating system last flushed. For tests
    /// and throwaway archives.
    NoSync,
}

impl Durability {
    /// `true` for [`Durability::Fsync`].
    pub const fn syncs(self) -> bool {
        matches!(self, Durability::Fsync)
    }
}

/// The raw system calls behind [`StdFs`](crate::fs::StdFs)'s sync and rename methods: the
/// only calls of `File::sync_all`, `File::sync_data` and `std::fs::rename` in the workspace
/// outside tests (clippy's `disallowed-methods` enforces it).
pub(crate) mod os {
    use super::{File, Path, io};

    /// `fsync(fd)`: file data and all metadata.
    #[allow(
        clippy::disallowed_methods,
        reason = "the durable module is the one place allowed to fsync"
    )]
    pub(crate) fn fsync(file: &File) -> io::Result<()> {
        file.sync_all()
    }

    /// `fdatasync(fd)`: file data and the metadata needed to read it back.
    #[allow(
        clippy::disallowed_methods,
        reason = "the durable module is the one place allowed to fsync"
    )]
    pub(crate) fn fdatasync(file: &File) -> io::Result<()> {
        file.sync_data()
    }

    /// `open(dir, O_RDONLY)` + `fsync(dirfd)`: the directory's entries.
    #[allow(
        clippy::disallowed_methods,
        reason = "the durable module is the one place allowed to fsync"
    )]
    pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    /// `rename(from, to)`.
    #[allow(
        clippy::disallowed_methods,
        reason = "the durable module is the one place allowed to rename"
    )]
    pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
}

/// A `.partial` segment open for writing, as [`create_segment`] and [`reopen_partial`]
/// return it.
#[derive(Debug)]
pub struct PartialSegment<Fi> {
    /// The open file, exactly one segment long.
    pub file: Fi,
    /// Its path, `DIR/NAME[.c].partial`.
    pub path: PathBuf,
    /// Its name (the `.partial` form).
    pub name: SegmentName,
    /// For a reopened file, the length it had before (0, short, or a full segment); `None`
    /// for a new one.
    pub previous_len: Option<u64>,
}

/// Flushes a file's data to stable storage: `fdatasync(file)`.
///
/// The writer calls this to advance its flush position; the file's name and length are
/// already durable (made so when the file was created or reopened), so data is all that
/// is missing. Guards against: a crash losing bytes whose position was already reported
/// to the server as flushed (the server would then recycle WAL the archive lacks).
///
/// # Errors
///
/// [`Error::Io`] with [`Op::Sync`]. The caller must not retry on the same file.
pub fn sync_data<Fi: ArchiveFile>(file: &Fi, path: &Path, durability: Durability) -> Result<()> {
    if durability.syncs() {
        file.sync_data().map_err(Error::at(Op::Sync, path))?;
    }
    Ok(())
}

/// Flushes a directory's entries to stable storage: `fsync(dir)`.
///
/// Guards against: a crash undoing creations, renames or removals made in `dir`.
///
/// # Errors
///
/// [`Error::Io`] with [`Op::SyncDir`].
pub fn sync_dir<F: ArchiveFs>(fs: &F, dir: &Path, durability: Durability) -> Result<()> {
    if durability.syncs() {
        fs.sync_dir(dir).map_err(Error::at(Op::SyncDir, dir))?;
    }
    Ok(())
}

/// Creates the `.partial` file of a new segment, one segment long, and returns it open for
/// writing from offset 0. `name` may be given in any form; its `.partial` form is made. An
/// existing file of that name is replaced (to keep one, use [`reopen_partial`]).
///
/// System calls, in order:
///
/// 1. `open(NAME.partial.tmp, O_CREAT | O_EXCL | O_RDWR)` — if the temporary name is taken
///    (a leftover of ours from a crash), `unlink` it and try once more.
/// 2. `fallocate(tmp, 0, 0, segment size)` ([`ArchiveFile::allocate`]; `ftruncate` where
///    the file system cannot) — the file gets its full length with its blocks reserved but
///    nothing written, no zeros (pg_receivewal writes 16 MiB of zeros here). A full disk
///    shows here, before the segment appears, and the kernel's writes into it later are
///    cheaper than allocating blocks as WAL arrives.
/// 3. `fsync(tmp)` — the length is durable before the file can appear under a name that
///    restart trusts. Guards against: a crash after step 5 leaving a `.partial` of 0 bytes
///    (pg_receivewal tolerates 0, but we promise full-sized `.partial` files).
/// 4. `rename(NAME.partial.tmp, NAME.partial)` — the segment appears complete-sized in one
///    step. Guards against: a crash during steps 1–3 leaving a half-made `.partial`; at
///    worst a `.tmp` file is left, which restart deletes.
/// 5. `fsync(dir)` — the new name is durable before any data is written into the file, so
///    a flush position reported later never points into a file whose name a crash can undo.
///
/// A failure in steps 1–2 removes the temporary file (best effort) and leaves nothing
/// else behind.
///
/// # Errors
///
/// [`Error::Io`] naming the step ([`Op::Create`], [`Op::SetLen`], [`Op::Sync`],
/// [`Op::Rename`], [`Op::SyncDir`]) and its file; ENOSPC shows in
/// [`Error::is_no_space`]. After [`Op::Sync`], [`Op::Rename`] or [`Op::SyncDir`]
/// ([`Error::is_poisoning`]) the state of the file on disk is unknown.
pub fn create_segment<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    name: SegmentName,
    durability: Durability,
) -> Result<PartialSegment<F::File>> {
    let partial = name.not_temporary().partial();
    let temp_path = dir.join(partial.temporary().to_string());
    let path = dir.join(partial.to_string());
    let seg_bytes = partial.seg_size().as_u64();

    let file = create_fresh(fs, &temp_path)?;
    if let Err(e) = file.allocate(seg_bytes) {
        let _ = fs.remove_file(&temp_path);
        return Err(Error::io(Op::SetLen, &temp_path, e));
    }
    if durability.syncs()
        && let Err(e) = file.sync_all()
    {
        let _ = fs.remove_file(&temp_path);
        return Err(Error::io(Op::Sync, &temp_path, e));
    }
    if let Err(e) = fs.rename(&temp_path, &path) {
        let _ = fs.remove_file(&temp_path);
        return Err(Error::io(Op::Rename, &temp_path, e));
    }
    sync_dir(fs, dir, durability)?;
    Ok(PartialSegment {
        file,
        path,
        name: partial,
        previous_len: None,
    })
}

/// Opens an existing `.partial` segment of any length up to one segment for streaming it
/// again from offset 0, making it one segment long. `name` may be given in any form; its
/// `.partial` form is opened.
///
/// Nothing is zeroed: the caller overwrites the file from offset 0, and only positions it
/// has rewritten are ever reported as flushed.
///
/// System calls, in order:
///
/// 1. `open(NAME.partial, O_RDWR)`, `fstat` — a file longer than one segment is refused
///    and left as it is.
/// 2. `fallocate` (or `ftruncate`, see [`ArchiveFile::allocate`]) to the segment size when
///    it is shorter (0 bytes, or cut short by a crash under another tool) — the missing
///    part reads as zeros; what the file held is not touched.
/// 3. `fsync(file)` — the length is durable.
/// 4. `fsync(dir)` — the file's name is durable. This matters when an earlier writer in
///    this process renamed the file into place but failed before syncing the directory:
///    without it, data flushed into the file could vanish with its name in a crash.
///
/// Syncing a file again here does not break the never-retry-fsync rule: nothing written
/// before is relied on; every byte later reported as flushed is written again first.
///
/// # Errors
///
/// [`Error::OversizedPartial`] for a file longer than one segment; [`Error::Io`] naming the
/// step ([`Op::Open`], [`Op::Stat`], [`Op::SetLen`], [`Op::Sync`], [`Op::SyncDir`]).
pub fn reopen_partial<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    name: SegmentName,
    durability: Durability,
) -> Result<PartialSegment<F::File>> {
    let partial = name.not_temporary().partial();
    let path = dir.join(partial.to_string());
    let seg_size = partial.seg_size();

    let file = fs.open_rw(&path).map_err(Error::at(Op::Open, &path))?;
    let len = file.size().map_err(Error::at(Op::Stat, &path))?;
    if len > seg_size.as_u64() {
        return Err(Error::OversizedPartial {
            path,
            size: len,
            seg_size,
        });
    }
    if len < seg_size.as_u64() {
        file.allocate(seg_size.as_u64())
            .map_err(Error::at(Op::SetLen, &path))?;
    }
    if durability.syncs() {
        file.sync_all().map_err(Error::at(Op::Sync, &path))?;
    }
    sync_dir(fs, dir, durability)?;
    Ok(PartialSegment {
        file,
        path,
        name: partial,
        previous_len: Some(len),
    })
}

/// Checks that `path` still names the open `file` before the caller does `op` with it
/// (reports its data durable, or renames it): `fstat(file)` and `stat(path)` compared.
///
/// Guards against: another process (a second receiver on the same directory, an operator's
/// `mv`) having moved, removed or replaced the file. The descriptor would go on writing
/// into a file the archive no longer holds, so its data must not be reported flushed, and a
/// `rename` of the path would give the final name to the other file.
///
/// # Errors
///
/// [`Error::Replaced`] naming `path` and `op`; [`Error::Io`] with [`Op::Stat`].
pub fn ensure_named<Fi: ArchiveFile>(file: &Fi, path: &Path, op: Op) -> Result<()> {
    match file.is_named(path) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Replaced {
            path: path.to_path_buf(),
            op,
        }),
        Err(e) => Err(Error::io(Op::Stat, path, e)),
    }
}

/// Gives a fully written `.partial` segment its final name. Returns the final path.
///
/// System calls, in order:
///
/// 1. `fdatasync(file)` — every byte is on stable storage before the file is called
///    complete. Guards against: a crash leaving a final-named segment with missing data,
///    which restart would trust and skip.
/// 2. `fstat(file)`, `stat(NAME.partial)` ([`ensure_named`]) — the name still means the
///    file written. Guards against: renaming a file another process put in its place.
/// 3. `rename(NAME.partial, NAME)` — atomic: after a crash the segment is under exactly one
///    of the two names, complete either way.
/// 4. `fsync(dir)` — the final name is durable before completion is reported (to the
///    server as a flush position, or to whoever archives complete segments).
///
/// # Errors
///
/// [`Error::Io`] with [`Op::Sync`], [`Op::Rename`] or [`Op::SyncDir`]; all of them poison
/// ([`Error::is_poisoning`]). [`Error::Replaced`] (or [`Error::Io`] with [`Op::Stat`])
/// when the `.partial` name no longer means the file: nothing is renamed.
pub fn complete_segment<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    segment: &PartialSegment<F::File>,
    durability: Durability,
) -> Result<(SegmentName, PathBuf)> {
    sync_data(&segment.file, &segment.path, durability)?;
    ensure_named(&segment.file, &segment.path, Op::Rename)?;
    let done = segment.name.not_partial();
    let done_path = dir.join(done.to_string());
    fs.rename(&segment.path, &done_path)
        .map_err(Error::at(Op::Rename, &segment.path))?;
    sync_dir(fs, dir, durability)?;
    Ok((done, done_path))
}

/// A compressed segment file being written, as [`create_compressed`] returns it. It lives
/// under its temporary name `NAME.c.partial.tmp` until [`promote_compressed`] gives it the
/// name `NAME.c.partial`, and [`complete_compressed`] the final `NAME.c`.
#[derive(Debug)]
pub struct CompressedFile<Fi> {
    /// The open file. Unlike an uncompressed segment it is not pre-sized: it grows as
    /// compressed bytes are appended.
    pub file: Fi,
    /// The segment's name in its `.partial` form, with the compression suffix.
    pub name: SegmentName,
    /// Where the file is now: `temp_path` until promoted, then `partial_path`.
    pub path: PathBuf,
    /// `DIR/NAME.c.partial.tmp`.
    pub temp_path: PathBuf,
    /// `DIR/NAME.c.partial`.
    pub partial_path: PathBuf,
    /// `true` once the file carries its `.partial` name durably.
    pub promoted: bool,
}

/// Creates the file of a compressed segment under its temporary name, empty, open for
/// writing from offset 0. `name` may be given in any form; its `.partial` form (which must
/// carry a compression suffix) is used. Nothing else is touched: an existing
/// `NAME.c.partial` stays as it is until [`promote_compressed`] replaces it.
///
/// System calls: `open(NAME.c.partial.tmp, O_CREAT | O_EXCL | O_RDWR)` — if the name is
/// taken (a leftover of ours from a crash), `unlink` it and try once more. No sync: until
/// it is promoted, nothing relies on this file, and a crash leaves at most a `.tmp` file
/// that restart deletes.
///
/// # Errors
///
/// [`Error::Io`] with [`Op::Create`] or [`Op::Remove`]; ENOSPC shows in
/// [`Error::is_no_space`].
pub fn create_compressed<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    name: SegmentName,
) -> Result<CompressedFile<F::File>> {
    let partial = name.not_temporary().partial();
    let temp_path = dir.join(partial.temporary().to_string());
    let partial_path = dir.join(partial.to_string());
    let file = create_fresh(fs, &temp_path)?;
    Ok(CompressedFile {
        file,
        name: partial,
        path: temp_path.clone(),
        temp_path,
        partial_path,
        promoted: false,
    })
}

/// Gives a compressed segment file its `.partial` name, replacing the `.partial` of that
/// segment if one exists. The caller has written (and flushed out of its compressor) at
/// least as much WAL as the file it replaces held — so the name never moves to a file that
/// holds less than before.
///
/// System calls, in order:
///
/// 1. `fdatasync(NAME.c.partial.tmp)` — the compressed bytes and the file's length are
///    durable before the file can appear under a name restart trusts. Guards against: a
///    crash after step 2 leaving a `.partial` that holds less than the one it replaced.
///    Then `fstat`/`stat` ([`ensure_named`]): the temporary name still means the file
///    written, so another process's file is never renamed into place.
/// 2. `rename(NAME.c.partial.tmp, NAME.c.partial)` — atomic: after a crash the segment's
///    `.partial` is the old file or the new one, never neither and never a mix.
/// 3. `fsync(dir)` — the new name is durable before the flush position moves into it.
///    Guards against: the old file coming back after a crash while the server was told
///    the new data is flushed.
///
/// # Errors
///
/// [`Error::Io`] with [`Op::Sync`], [`Op::Rename`] or [`Op::SyncDir`]; all of them poison.
pub fn promote_compressed<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    segment: &mut CompressedFile<F::File>,
    durability: Durability,
) -> Result<()> {
    sync_data(&segment.file, &segment.path, durability)?;
    ensure_named(&segment.file, &segment.path, Op::Rename)?;
    fs.rename(&segment.temp_path, &segment.partial_path)
        .map_err(Error::at(Op::Rename, &segment.temp_path))?;
    segment.path.clone_from(&segment.partial_path);
    segment.promoted = true;
    sync_dir(fs, dir, durability)
}

/// Gives a fully written compressed segment (its stream finished) its final name `NAME.c`.
/// Returns that name and path.
///
/// System calls, in order:
///
/// 1. `fdatasync(file)` — every compressed byte, trailer included, is durable before the
///    file is called complete. Guards against: a crash leaving a final-named segment that
///    does not decompress to a whole segment, which restart would refuse. Then
///    `fstat`/`stat` ([`ensure_named`]), as in [`promote_compressed`].
/// 2. Only while the file still has its temporary name:
///    `rename(NAME.c.partial.tmp, NAME.c.partial)` — it replaces the segment's old
///    `.partial`, if any, so no stale `.partial` is left next to the complete file.
/// 3. `rename(NAME.c.partial, NAME.c)`.
/// 4. `fsync(dir)` — the final name is durable before completion is reported.
///
/// After a crash the segment is under exactly one name: its old `.partial` (step 2 not
/// durable), its new full `.partial` (step 3 not durable; it is streamed again), or its
/// final name.
///
/// # Errors
///
/// [`Error::Io`] with [`Op::Sync`], [`Op::Rename`] or [`Op::SyncDir`]; all of them poison.
pub fn complete_compressed<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    segment: &CompressedFile<F::File>,
    durability: Durability,
) -> Result<(SegmentName, PathBuf)> {
    sync_data(&segment.file, &segment.path, durability)?;
    ensure_named(&segment.file, &segment.path, Op::Rename)?;
    if !segment.promoted {
        fs.rename(&segment.temp_path, &segment.partial_path)
            .map_err(Error::at(Op::Rename, &segment.temp_path))?;
    }
    let done = segment.name.not_partial();
    let done_path = dir.join(done.to_string());
    fs.rename(&segment.partial_path, &done_path)
        .map_err(Error::at(Op::Rename, &segment.partial_path))?;
    sync_dir(fs, dir, durability)?;
    Ok((done, done_path))
}

/// Abandons a compressed segment file that was never promoted (it holds less than the
/// `.partial` it would have replaced): `unlink(NAME.c.partial.tmp)`. No directory sync: if
/// a crash undoes the removal, restart deletes the `.tmp` file. A promoted file is left
/// alone.
///
/// # Errors
///
/// [`Error::Io`] with [`Op::Remove`].
pub fn discard_compressed<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    segment: CompressedFile<F::File>,
) -> Result<()> {
    if segment.promoted {
        return Ok(());
    }
    drop(segment.file);
    remove_temp_file(fs, dir, &FileName::Segment(segment.name.temporary())).map(drop)
}

/// Writes a timeline history file so that it is either absent or complete, replacing any
/// file of that name. Returns the final path.
///
/// System calls, in order:
///
/// 1. `open(TTTTTTTT.history.tmp, O_CREAT | O_EXCL | O_RDWR)` — a leftover temporary
///    file of that name is `unlink`ed first (pg_receivewal uses the same temporary name).
/// 2. `pwrite(tmp, content, 0)`.
/// 3. `fsync(tmp)` — the content is durable before the final name can appear. Guards
///    against: a crash leaving an empty or torn `.history` under its final name, which a
///    restore would read as the timeline's ancestry.
/// 4. `rename(tmp, TTTTTTTT.history)`.
/// 5. `fsync(dir)` — the history file is durable before the first segment of its timeline
///    is created (the caller's order), so no archive ever holds a timeline's WAL without
///    its history.
///
/// A failure in steps 1–2 removes the temporary file (best effort).
///
/// # Errors
///
/// [`Error::Io`] naming the step; ENOSPC shows in [`Error::is_no_space`].
pub fn write_history_file<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    name: HistoryName,
    content: &[u8],
    durability: Durability,
) -> Result<PathBuf> {
    let name = name.not_temporary();
    let temp_path = dir.join(name.temporary().to_string());
    let path = dir.join(name.to_string());

    let file = create_fresh(fs, &temp_path)?;
    if let Err(e) = file.write_all_at(content, 0) {
        let _ = fs.remove_file(&temp_path);
        return Err(Error::io(Op::Write, &temp_path, e));
    }
    if durability.syncs() {
        file.sync_all().map_err(Error::at(Op::Sync, &temp_path))?;
    }
    drop(file);
    fs.rename(&temp_path, &path)
        .map_err(Error::at(Op::Rename, &temp_path))?;
    sync_dir(fs, dir, durability)?;
    Ok(path)
}

/// Removes complete segment files that retention gave up, then syncs the directory once.
///
/// System calls, in order: `unlink` of each file, then `fsync(dir)`.
///
/// Guards against: a crash bringing removed files back is harmless (they are complete
/// segments, still valid); the sync only makes the freed space and the listing final.
///
/// # Errors
///
/// [`Error::Io`] with [`Op::Remove`] naming the file, or [`Op::SyncDir`].
pub fn remove_segments<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    names: &[SegmentName],
    durability: Durability,
) -> Result<()> {
    for name in names {
        let path = dir.join(name.to_string());
        fs.remove_file(&path)
            .map_err(Error::at(Op::Remove, &path))?;
    }
    if !names.is_empty() {
        sync_dir(fs, dir, durability)?;
    }
    Ok(())
}

/// Removes one of our temporary files (a name ending in `.tmp`) left by a crash, and only
/// such a file. Returns its path. A file already gone is not an error.
///
/// System calls: `unlink(DIR/NAME.tmp)`. No directory sync: if a crash undoes the removal,
/// the next start finds the file and removes it again.
///
/// # Errors
///
/// [`Error::NotTemporary`] for any other name (nothing is touched); [`Error::Io`] with
/// [`Op::Remove`].
pub fn remove_temp_file<F: ArchiveFs>(fs: &F, dir: &Path, name: &FileName) -> Result<PathBuf> {
    let path = dir.join(name.to_string());
    if !name.is_temporary() {
        return Err(Error::NotTemporary { path });
    }
    match fs.remove_file(&path) {
        Ok(()) => Ok(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path),
        Err(e) => Err(Error::io(Op::Remove, &path, e)),
    }
}

/// The suffix [`stage_beside`] appends to a destination's file name for its temporary
/// file (`pg_wal/RECOVERYXLOG` is written as `pg_wal/RECOVERYXLOG.pgwalrus.tmp`).
pub const STAGING_SUFFIX: &str = ".pgwalrus.tmp";

/// A file being written beside its destination, as [`stage_beside`] returns it; it gets
/// the destination's name only from [`install_staged`], once it is complete.
#[derive(Debug)]
pub struct StagedFile<Fi> {
    /// The open file, empty when staged; the caller writes it from offset 0.
    pub file: Fi,
    /// Where it is while being written: the destination's name plus [`STAGING_SUFFIX`],
    /// in the same directory (so the final rename never crosses file systems).
    pub temp_path: PathBuf,
    /// Where [`install_staged`] puts it.
    pub target: PathBuf,
}

/// Creates the temporary file for `target` in `target`'s directory, empty and open for
/// writing: the first step of putting a file where a reader expects it (a restored WAL
/// file where the server's `restore_command` was told to write it) so that the reader
/// never sees it half-written. `target` itself is not touched.
///
/// System calls: `open(TARGET.pgwalrus.tmp, O_CREAT | O_EXCL | O_RDWR)` — if the name is
/// taken (a leftover of an earlier run that died), `unlink` it and try once more. No sync:
/// until [`install_staged`], nothing relies on the file.
///
/// # Errors
///
/// [`Error::Io`] with [`Op::Create`] or [`Op::Remove`]; ENOSPC shows in
/// [`Error::is_no_space`].
pub fn stage_beside<F: ArchiveFs>(fs: &F, target: &Path) -> Result<StagedFile<F::File>> {
    let mut temp_name = target.file_name().unwrap_or_default().to_owned();
    temp_name.push(STAGING_SUFFIX);
    let temp_path = target.with_file_name(temp_name);
    let file = create_fresh(fs, &temp_path)?;
    Ok(StagedFile {
        file,
        temp_path,
        target: target.to_owned(),
    })
}

/// Gives a completely written [`StagedFile`] its destination's name, replacing any file of
/// that name. Returns the destination.
///
/// System calls, in order:
///
/// 1. `fsync(tmp)` — the content is durable before the destination name can point at it.
///    Guards against: a crash after step 2 leaving the destination name on an empty or
///    partly written file, which the reader would take as complete.
/// 2. `rename(tmp, target)` — atomic: a reader sees the old file (or none) or the whole new
///    one, never a half-written one.
/// 3. `fsync(target's directory)` — the new name is durable before success is reported.
///
/// A failure in steps 1–2 removes the temporary file (best effort).
///
/// # Errors
///
/// [`Error::Io`] with [`Op::Sync`], [`Op::Rename`] or [`Op::SyncDir`].
pub fn install_staged<F: ArchiveFs>(
    fs: &F,
    staged: StagedFile<F::File>,
    durability: Durability,
) -> Result<PathBuf> {
    let StagedFile {
        file,
        temp_path,
        target,
    } = staged;
    if durability.syncs()
        && let Err(e) = file.sync_all()
    {
        drop(file);
        let _ = fs.remove_file(&temp_path);
        return Err(Error::io(Op::Sync, &temp_path, e));
    }
    drop(file);
    if let Err(e) = fs.rename(&temp_path, &target) {
        let _ = fs.remove_file(&temp_path);
        return Err(Error::io(Op::Rename, &temp_path, e));
    }
    sync_dir(fs, parent_dir(&target), durability)?;
    Ok(target)
}

/// Puts `content` at `target` whole, replacing any file of that name: [`stage_beside`],
/// one positional write, [`install_staged`]. A reader sees the old file (or none) or the
/// whole new one. For small files written in one piece: a state file, a downloaded object.
///
/// # Errors
///
/// As for [`stage_beside`] and [`install_staged`], and [`Error::Io`] with [`Op::Write`].
pub fn replace_file<F: ArchiveFs>(
    fs: &F,
    target: &Path,
    content: &[u8],
    durability: Durability,
) -> Result<PathBuf> {
    let staged = stage_beside(fs, target)?;
    if let Err(e) = staged.file.write_all_at(content, 0) {
        let path = staged.temp_path.clone();
        let _ = discard_staged(fs, staged);
        return Err(Error::io(Op::Write, &path, e));
    }
    install_staged(fs, staged, durability)
}

/// Abandons a [`StagedFile`] (its content turned out wrong, or writing it failed):
/// `unlink(tmp)`. The destination is not touched. No directory sync: a temporary file that
/// comes back after a crash is replaced by the next [`stage_beside`] for the destination.
///
/// # Errors
///
/// [`Error::Io`] with [`Op::Remove`]; a file already gone is not an error.
pub fn discard_staged<F: ArchiveFs>(fs: &F, staged: StagedFile<F::File>) -> Result<()> {
    drop(staged.file);
    match fs.remove_file(&staged.temp_path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(Op::Remove, &staged.temp_path, e)),
    }
}

/// Moves a complete file that is already durable (written through [`stage_beside`] and
/// [`install_staged`]) to `target`, replacing any file of that name: how a file prepared in
/// advance is handed over without copying it. Returns the destination.
///
/// System calls, in order:
///
/// 1. `rename(from, target)` — atomic, so the reader never sees a partial file. Across file
///    systems this fails with `EXDEV` (`io::ErrorKind::CrossesDevices`) and nothing is
///    moved: the caller copies instead.
/// 2. `fsync(target's directory)` — the new name is durable before success is reported.
///    The content needs no sync: it was durable before `from` got its name.
///
/// # Errors
///
/// [`Error::Io`] with [`Op::Rename`] (nothing moved) or [`Op::SyncDir`].
pub fn move_into_place<F: ArchiveFs>(
    fs: &F,
    from: &Path,
    target: &Path,
    durability: Durability,
) -> Result<PathBuf> {
    fs.rename(from, target)
        .map_err(Error::at(Op::Rename, from))?;
    sync_dir(fs, parent_dir(target), durability)?;
    Ok(target.to_owned())
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `open(path, O_CREAT | O_EXCL | O_RDWR)`; if the name is taken, `unlink` and try once
/// more. Only called with our temporary names.
fn create_fresh<F: ArchiveFs>(fs: &F, temp_path: &Path) -> Result<F::File> {
    match fs.create_new(temp_path) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs.remove_file(temp_path)
                .map_err(Error::at(Op::Remove, temp_path))?;
            fs.create_new(temp_path)
                .map_err(Error::at(Op::Create, temp_path))
        }
        Err(e) => Err(Error::io(Op::Create, temp_path, e)),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod staging_tests;
