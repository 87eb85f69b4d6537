//! Helpers shared by the unit tests: a simulated archive directory, deterministic WAL-like
//! bytes, long page headers, and real temporary directories.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pgwalrus_wal::names::SegmentName;
use pgwalrus_wal::page::{LONG_HEADER_LEN, XLOG_BLCKSZ, XLP_LONG_HEADER};
use pgwalrus_wal::{Lsn, SegNo, TimeLineId, WalSegSize};

use crate::compress::{Compression, CompressionSpec, Encoder};
use crate::fs::SimFs;

/// The simulated archive directory.
pub(crate) const DIR: &str = "/archive";
/// Tests use the smallest segment size to keep simulated files small.
pub(crate) const SEG: WalSegSize = WalSegSize::MIN;

pub(crate) fn tli(n: u32) -> TimeLineId {
    TimeLineId::new(n).unwrap()
}

pub(crate) fn dir() -> &'static Path {
    Path::new(DIR)
}

pub(crate) fn dir_path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

pub(crate) fn seg_name(t: u32, segno: u64) -> SegmentName {
    SegmentName::new(tli(t), SegNo(segno), SEG).unwrap()
}

/// Start of segment `segno` at [`SEG`].
pub(crate) fn seg_start(segno: u64) -> Lsn {
    SegNo(segno).start_lsn(SEG).unwrap()
}

/// A simulated file system with the archive directory.
pub(crate) fn sim() -> SimFs {
    let fs = SimFs::new();
    fs.create_dir(DIR);
    fs
}

/// The "WAL" byte at a position: deterministic, and different at nearby positions.
pub(crate) fn byte_at(lsn: u64) -> u8 {
    let x = lsn.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((x >> 56) ^ (x >> 23)) as u8
}

/// The stream bytes in `[from, to)`.
pub(crate) fn stream(from: Lsn, to: Lsn) -> Vec<u8> {
    (from.0..to.0).map(byte_at).collect()
}

/// A long page header as the server writes it at the start of a segment.
pub(crate) fn long_header(system_id: u64, seg_size: u32, t: u32, page_addr: Lsn) -> Vec<u8> {
    let mut h = vec![0u8; LONG_HEADER_LEN];
    h[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
    h[2..4].copy_from_slice(&XLP_LONG_HEADER.to_le_bytes());
    h[4..8].copy_from_slice(&t.to_le_bytes());
    h[8..16].copy_from_slice(&page_addr.0.to_le_bytes());
    h[24..32].copy_from_slice(&system_id.to_le_bytes());
    h[32..36].copy_from_slice(&seg_size.to_le_bytes());
    h[36..40].copy_from_slice(&XLOG_BLCKSZ.to_le_bytes());
    h
}

/// `data` compressed with `method` at its default level as one finished stream.
pub(crate) fn compressed(method: Compression, data: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new(
        method,
        CompressionSpec::default_for(method).effective_level(),
    )
    .unwrap();
    e.write(data).unwrap();
    e.finish().unwrap();
    std::mem::take(e.output())
}

/// `data` compressed with `method`, flushed but not finished: a `.partial` a crash left.
pub(crate) fn compressed_unfinished(method: Compression, data: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new(
        method,
        CompressionSpec::default_for(method).effective_level(),
    )
    .unwrap();
    e.write(data).unwrap();
    e.flush().unwrap();
    std::mem::take(e.output())
}

/// Whether the file system of `dir` reserves blocks with `fallocate` (some network and
/// FUSE file systems cannot; [`crate::ArchiveFile::allocate`] then only sets the length).
pub(crate) fn reserves_blocks(dir: &Path) -> bool {
    let probe = dir.join(".fallocate-probe");
    let file = std::fs::File::create(&probe).unwrap();
    let result = rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, 4096);
    let _ = std::fs::remove_file(&probe);
    !matches!(
        result,
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS)
    )
}

/// A real directory under the system's temporary directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "pgwalrus-archive-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
