//! The fsync stopwatch: an [`ArchiveFs`] that hands every call to the file system it wraps
//! and times the file fsyncs (`fdatasync`/`fsync` of a segment, compressed or not, and of a
//! history file) into an [`FsyncHistogram`], for the status's `fsync` histogram.
//!
//! Timing at the file system rather than around the writer's calls catches every data
//! fsync wherever the archive writer makes it — at a requested sync, at a segment's
//! completion inside a write, at a close, at zero-ahead — and times only the fsync, not the
//! writes, renames or directory syncs around it. Directory fsyncs are left out: they are
//! metadata, and mixing them in would hide what the WAL's own fsyncs cost.
//!
//! The writer runs on its own thread, so the stopwatch records into a shared histogram and
//! the session moves what it holds into the status when it publishes positions
//! ([`FsyncTimes::take`]).

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use pgwalrus_archive::{ArchiveFile, ArchiveFs};

use crate::clock::now;
use crate::status::FsyncHistogram;

/// The fsyncs timed and not yet moved into the status, shared by a session and the file
/// system its writer uses.
#[derive(Debug, Clone, Default)]
pub(crate) struct FsyncTimes(Arc<Mutex<FsyncHistogram>>);

impl FsyncTimes {
    /// What was recorded since the last call, leaving the shared histogram empty.
    pub(crate) fn take(&self) -> FsyncHistogram {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FsyncHistogram> {
        // A panic while holding the lock leaves a histogram that is still whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `fsync` and records how long it took, whether it failed or not (a failed fsync
    /// took that long too).
    fn time(&self, fsync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let started = now();
        let result = fsync();
        let took = now().saturating_duration_since(started);
        self.lock().record(took);
        result
    }
}

/// `F` with its file fsyncs timed into `times`.
#[derive(Debug, Clone)]
pub(crate) struct TimedFs<F> {
    inner: F,
    times: FsyncTimes,
}

impl<F> TimedFs<F> {
    pub(crate) fn new(inner: F, times: FsyncTimes) -> TimedFs<F> {
        TimedFs { inner, times }
    }
}

/// A file of a [`TimedFs`].
#[derive(Debug)]
pub(crate) struct TimedFile<T> {
    inner: T,
    times: FsyncTimes,
}

impl<T: ArchiveFile> ArchiveFile for TimedFile<T> {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.inner.write_at(buf, offset)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.times.time(|| self.inner.sync_all())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.times.time(|| self.inner.sync_data())
    }

    fn is_named(&self, path: &Path) -> io::Result<bool> {
        self.inner.is_named(path)
    }
}

impl<F: ArchiveFs> ArchiveFs for TimedFs<F> {
    type File = TimedFile<F::File>;

    fn create_new(&self, path: &Path) -> io::Result<Self::File> {
        Ok(self.timed(self.inner.create_new(path)?))
    }

    fn open_rw(&self, path: &Path) -> io::Result<Self::File> {
        Ok(self.timed(self.inner.open_rw(path)?))
    }

    fn open_read(&self, path: &Path) -> io::Result<Self::File> {
        Ok(self.timed(self.inner.open_read(path)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        self.inner.list_dir(dir)
    }

    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        self.inner.available_space(dir)
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_len(path)
    }
}

impl<F> TimedFs<F> {
    fn timed<T>(&self, inner: T) -> TimedFile<T> {
        TimedFile {
            inner,
            times: self.times.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwalrus_archive::SimFs;

    #[test]
    fn file_fsyncs_are_timed_and_directory_fsyncs_are_not() {
        let times = FsyncTimes::default();
        let sim = SimFs::new();
        let dir = Path::new("/archive");
        sim.create_dir(dir);
        let fs = TimedFs::new(sim, times.clone());
        let file = fs.create_new(&dir.join("a")).unwrap();
        file.write_all_at(b"wal", 0).unwrap();
        file.sync_data().unwrap();
        file.sync_all().unwrap();
        fs.sync_dir(dir).unwrap();
        let reopened = fs.open_rw(&dir.join("a")).unwrap();
        reopened.sync_data().unwrap();
        let taken = times.take();
        assert_eq!(taken.count(), 3);
        assert_eq!(times.take().count(), 0, "take leaves it empty");
    }
}
