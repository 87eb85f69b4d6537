//! `restore --archive s3://…`: the file PostgreSQL asks for comes from the bucket, through
//! the local directory `-D DIR`, which is then a cache. One GET brings the object (its key
//! is computed from the name and the cluster's system identifier); its stored bytes are
//! checked against the SHA-256 in its metadata, written under a temporary name, fsynced and
//! renamed into the cache, and from there the usual restore checks every record and hands
//! the file over. A half-downloaded or damaged object never reaches the server.
//!
//! The system identifier is read from the server's own `global/pg_control` (PostgreSQL runs
//! `restore_command` in its data directory), or given with `--system-identifier`. The first
//! restore checks that the bucket holds an archive of that cluster (`archive.json`) and
//! remembers it in the cache, so that a wrong prefix stops recovery instead of passing for
//! an empty archive.
//!
//! `--prefetch N` downloads the next N segments of the timeline concurrently into the cache
//! while the asked one is handed over; later restores then find them there.

use std::path::{Path, PathBuf};

use pgwalrus_archive::StdFs;
use pgwalrus_archive::durable::{self, Durability};
use pgwalrus_bucket::meta;
use pgwalrus_bucket::{Bucket, Layout, Stamp};
use pgwalrus_wal::names::{FileName, HistoryName, SegmentName};
use pgwalrus_wal::{SegNo, WalSegSize};

/// Where the cache records that it belongs to an archive of this cluster.
const MARKER: &str = ".pgwalrus-bucket";

/// What a fetch found.
pub(crate) enum Fetched {
    /// Now in the cache under this name.
    Cached(FileName),
    /// The bucket does not have it.
    Missing(String),
}

/// A bucket archive of one cluster, read through a local cache directory.
pub(crate) struct Remote {
    source: Source,
    runtime: tokio::runtime::Runtime,
}

/// Where objects come from and go: cheap to clone into concurrent downloads.
#[derive(Clone)]
struct Source {
    bucket: Bucket,
    layout: Layout,
    cache: PathBuf,
}

impl Remote {
    /// The remote archive of the cluster whose data directory is the working directory (or
    /// of `system_id`), cached in `cache`.
    ///
    /// # Errors
    /// A message for a failure that must stop recovery.
    pub(crate) fn open(
        bucket: Bucket,
        system_id: Option<u64>,
        cache: &Path,
    ) -> Result<Remote, String> {
        let system_id = match system_id {
            Some(id) => id,
            None => read_system_id(Path::new("global/pg_control"))?,
        };
        let layout = Layout::new(&bucket.url().prefix, system_id);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("could not start the runtime: {e}"))?;
        let remote = Remote {
            source: Source {
                bucket,
                layout,
                cache: cache.to_path_buf(),
            },
            runtime,
        };
        remote.check_archive()?;
        Ok(remote)
    }

    fn check_archive(&self) -> Result<(), String> {
        let Source {
            bucket,
            layout,
            cache,
        } = &self.source;
        let marker = cache.join(MARKER);
        let expected = format!("{} {}\n", bucket.url(), layout.system_id());
        if std::fs::read_to_string(&marker).is_ok_and(|m| m == expected) {
            return Ok(());
        }
        let key = layout.identity();
        let found = self
            .runtime
            .block_on(bucket.get(&key))
            .map_err(|e| pgwalrus_bucket::ship::error_chain(&e))?;
        if found.is_none() {
            return Err(format!(
                "{} holds no archive of cluster {} (no {key}): check the URL and the data directory's system identifier",
                bucket.url(),
                layout.system_id()
            ));
        }
        let fs = StdFs::new();
        write_file(&fs, &marker, expected.as_bytes()).map_err(|e| e.to_string())
    }

    /// Brings segment `wanted` into the cache, unless it is there.
    ///
    /// # Errors
    /// A message for a failure that must stop recovery (a damaged object, the store failing).
    pub(crate) fn segment(&self, wanted: SegmentName) -> Result<Fetched, String> {
        self.runtime
            .block_on(self.source.clone().fetch_segment(wanted))
    }

    /// Rebuilds the open segment `wanted` from its chunks into the cache as
    /// `NAME.partial`, when the bucket has chunks of it and not the complete segment.
    ///
    /// # Errors
    /// A message for a failure that must stop recovery.
    pub(crate) fn partial(&self, wanted: SegmentName) -> Result<Fetched, String> {
        let Source {
            bucket,
            layout,
            cache,
        } = &self.source;
        let assembled = self
            .runtime
            .block_on(pgwalrus_bucket::partial::assemble(bucket, layout, wanted))
            .map_err(|e| pgwalrus_bucket::ship::error_chain(&e))?;
        let Some(assembled) = assembled.filter(|a| !a.bytes.is_empty()) else {
            return Ok(Fetched::Missing(format!(
                "{wanted} is not in the archive {}, complete or as chunks",
                bucket.url()
            )));
        };
        let name = FileName::Segment(wanted.plain().partial());
        write_file(
            &StdFs::new(),
            &cache.join(name.to_string()),
            &assembled.bytes,
        )
        .map_err(|e| format!("could not write {name} into the cache: {e}"))?;
        Ok(Fetched::Cached(name))
    }

    /// Downloads up to `depth` segments after `served` (at the cluster's real segment size,
    /// read from the served segment), concurrently, into the cache; what is missing or
    /// fails is left for the restore that asks for it.
    pub(crate) fn prefetch(&self, served: SegmentName, depth: u32, seg_size: WalSegSize) {
        let Ok(FileName::Segment(served)) = FileName::parse(&served.plain().to_string(), seg_size)
        else {
            return;
        };
        let cache = &self.source.cache;
        let next: Vec<SegmentName> = (1..=u64::from(depth))
            .filter_map(|i| {
                SegmentName::new(served.tli(), SegNo(served.segno().0 + i), seg_size).ok()
            })
            .filter(|n| {
                !super::find::complete_forms(*n).any(|f| cache.join(f.to_string()).exists())
            })
            .collect();
        self.runtime.block_on(async {
            let mut downloads = tokio::task::JoinSet::new();
            for name in next {
                downloads.spawn(self.source.clone().fetch_segment(name));
            }
            while let Some(done) = downloads.join_next().await {
                if let Ok(Err(e)) = done {
                    tracing::debug!("--prefetch: {e}");
                }
            }
        });
    }

    /// The content of history file `wanted`, or why not.
    ///
    /// # Errors
    /// A message for a failure that must stop recovery.
    pub(crate) fn history(&self, wanted: HistoryName) -> Result<Option<Vec<u8>>, String> {
        let key = self.source.layout.history(wanted.tli());
        let Some((body, stamp)) = self
            .runtime
            .block_on(self.source.bucket.get(&key))
            .map_err(|e| pgwalrus_bucket::ship::error_chain(&e))?
        else {
            return Ok(None);
        };
        let compression = checked(key.as_ref(), &body, stamp.as_ref())?;
        let mut content = Vec::new();
        match compression {
            None => content = body.to_vec(),
            Some(method) => {
                pgwalrus_archive::compress::decode(method, &body[..], 1 << 20, |b| {
                    content.extend_from_slice(b);
                })
                .map_err(|e| format!("{key}: {e}"))?;
            }
        }
        Ok(Some(content))
    }

    /// Removes a served file from the cache (it is in `pg_wal` now).
    pub(crate) fn forget(&self, name: &FileName) {
        let _ = std::fs::remove_file(self.source.cache.join(name.to_string()));
    }
}

impl Source {
    /// Brings segment `wanted` into the cache.
    async fn fetch_segment(self, wanted: SegmentName) -> Result<Fetched, String> {
        let key = self.layout.segment(wanted);
        let Some((body, stamp)) = self
            .bucket
            .get(&key)
            .await
            .map_err(|e| pgwalrus_bucket::ship::error_chain(&e))?
        else {
            return Ok(Fetched::Missing(format!(
                "{wanted} is not in the archive {} (no {key})",
                self.bucket.url()
            )));
        };
        let compression = checked(key.as_ref(), &body, stamp.as_ref())?;
        let name = FileName::Segment(wanted.plain().with_compression(compression));
        let target = self.cache.join(name.to_string());
        tokio::task::spawn_blocking(move || write_file(&StdFs::new(), &target, &body))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("could not write {name} into the cache: {e}"))?;
        Ok(Fetched::Cached(name))
    }
}

/// Checks stored bytes against the object's stamp, when it has one. Returns their
/// compression.
fn checked(
    key: &str,
    body: &[u8],
    stamp: Option<&Stamp>,
) -> Result<Option<pgwalrus_archive::compress::Compression>, String> {
    match stamp {
        Some(stamp) => {
            stamp
                .check_stored(body)
                .map_err(|why| format!("{key} is damaged: {why}"))?;
            Ok(stamp.compression)
        }
        None => Ok(meta::sniff(body)),
    }
}

/// Writes `content` to `target` through a fsynced temporary file and a rename.
fn write_file(fs: &StdFs, target: &Path, content: &[u8]) -> Result<(), pgwalrus_archive::Error> {
    durable::replace_file(fs, target, content, Durability::Fsync).map(drop)
}

/// The system identifier in a `pg_control` file: its first field.
fn read_system_id(path: &Path) -> Result<u64, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the system identifier from \"{}\" (restore_command runs in the data directory; else give --system-identifier): {e}",
            path.display()
        )
    })?;
    let first: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("\"{}\" is too short to be pg_control", path.display()))?;
    Ok(u64::from_ne_bytes(first))
}
