//! The narrow file system interface the archive needs ([`ArchiveFs`], [`ArchiveFile`]), its
//! real implementation over `std::fs` ([`StdFs`]), and a crash simulator for tests
//! ([`SimFs`]).
//!
//! The trait is deliberately small: every operation the archive performs on disk is one
//! method here, so a test file system can observe, fail or "crash" each of them. Positional
//! I/O (`pread`/`pwrite`) is used throughout: no file cursor, no buffering, writes go
//! straight from the caller's slice to the kernel.
//!
//! Only [`durable`] calls the methods that make things durable or move
//! them ([`ArchiveFile::sync_all`], [`ArchiveFile::sync_data`], [`ArchiveFs::sync_dir`],
//! [`ArchiveFs::rename`]); a unit test checks the sources for it.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::durable;

mod sim;

pub use sim::{CrashMode, Failpoint, Fault, SimFile, SimFs, SimOp};

/// An open file. All I/O is positional; the handle has no cursor.
pub trait ArchiveFile {
    /// Writes up to `buf.len()` bytes at `offset` (`pwrite`), returning how many were
    /// written.
    ///
    /// # Errors
    ///
    /// The operating system's error; `ENOSPC` when the device is full.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;

    /// Reads up to `buf.len()` bytes at `offset` (`pread`); `Ok(0)` at end of file.
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Sets the file's length (`ftruncate`). Growing it leaves a hole that reads as zeros
    /// and takes no space (on file systems with sparse files).
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Grows the file to `len` bytes (not less than its length) with the blocks reserved
    /// but nothing written (`fallocate`, mode 0): what it held stays, the rest reads as
    /// zeros, exactly as after [`ArchiveFile::set_len`]. Where the file system cannot
    /// reserve blocks, it is [`ArchiveFile::set_len`] (the default).
    ///
    /// Why reserve: a full disk shows at once instead of part-way through the segment, and
    /// writing into reserved blocks costs the kernel less than allocating them as data
    /// arrives (measured on ext4: 0.13 instead of 0.21 s of system time per GiB).
    ///
    /// # Errors
    ///
    /// The operating system's error; `ENOSPC` when the space is not there.
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }

    /// The file's current length (`fstat`).
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn size(&self) -> io::Result<u64>;

    /// Flushes data and metadata to stable storage (`fsync`). Only
    /// [`durable`] calls this.
    ///
    /// # Errors
    ///
    /// The operating system's error. After a failure the kernel may have dropped the
    /// unwritten data: never call it again for the same writes.
    fn sync_all(&self) -> io::Result<()>;

    /// Flushes data, and the metadata needed to read it back (length, block map), to
    /// stable storage (`fdatasync`). Only [`durable`] calls this.
    ///
    /// # Errors
    ///
    /// As for [`ArchiveFile::sync_all`].
    fn sync_data(&self) -> io::Result<()>;

    /// Whether `path` names this open file now (`fstat` of the descriptor and `stat` of the
    /// path, compared by device and inode; symbolic links followed): `false` when the name
    /// was removed, or moved away and maybe taken by another file, after the file was
    /// opened.
    ///
    /// Why: a descriptor stays attached to its file whatever happens to the name, so a
    /// writer whose `.partial` was replaced under its feet would go on writing WAL into a
    /// file the archive no longer holds, and its completing `rename` would give the final
    /// name to the other file. The writer asks before it reports data durable and before it
    /// renames.
    ///
    /// # Errors
    ///
    /// The operating system's error, `NotFound` excepted (that is `Ok(false)`).
    fn is_named(&self, path: &Path) -> io::Result<bool>;

    /// Writes all of `buf` at `offset`, retrying short writes and `EINTR`.
    ///
    /// # Errors
    ///
    /// The first error from [`ArchiveFile::write_at`]; `WriteZero` if it makes no progress.
    /// Some of `buf` may have been written.
    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "failed to write whole buffer",
                    ));
                }
                Ok(n) => {
                    buf = buf.get(n..).unwrap_or_default();
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads from `offset` until `buf` is full or the file ends, returning how many bytes
    /// were read; retries `EINTR`.
    ///
    /// # Errors
    ///
    /// The first error from [`ArchiveFile::read_at`].
    fn read_full_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<usize> {
        let mut total = 0;
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => break,
                Ok(n) => {
                    total += n;
                    offset += n as u64;
                    buf = std::mem::take(&mut buf).get_mut(n..).unwrap_or_default();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }
}

/// The directory and file operations the archive performs.
pub trait ArchiveFs {
    /// The open-file type.
    type File: ArchiveFile;

    /// Creates a file that must not exist yet, open for reading and writing
    /// (`open(O_CREAT | O_EXCL | O_RDWR)`).
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if the name is taken; the operating system's error otherwise.
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;

    /// Opens an existing file for reading and writing.
    ///
    /// # Errors
    ///
    /// `NotFound` if it does not exist; the operating system's error otherwise.
    fn open_rw(&self, path: &Path) -> io::Result<Self::File>;

    /// Opens an existing file for reading.
    ///
    /// # Errors
    ///
    /// `NotFound` if it does not exist; the operating system's error otherwise.
    fn open_read(&self, path: &Path) -> io::Result<Self::File>;

    /// Renames a file, replacing `to` if it exists (`rename`, atomic within a file
    /// system). Only [`durable`] calls this.
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Flushes a directory's entries (creations, renames, removals) to stable storage.
    /// Only [`durable`] calls this.
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Removes a file (`unlink`).
    ///
    /// # Errors
    ///
    /// `NotFound` if it does not exist; the operating system's error otherwise.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// The names of the entries of a directory that are not directories themselves, in no
    /// particular order.
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>>;

    /// Bytes free for this process on the file system holding `dir` (`statvfs`'s
    /// `f_bavail × f_frsize`); unlimited where the file system cannot say.
    ///
    /// # Errors
    ///
    /// The operating system's error.
    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        let _ = dir;
        Ok(u64::MAX)
    }

    /// The length of a file (`stat`).
    ///
    /// # Errors
    ///
    /// `NotFound` if it does not exist; the operating system's error otherwise.
    fn file_len(&self, path: &Path) -> io::Result<u64>;
}

/// The real file system, through `std::fs` and positional I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdFs {
    mode: u32,
}

impl StdFs {
    /// Creates files with mode `0600` (before the umask), as pg_receivewal does for a
    /// server without group access.
    pub const fn new() -> Self {
        StdFs { mode: 0o600 }
    }

    /// Creates files with the given permission bits (before the umask): `0640` follows a
    /// server whose `data_directory_mode` allows group access.
    pub const fn with_mode(mode: u32) -> Self {
        StdFs { mode }
    }

    /// The permission bits new files get (before the umask).
    pub const fn mode(&self) -> u32 {
        self.mode
    }
}

impl Default for StdFs {
    fn default() -> Self {
        StdFs::new()
    }
}

impl ArchiveFile for File {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        FileExt::write_at(self, buf, offset)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        loop {
            match rustix::fs::fallocate(self, rustix::fs::FallocateFlags::empty(), 0, len) {
                Ok(()) => return Ok(()),
                // A signal arrived (tmpfs gives up on any pending signal): as `set_len` does.
                Err(rustix::io::Errno::INTR) => {}
                // The file system cannot reserve blocks (some network and FUSE file
                // systems): a length without reservation is all the format needs.
                Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {
                    return File::set_len(self, len);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn sync_all(&self) -> io::Result<()> {
        durable::os::fsync(self)
    }

    fn is_named(&self, path: &Path) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt as _;
        let open = self.metadata()?;
        match std::fs::metadata(path) {
            Ok(named) => Ok(open.dev() == named.dev() && open.ino() == named.ino()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        durable::os::fdatasync(self)
    }
}

impl ArchiveFs for StdFs {
    type File = File;

    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(self.mode)
            .open(path)
    }

    fn open_rw(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<File> {
        File::open(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        durable::os::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        durable::os::fsync_dir(dir)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                names.push(entry.file_name());
            }
        }
        Ok(names)
    }

    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        let stat = rustix::fs::statvfs(dir)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;

    #[test]
    fn std_fs_allocate_reserves_blocks_and_keeps_the_content() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = TempDir::new("stdfs-allocate");
        let fs = StdFs::new();
        let path = dir.path().join("a");
        let f = fs.create_new(&path).unwrap();
        ArchiveFile::write_all_at(&f, b"hello", 3).unwrap();
        ArchiveFile::allocate(&f, 1 << 20).unwrap();
        assert_eq!(ArchiveFile::size(&f).unwrap(), 1 << 20);
        let content = std::fs::read(&path).unwrap();
        assert_eq!(&content[..8], b"\0\0\0hello");
        assert!(content[8..].iter().all(|&b| b == 0));
        // Reserved, not a hole, where the file system can reserve (ext4, xfs, btrfs, tmpfs).
        if crate::test_support::reserves_blocks(dir.path()) {
            assert!(std::fs::metadata(&path).unwrap().blocks() * 512 >= 1 << 20);
        }
    }

    #[test]
    fn std_fs_creates_writes_reads_and_lists() {
        let dir = TempDir::new("stdfs-basic");
        let fs = StdFs::new();
        let path = dir.path().join("a");
        let f = fs.create_new(&path).unwrap();
        assert_eq!(
            fs.create_new(&path).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        ArchiveFile::write_all_at(&f, b"hello", 3).unwrap();
        assert_eq!(ArchiveFile::size(&f).unwrap(), 8);
        let mut buf = [9u8; 10];
        assert_eq!(f.read_full_at(&mut buf, 0).unwrap(), 8);
        assert_eq!(&buf[..8], b"\0\0\0hello");
        ArchiveFile::sync_data(&f).unwrap();
        drop(f);

        std::fs::create_dir(dir.path().join("subdir")).unwrap();
        assert_eq!(fs.list_dir(dir.path()).unwrap(), vec![OsString::from("a")]);
        assert_eq!(fs.file_len(&path).unwrap(), 8);
        fs.rename(&path, &dir.path().join("b")).unwrap();
        fs.sync_dir(dir.path()).unwrap();
        assert_eq!(
            fs.open_read(&path).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let b = fs.open_rw(&dir.path().join("b")).unwrap();
        ArchiveFile::set_len(&b, 1 << 20).unwrap();
        ArchiveFile::sync_all(&b).unwrap();
        assert_eq!(fs.file_len(&dir.path().join("b")).unwrap(), 1 << 20);
        fs.remove_file(&dir.path().join("b")).unwrap();
        assert!(fs.list_dir(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn std_fs_knows_whether_a_name_still_means_the_open_file() {
        let dir = TempDir::new("stdfs-named");
        let fs = StdFs::new();
        let path = dir.path().join("a");
        let f = fs.create_new(&path).unwrap();
        assert!(f.is_named(&path).unwrap());
        // Moved away: the name is free, then taken by another file.
        #[allow(
            clippy::disallowed_methods,
            reason = "the test moves a file as an operator would"
        )]
        std::fs::rename(&path, dir.path().join("moved")).unwrap();
        assert!(!f.is_named(&path).unwrap());
        assert!(f.is_named(&dir.path().join("moved")).unwrap());
        std::fs::write(&path, b"another file").unwrap();
        assert!(!f.is_named(&path).unwrap());
    }

    #[test]
    fn std_fs_applies_the_file_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("stdfs-mode");
        let path = dir.path().join("f");
        drop(StdFs::with_mode(0o600).create_new(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        assert_eq!(StdFs::default().mode(), 0o600);
    }
}
