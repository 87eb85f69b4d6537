//! [`SimFs`]: an in-memory [`ArchiveFs`] that keeps a *live* and a *durable* image of every
//! file and directory, with named failpoints. The model is described on [`SimFs`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{ArchiveFile, ArchiveFs};

/// Page size for dirty tracking.
const PAGE: u64 = 4096;
/// `EIO`.
const EIO: i32 = 5;
/// `ENOSPC`.
const ENOSPC: i32 = 28;
/// `EBADF`.
const EBADF: i32 = 9;

/// One kind of operation on a [`SimFs`], for failpoints and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimOp {
    /// [`ArchiveFs::create_new`].
    Create,
    /// [`ArchiveFs::open_rw`] and [`ArchiveFs::open_read`].
    Open,
    /// [`ArchiveFile::write_at`].
    Write,
    /// [`ArchiveFile::read_at`].
    Read,
    /// [`ArchiveFile::set_len`].
    SetLen,
    /// [`ArchiveFile::size`], [`ArchiveFile::is_named`] and [`ArchiveFs::file_len`].
    Stat,
    /// [`ArchiveFile::sync_all`] and [`ArchiveFile::sync_data`].
    SyncFile,
    /// [`ArchiveFs::sync_dir`].
    SyncDir,
    /// [`ArchiveFs::rename`].
    Rename,
    /// [`ArchiveFs::remove_file`].
    Remove,
    /// [`ArchiveFs::list_dir`].
    ListDir,
}

impl SimOp {
    /// `true` for [`SimOp::SyncFile`] and [`SimOp::SyncDir`]: the sync points.
    pub const fn is_sync(self) -> bool {
        matches!(self, SimOp::SyncFile | SimOp::SyncDir)
    }
}

/// What a triggered failpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The operation fails with `EIO` and has no effect (a failed file sync also drops the
    /// dirty pages, see [`SimFs`]).
    Io,
    /// The operation fails with `ENOSPC` and has no effect.
    NoSpace,
    /// The power goes out just before the operation: it and every later operation fail
    /// with `EIO`. Call [`SimFs::crash`] to see what survived.
    PowerCut,
}

/// A planned failure: the `nth` operation of a kind (optionally only on paths containing
/// some text) fails with a [`Fault`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failpoint {
    any_sync: bool,
    op: SimOp,
    nth: u64,
    always: bool,
    path_contains: Option<String>,
    fault: Fault,
}

impl Failpoint {
    /// Fails the first `op` (change with [`Failpoint::nth`]) with `fault`.
    pub fn new(op: SimOp, fault: Fault) -> Self {
        Failpoint {
            any_sync: false,
            op,
            nth: 1,
            always: false,
            path_contains: None,
            fault,
        }
    }

    /// Fails the first sync point, file or directory (change with [`Failpoint::nth`]).
    pub fn any_sync(fault: Fault) -> Self {
        Failpoint {
            any_sync: true,
            ..Failpoint::new(SimOp::SyncFile, fault)
        }
    }

    /// Fails the `n`th matching operation (1-based) after the failpoint is armed.
    #[must_use]
    pub fn nth(mut self, n: u64) -> Self {
        self.nth = n.max(1);
        self
    }

    /// Fails every matching operation from the `n`th on, not only the `n`th.
    #[must_use]
    pub fn always(mut self) -> Self {
        self.always = true;
        self
    }

    /// Only counts operations on a path containing `text`.
    #[must_use]
    pub fn on_path_containing(mut self, text: impl Into<String>) -> Self {
        self.path_contains = Some(text.into());
        self
    }

    fn matches(&self, op: SimOp, path: &Path) -> bool {
        let op_matches = if self.any_sync {
            op.is_sync()
        } else {
            op == self.op
        };
        op_matches
            && self
                .path_contains
                .as_deref()
                .is_none_or(|text| path.to_string_lossy().contains(text))
    }
}

/// Which unsynced state a [`SimFs::crash_with`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Only what was synced: directories as of their last sync, files as of theirs.
    DurableOnly,
    /// Directory entries as of their last sync, but every file's latest contents (the
    /// kernel happened to write all dirty pages back).
    UnsyncedData,
    /// Every directory change (the journal happened to commit them all), but file contents
    /// only as of their last sync.
    UnsyncedDirectories,
}

impl CrashMode {
    /// Every mode.
    pub const ALL: [CrashMode; 3] = [
        CrashMode::DurableOnly,
        CrashMode::UnsyncedData,
        CrashMode::UnsyncedDirectories,
    ];
}

#[derive(Debug, Clone, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    dirty: BTreeSet<u64>,
}

impl Inode {
    fn clean(content: Vec<u8>) -> Self {
        Inode {
            durable: content.clone(),
            live: content,
            dirty: BTreeSet::new(),
        }
    }

    /// Marks the pages covering `[from, to)` dirty.
    fn mark(&mut self, from: u64, to: u64) {
        if to > from {
            self.dirty.extend(from / PAGE..=(to - 1) / PAGE);
        }
    }

    fn resize(&mut self, len: u64) {
        let old = self.live.len() as u64;
        self.live
            .resize(usize::try_from(len).unwrap_or(usize::MAX), 0);
        self.mark(old.min(len), old.max(len));
    }

    fn sync(&mut self) {
        let len = self.live.len();
        self.durable.resize(len, 0);
        for page in std::mem::take(&mut self.dirty) {
            let from = usize::try_from(page * PAGE).unwrap_or(usize::MAX).min(len);
            let to = usize::try_from((page + 1) * PAGE)
                .unwrap_or(usize::MAX)
                .min(len);
            if let (Some(dst), Some(src)) =
                (self.durable.get_mut(from..to), self.live.get(from..to))
            {
                dst.copy_from_slice(src);
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Dir {
    live: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
}

#[derive(Debug, Default)]
struct State {
    inodes: HashMap<u64, Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    next_inode: u64,
    failpoints: Vec<(Failpoint, u64)>,
    counts: BTreeMap<SimOp, u64>,
    powered_off: bool,
}

fn os_error(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "simulated file system needs a path with a parent and a name",
        )),
    }
}

impl State {
    /// Counts the operation and applies power state and failpoints.
    fn enter(&mut self, op: SimOp, path: &Path) -> Result<(), (io::Error, Fault)> {
        if self.powered_off {
            return Err((os_error(EIO), Fault::PowerCut));
        }
        *self.counts.entry(op).or_default() += 1;
        let mut fired = None;
        for (fp, seen) in &mut self.failpoints {
            if fp.matches(op, path) {
                *seen += 1;
                if fired.is_none() && (*seen == fp.nth || (fp.always && *seen > fp.nth)) {
                    fired = Some(fp.fault);
                }
            }
        }
        match fired {
            None => Ok(()),
            Some(Fault::Io) => Err((os_error(EIO), Fault::Io)),
            Some(Fault::NoSpace) => Err((os_error(ENOSPC), Fault::NoSpace)),
            Some(Fault::PowerCut) => {
                self.powered_off = true;
                Err((os_error(EIO), Fault::PowerCut))
            }
        }
    }

    fn check(&mut self, op: SimOp, path: &Path) -> io::Result<()> {
        self.enter(op, path).map_err(|(e, _)| e)
    }

    fn dir(&self, path: &Path) -> io::Result<&Dir> {
        self.dirs
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn dir_mut(&mut self, path: &Path) -> io::Result<&mut Dir> {
        self.dirs
            .get_mut(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (parent, name) = split(path)?;
        self.dir(parent)?
            .live
            .get(name)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn inode(&mut self, id: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&id).ok_or_else(|| os_error(EBADF))
    }

    fn new_inode(&mut self, inode: Inode) -> u64 {
        self.next_inode += 1;
        self.inodes.insert(self.next_inode, inode);
        self.next_inode
    }
}

/// A crash-simulating file system: it keeps a *live* and a *durable* image of every file and
/// directory, so tests can cut the power at any point and look at what a real machine could
/// have kept; named failpoints ([`Failpoint`]) make the Nth call of an operation fail
/// (`EIO`, `ENOSPC`, or a power cut). Clones share one state, so a test can keep a handle
/// while a writer owns another.
///
/// # The model
///
/// * File contents: a write or length change is *live* at once (reads see it) and becomes
///   *durable* when the file is synced (`sync_all` or `sync_data`; both persist the length,
///   as `fdatasync` must for a read to find the data). Dirtiness is tracked per 4 KiB page.
/// * Directory entries: a create, rename or remove is live at once and durable when the
///   parent directory is synced.
/// * A failed file sync behaves like Linux after a writeback error: the pages that were
///   dirty are marked clean *without* reaching the durable image, so a later sync that
///   succeeds does not persist them. Code that retries fsync and trusts the second answer
///   loses data here, as it would on a real machine.
/// * [`SimFs::crash`] returns a new file system holding only the durable image (directories
///   as of their last sync, files as of theirs). [`SimFs::crash_with`] can also keep
///   unsynced file data or unsynced directory changes, the two ways real file systems tend
///   to be kinder than the minimum; durability code must be right in all three.
///
/// Paths are compared as given: use one spelling per directory (`/archive`,
/// `/archive/NAME`). Directories are made with [`SimFs::create_dir`] and are durable at once.
///
/// ```
/// use std::path::Path;
/// use pgwalrus_archive::{ArchiveFile, ArchiveFs, SimFs};
///
/// let fs = SimFs::new();
/// fs.create_dir("/d");
/// let f = fs.create_new(Path::new("/d/a"))?;
/// f.write_all_at(b"wal", 0)?;
/// f.sync_data()?;
/// assert!(fs.crash().live_file("/d/a").is_none()); // the directory was never synced
/// fs.sync_dir(Path::new("/d"))?;
/// assert_eq!(fs.crash().live_file("/d/a").unwrap(), b"wal");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SimFs")
            .field("dirs", &state.dirs.keys().collect::<Vec<_>>())
            .field("counts", &state.counts)
            .field("powered_off", &state.powered_off)
            .finish_non_exhaustive()
    }
}

impl SimFs {
    /// An empty file system with no directories.
    pub fn new() -> Self {
        SimFs::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test may poison the lock; the state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates an (empty, durable) directory; does nothing if it exists.
    pub fn create_dir(&self, path: impl AsRef<Path>) {
        self.lock()
            .dirs
            .entry(path.as_ref().to_path_buf())
            .or_default();
    }

    /// Puts a file with the given contents, entry and contents durable at once: a fixture
    /// for tests. Replaces any file of that name.
    ///
    /// # Panics
    ///
    /// If the parent directory does not exist or the path has no parent.
    pub fn put_file(&self, path: impl AsRef<Path>, contents: &[u8]) {
        let path = path.as_ref();
        let mut state = self.lock();
        let (parent, name) = split(path).expect("path with a parent and a name");
        let id = state.new_inode(Inode::clean(contents.to_vec()));
        let dir = state.dir_mut(parent).expect("parent directory exists");
        dir.live.insert(name.to_os_string(), id);
        dir.durable.insert(name.to_os_string(), id);
    }

    /// The live contents of a file (what reads return now), or `None` if it does not exist.
    pub fn live_file(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let state = self.lock();
        let id = state.lookup(path.as_ref()).ok()?;
        state.inodes.get(&id).map(|i| i.live.clone())
    }

    /// The contents a crash would keep under [`CrashMode::DurableOnly`], or `None` if the
    /// file's directory entry is not durable.
    pub fn durable_file(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let state = self.lock();
        let (parent, name) = split(path.as_ref()).ok()?;
        let id = *state.dirs.get(parent)?.durable.get(name)?;
        state.inodes.get(&id).map(|i| i.durable.clone())
    }

    /// The live entries of a directory, sorted (lossily converted to text).
    pub fn live_names(&self, dir: impl AsRef<Path>) -> Vec<String> {
        let state = self.lock();
        state
            .dirs
            .get(dir.as_ref())
            .map(|d| {
                d.live
                    .keys()
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The durable entries of a directory, sorted (lossily converted to text).
    pub fn durable_names(&self, dir: impl AsRef<Path>) -> Vec<String> {
        let state = self.lock();
        state
            .dirs
            .get(dir.as_ref())
            .map(|d| {
                d.durable
                    .keys()
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Arms a failpoint. Its count starts now.
    pub fn fail(&self, failpoint: Failpoint) {
        self.lock().failpoints.push((failpoint, 0));
    }

    /// Disarms every failpoint (a power cut stays cut).
    pub fn clear_failpoints(&self) {
        self.lock().failpoints.clear();
    }

    /// How many operations of a kind were attempted so far (not counting those after a
    /// power cut).
    pub fn count(&self, op: SimOp) -> u64 {
        self.lock().counts.get(&op).copied().unwrap_or(0)
    }

    /// How many sync points (file and directory syncs) were attempted so far.
    pub fn sync_count(&self) -> u64 {
        self.count(SimOp::SyncFile) + self.count(SimOp::SyncDir)
    }

    /// `true` after a [`Fault::PowerCut`] fired.
    pub fn is_powered_off(&self) -> bool {
        self.lock().powered_off
    }

    /// The machine restarts after losing power: a new file system holding only the
    /// durable image ([`CrashMode::DurableOnly`]). This one is left as it was.
    pub fn crash(&self) -> SimFs {
        self.crash_with(CrashMode::DurableOnly)
    }

    /// The machine restarts after losing power, keeping what `mode` says. The new file
    /// system has no failpoints, zeroed counters, and everything in it durable.
    pub fn crash_with(&self, mode: CrashMode) -> SimFs {
        let state = self.lock();
        let mut next = State {
            next_inode: state.next_inode,
            ..State::default()
        };
        for (path, dir) in &state.dirs {
            let entries = match mode {
                CrashMode::DurableOnly | CrashMode::UnsyncedData => dir.durable.clone(),
                CrashMode::UnsyncedDirectories => dir.live.clone(),
            };
            for id in entries.values() {
                if let Some(inode) = state.inodes.get(id) {
                    let contents = match mode {
                        CrashMode::UnsyncedData => inode.live.clone(),
                        CrashMode::DurableOnly | CrashMode::UnsyncedDirectories => {
                            inode.durable.clone()
                        }
                    };
                    next.inodes.insert(*id, Inode::clean(contents));
                }
            }
            next.dirs.insert(
                path.clone(),
                Dir {
                    live: entries.clone(),
                    durable: entries,
                },
            );
        }
        SimFs {
            state: Arc::new(Mutex::new(next)),
        }
    }

    fn open(&self, op: SimOp, path: &Path, writable: bool) -> io::Result<SimFile> {
        let mut state = self.lock();
        state.check(op, path)?;
        let inode = state.lookup(path)?;
        Ok(SimFile {
            state: Arc::clone(&self.state),
            inode,
            path: path.to_path_buf(),
            writable,
        })
    }
}

/// An open file of a [`SimFs`]. Like a real descriptor it stays attached to its file when
/// the name is renamed or removed.
#[derive(Debug)]
pub struct SimFile {
    state: Arc<Mutex<State>>,
    inode: u64,
    path: PathBuf,
    writable: bool,
}

impl SimFile {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.lock();
        match state.enter(SimOp::SyncFile, &self.path) {
            Ok(()) => {
                state.inode(self.inode)?.sync();
                Ok(())
            }
            Err((e, Fault::PowerCut)) => Err(e),
            Err((e, Fault::Io | Fault::NoSpace)) => {
                // Writeback failed: the dirty pages are marked clean and never written.
                state.inode(self.inode)?.dirty.clear();
                Err(e)
            }
        }
    }
}

impl ArchiveFile for SimFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let mut state = self.lock();
        state.check(SimOp::Write, &self.path)?;
        if !self.writable {
            return Err(os_error(EBADF));
        }
        let inode = state.inode(self.inode)?;
        let end = offset + buf.len() as u64;
        if end > inode.live.len() as u64 {
            inode.resize(end);
        }
        let from = usize::try_from(offset).map_err(|_| os_error(EIO))?;
        if let Some(dst) = inode.live.get_mut(from..from + buf.len()) {
            dst.copy_from_slice(buf);
        }
        inode.mark(offset, end);
        Ok(buf.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut state = self.lock();
        state.check(SimOp::Read, &self.path)?;
        let inode = state.inode(self.inode)?;
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        let available = inode.live.get(from..).unwrap_or_default();
        let n = available.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), available.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        state.check(SimOp::SetLen, &self.path)?;
        if !self.writable {
            return Err(os_error(EBADF));
        }
        state.inode(self.inode)?.resize(len);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        let mut state = self.lock();
        state.check(SimOp::Stat, &self.path)?;
        Ok(state.inode(self.inode)?.live.len() as u64)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }

    fn is_named(&self, path: &Path) -> io::Result<bool> {
        let mut state = self.lock();
        state.check(SimOp::Stat, path)?;
        match state.lookup(path) {
            Ok(id) => Ok(id == self.inode),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl ArchiveFs for SimFs {
    type File = SimFile;

    fn create_new(&self, path: &Path) -> io::Result<SimFile> {
        let mut state = self.lock();
        state.check(SimOp::Create, path)?;
        let (parent, name) = split(path)?;
        if state.dir(parent)?.live.contains_key(name) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let id = state.new_inode(Inode::default());
        state.dir_mut(parent)?.live.insert(name.to_os_string(), id);
        Ok(SimFile {
            state: Arc::clone(&self.state),
            inode: id,
            path: path.to_path_buf(),
            writable: true,
        })
    }

    fn open_rw(&self, path: &Path) -> io::Result<SimFile> {
        self.open(SimOp::Open, path, true)
    }

    fn open_read(&self, path: &Path) -> io::Result<SimFile> {
        self.open(SimOp::Open, path, false)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.check(SimOp::Rename, from)?;
        let (from_dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        state.dir(to_dir)?;
        let id = state
            .dir_mut(from_dir)?
            .live
            .remove(from_name)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        state
            .dir_mut(to_dir)?
            .live
            .insert(to_name.to_os_string(), id);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.check(SimOp::SyncDir, dir)?;
        let d = state.dir_mut(dir)?;
        d.durable = d.live.clone();
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.check(SimOp::Remove, path)?;
        let (parent, name) = split(path)?;
        state
            .dir_mut(parent)?
            .live
            .remove(name)
            .map(drop)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let mut state = self.lock();
        state.check(SimOp::ListDir, dir)?;
        Ok(state.dir(dir)?.live.keys().cloned().collect())
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        let mut state = self.lock();
        state.check(SimOp::Stat, path)?;
        let id = state.lookup(path)?;
        Ok(state.inode(id)?.live.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> SimFs {
        let fs = SimFs::new();
        fs.create_dir("/d");
        fs
    }

    fn p(name: &str) -> PathBuf {
        Path::new("/d").join(name)
    }

    #[test]
    fn writes_are_live_at_once_and_durable_after_file_sync() {
        let fs = fs();
        let f = fs.create_new(&p("a")).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        f.write_all_at(b"abc", 0).unwrap();
        assert_eq!(fs.live_file(p("a")).unwrap(), b"abc");
        assert_eq!(fs.durable_file(p("a")).unwrap(), b"");
        assert_eq!(fs.crash().live_file(p("a")).unwrap(), b"");
        f.sync_data().unwrap();
        assert_eq!(fs.crash().live_file(p("a")).unwrap(), b"abc");
        f.write_all_at(b"X", 1).unwrap();
        assert_eq!(fs.crash().live_file(p("a")).unwrap(), b"abc");
        assert_eq!(
            fs.crash_with(CrashMode::UnsyncedData)
                .live_file(p("a"))
                .unwrap(),
            b"aXc"
        );
    }

    #[test]
    fn directory_changes_are_durable_after_directory_sync() {
        let fs = fs();
        let f = fs.create_new(&p("a")).unwrap();
        f.sync_all().unwrap();
        assert!(fs.crash().live_file(p("a")).is_none());
        assert!(
            fs.crash_with(CrashMode::UnsyncedDirectories)
                .live_file(p("a"))
                .is_some()
        );
        fs.sync_dir(Path::new("/d")).unwrap();
        fs.rename(&p("a"), &p("b")).unwrap();
        assert_eq!(fs.live_names("/d"), ["b"]);
        assert_eq!(fs.crash().live_names("/d"), ["a"]);
        fs.sync_dir(Path::new("/d")).unwrap();
        assert_eq!(fs.crash().live_names("/d"), ["b"]);
        fs.remove_file(&p("b")).unwrap();
        assert_eq!(fs.crash().live_names("/d"), ["b"]);
        fs.sync_dir(Path::new("/d")).unwrap();
        assert!(fs.crash().live_names("/d").is_empty());
        // The handle still writes to the unlinked file, and knows it is not named any more.
        f.write_all_at(b"z", 0).unwrap();
        assert!(!f.is_named(&p("a")).unwrap() && !f.is_named(&p("b")).unwrap());
        fs.put_file(p("b"), b"another");
        assert!(!f.is_named(&p("b")).unwrap());
        let g = fs.open_read(&p("b")).unwrap();
        assert!(g.is_named(&p("b")).unwrap());
    }

    #[test]
    fn length_changes_follow_the_same_rules() {
        let fs = fs();
        fs.put_file(p("a"), b"0123456789");
        let f = fs.open_rw(&p("a")).unwrap();
        f.set_len(4).unwrap();
        f.set_len(8).unwrap();
        assert_eq!(fs.live_file(p("a")).unwrap(), b"0123\0\0\0\0");
        assert_eq!(fs.crash().live_file(p("a")).unwrap(), b"0123456789");
        f.sync_all().unwrap();
        assert_eq!(fs.crash().live_file(p("a")).unwrap(), b"0123\0\0\0\0");
        assert_eq!(ArchiveFile::size(&f).unwrap(), 8);
        assert_eq!(fs.file_len(&p("a")).unwrap(), 8);
    }

    #[test]
    fn a_failed_sync_drops_the_dirty_pages_for_good() {
        let fs = fs();
        fs.put_file(p("a"), b"");
        let f = fs.open_rw(&p("a")).unwrap();
        f.write_all_at(b"lost", 0).unwrap();
        fs.fail(Failpoint::new(SimOp::SyncFile, Fault::Io));
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(EIO));
        // The page cache still shows the data, and a retried fsync "succeeds"…
        assert_eq!(fs.live_file(p("a")).unwrap(), b"lost");
        f.sync_data().unwrap();
        // …but it never reached the disk.
        assert_eq!(fs.crash().live_file(p("a")).unwrap(), b"\0\0\0\0");
    }

    #[test]
    fn failpoints_fire_on_the_nth_matching_call_and_can_filter_paths() {
        let fs = fs();
        fs.fail(
            Failpoint::new(SimOp::Create, Fault::NoSpace)
                .nth(2)
                .on_path_containing("x"),
        );
        fs.create_new(&p("x1")).unwrap();
        fs.create_new(&p("y1")).unwrap();
        let e = fs.create_new(&p("x2")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        fs.create_new(&p("x3")).unwrap();
        assert_eq!(fs.count(SimOp::Create), 4);

        fs.fail(Failpoint::new(SimOp::Write, Fault::Io).nth(2).always());
        let f = fs.open_rw(&p("x1")).unwrap();
        f.write_at(b"a", 0).unwrap();
        assert!(f.write_at(b"a", 0).is_err());
        assert!(f.write_at(b"a", 0).is_err());
        fs.clear_failpoints();
        f.write_at(b"a", 0).unwrap();
    }

    #[test]
    fn a_power_cut_stops_everything_and_crash_shows_the_durable_image() {
        let fs = fs();
        let f = fs.create_new(&p("a")).unwrap();
        f.write_all_at(b"abc", 0).unwrap();
        f.sync_all().unwrap();
        fs.fail(Failpoint::any_sync(Fault::PowerCut).nth(1));
        assert!(fs.sync_dir(Path::new("/d")).is_err());
        assert!(fs.is_powered_off());
        assert!(fs.create_new(&p("b")).is_err());
        assert!(f.read_at(&mut [0; 1], 0).is_err());
        let after = fs.crash();
        assert!(!after.is_powered_off());
        assert!(after.live_names("/d").is_empty());
        assert_eq!(after.count(SimOp::Create), 0);
        let kept = fs.crash_with(CrashMode::UnsyncedDirectories);
        assert_eq!(kept.live_file(p("a")).unwrap(), b"abc");
    }

    #[test]
    fn names_clash_and_missing_files_are_reported_like_the_os() {
        let fs = fs();
        fs.put_file(p("a"), b"1");
        assert_eq!(
            fs.create_new(&p("a")).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            fs.open_read(&p("zz")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.remove_file(&p("zz")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.list_dir(Path::new("/nope")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let ro = fs.open_read(&p("a")).unwrap();
        assert!(ro.write_at(b"x", 0).is_err());
        // Rename replaces the target.
        fs.put_file(p("b"), b"2");
        fs.rename(&p("a"), &p("b")).unwrap();
        assert_eq!(fs.live_file(p("b")).unwrap(), b"1");
        assert_eq!(fs.live_names("/d"), ["b"]);
    }
}
