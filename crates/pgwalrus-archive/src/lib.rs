//! The WAL archive on disk: crash-safe segment files, the durability contract, the resume
//! scan, the cluster guard and reading segments back. Blocking `std::fs` only, behind a
//! narrow trait so tests can cut the power at every sync point.
//!
//! The contract in one paragraph (the whole of it is in the project's
//! `docs/durability.md`): the flush position reported to the server only covers bytes
//! fsynced in files whose names are durable; a new segment appears as `.partial` only
//! once it is full-sized and its creation is durable; a completed segment is fsynced,
//! renamed to its final name and the directory fsynced; a timeline's `.history` file is
//! durable before its first segment exists; a failed fsync poisons the writer, which never
//! retries it; restart resumes at the newest incomplete segment and repairs only what it
//! can prove.
//!
//! # Layout
//!
//! * [`fs`] — the [`ArchiveFs`] / [`ArchiveFile`] traits, [`StdFs`] (real files,
//!   positional I/O) and [`SimFs`] (a crash simulator with a live and a durable image and
//!   named failpoints, for tests).
//! * [`durable`] — the only module that fsyncs or renames: segment creation, completion,
//!   compressed segments' promotion and completion, atomic history files, removal of our
//!   temporary files, files staged beside a destination (what `restore` serves);
//!   [`Durability`].
//! * [`compress`] — gzip, lz4 and zstd: the `-Z` specification, streaming compressors
//!   flushed to a decodable boundary at every sync, and decoders tolerant of torn tails.
//! * [`writer`] — [`ArchiveWriter`]: streamed WAL into segment files (compressed or not),
//!   with contiguity checks, write and flush positions, and poisoning.
//! * [`retention`] — which complete segments may go, by age and size (sans-IO).
//! * [`sink`] — [`WalSink`]: the write side at the level of WAL (start, write at an LSN,
//!   sync to a durable LSN, close the partial segment, write a history file), which
//!   [`ArchiveWriter`] implements and a receive loop is written against.
//! * [`inventory`] — [`Inventory`]: one listing of the archive directory, parsed once, that
//!   every reader of the archive works from.
//! * [`resume`] — the directory scan that says where to resume ([`ResumePoint`]).
//! * [`identity`] — the cluster guard: system identifier and segment size from the
//!   archive's page headers, checked against the server's.
//! * [`plan`] — the archive along a timeline's history: which file serves each segment,
//!   and the gaps (verify, dump and restore walk through it).
//! * [`reader`] — read any archive file back, whatever its compression: whole, by range,
//!   or streamed.
//! * [`fuzz`] — arbitrary-bytes entry points for the fuzz targets and their corpora.
//! * `error` — [`Error`], with operation, path and position in its fields.
//!
//! # Example
//!
//! ```
//! use pgwalrus_archive::{ArchiveWriter, Durability, StdFs, resume};
//! use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};
//!
//! let dir = std::env::temp_dir().join(format!("pgwalrus-archive-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let seg_size = WalSegSize::MIN; // 1 MiB segments
//!
//! // Where to start? An empty archive has no opinion: the receiver asks the server.
//! assert!(resume::scan(&StdFs::new(), &dir, seg_size)?.resume.is_none());
//! let tli = TimeLineId::new(2)?;
//! let start: Lsn = "0/3000000".parse()?;
//!
//! // The new timeline's history goes first, then its WAL.
//! let mut writer = ArchiveWriter::new(StdFs::new(), &dir, seg_size, Durability::Fsync);
//! writer.write_history(tli, b"1\t0/2FFF000\tno recovery target specified\n")?;
//! writer.start(tli, start)?;
//! let chunk = vec![0xAB; 640 * 1024];
//! writer.write(tli, start, &chunk)?;
//! let next = writer.write_lsn();
//! let written = writer.write(tli, next, &chunk)?; // crosses the end of the first segment
//! assert_eq!(
//!     written.completed().map(|s| s.to_string()).collect::<Vec<_>>(),
//!     ["000000020000000000000030"]
//! );
//! let flush = writer.sync()?; // what the receiver may report as flushed
//! assert_eq!(flush, "0/3140000".parse()?);
//! writer.close_partial()?; // clean stop: the second segment stays `.partial`
//!
//! // A restart resumes at the start of the `.partial` segment.
//! let point = resume::scan(&StdFs::new(), &dir, seg_size)?.resume.expect("segments");
//! assert_eq!((point.tli, point.start), (tli, "0/3100000".parse()?));
//! assert!(point.partial.is_some());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod compress;
pub mod durable;
mod error;
pub mod fs;
pub mod fuzz;
pub mod identity;
pub mod inventory;
pub mod plan;
pub mod reader;
pub mod resume;
pub mod retention;
pub mod sink;
pub mod writer;

#[cfg(test)]
mod test_support;

pub use compress::CompressionSpec;
pub use durable::Durability;
pub use error::{Error, HeaderProblem, Op, Result};
pub use fs::{ArchiveFile, ArchiveFs, SimFs, StdFs};
pub use identity::ArchiveIdentity;
pub use inventory::Inventory;
pub use reader::{ArchiveStream, SegmentReader};
pub use resume::{DirScan, FoundSegment, ResumePoint};
pub use sink::WalSink;
pub use writer::{ArchiveWriter, Written};

#[cfg(test)]
mod tests {
    /// Only `durable` (and the trait definitions and `StdFs` in `fs`, which delegate to
    /// it) may call the methods that sync or rename.
    #[test]
    fn only_the_durable_module_syncs_or_renames() {
        let sources = [
            ("writer.rs", include_str!("writer.rs")),
            ("writer/compressed.rs", include_str!("writer/compressed.rs")),
            ("compress.rs", include_str!("compress.rs")),
            ("compress/spec.rs", include_str!("compress/spec.rs")),
            ("compress/encode.rs", include_str!("compress/encode.rs")),
            ("compress/decode.rs", include_str!("compress/decode.rs")),
            ("compress/file.rs", include_str!("compress/file.rs")),
            ("resume.rs", include_str!("resume.rs")),
            ("retention.rs", include_str!("retention.rs")),
            ("sink.rs", include_str!("sink.rs")),
            ("identity.rs", include_str!("identity.rs")),
            ("inventory.rs", include_str!("inventory.rs")),
            ("reader.rs", include_str!("reader.rs")),
            ("error.rs", include_str!("error.rs")),
        ];
        let needles = [
            ".sync_all(",
            ".sync_data(",
            ".sync_dir(",
            ".rename(",
            "fs::rename",
        ];
        for (file, source) in sources {
            for needle in needles {
                assert!(
                    !source.contains(needle),
                    "{file} calls {needle}; go through the durable module"
                );
            }
        }
    }
}
