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
//! `--prefetch N`: each restore records the segment it served (`.pgwalrus-cursor` in the
//! cache) and makes sure a worker runs (`restore --prefetch-worker CACHE --archive …`,
//! detached, holding `.pgwalrus-prefetch.lock`): it keeps the next N segments of the timeline
//! downloaded into the cache, four downloads in flight, while PostgreSQL replays; removes
//! the segments before the last one served (PostgreSQL asks for that one again when
//! recovery ends), and everything served when it exits after 10 s without a restore.
//! Behind it, the local prefetch spool ([`super::spool`]) treats the cache as its archive:
//! its worker checks the downloaded segments ahead, so that a restore hands a segment over
//! with a rename — recovery waits neither for a request nor for a check.

use std::path::{Path, PathBuf};

use pgwalrus_archive::StdFs;
use pgwalrus_archive::durable::{self, Durability};
use pgwalrus_bucket::meta;
use pgwalrus_bucket::{Bucket, Layout, Stamp};
use pgwalrus_wal::SegNo;
use pgwalrus_wal::names::{FileName, HistoryName, SegmentName};

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

    /// The cluster's system identifier.
    pub(crate) fn system_id(&self) -> u64 {
        self.source.layout.system_id()
    }

    /// Records that `served` (at the cluster's real segment size) was restored, and makes
    /// sure a worker keeps the `depth` segments after it downloaded.
    ///
    /// # Errors
    /// Writing the cursor, or starting the worker.
    pub(crate) fn advance(
        &self,
        served: SegmentName,
        depth: u32,
        args: &crate::cli::RestoreArgs,
        url: &str,
    ) -> std::io::Result<()> {
        let cache = &self.source.cache;
        let text = super::spool::cursor_text(served);
        // A hint, not data: no fsync.
        durable::replace_file(
            &StdFs::new(),
            &cache.join(CURSOR),
            text.as_bytes(),
            Durability::NoSync,
        )
        .map_err(std::io::Error::other)?;
        if super::spool::try_lock(&cache.join(LOCK))?.is_none() {
            return Ok(());
        }
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command
            .arg("restore")
            .arg("--prefetch-worker")
            .arg(cache)
            .arg("-D")
            .arg(cache)
            .arg("--archive")
            .arg(url)
            .arg("--prefetch")
            .arg(depth.to_string())
            .arg("--system-identifier")
            .arg(self.system_id().to_string());
        let b = &args.bucket;
        for (flag, value) in [
            ("--s3-endpoint", b.endpoint.as_deref()),
            ("--s3-region", b.region.as_deref()),
            ("--s3-profile", b.profile.as_deref()),
        ] {
            if let Some(value) = value {
                command.arg(flag).arg(value);
            }
        }
        let style = match b.addressing_style {
            pgwalrus_bucket::AddressingStyle::Auto => "auto",
            pgwalrus_bucket::AddressingStyle::Path => "path",
            pgwalrus_bucket::AddressingStyle::Virtual => "virtual",
        };
        command.arg("--s3-addressing-style").arg(style);
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        Ok(())
    }

    /// `wanted` at the segment size of the cursor a previous restore left, when there is
    /// one: what a restore about to download `wanted` itself records as served (see
    /// [`Remote::advance`]), so that the worker fetches the segments after it meanwhile
    /// instead of the same one.
    pub(crate) fn known_size(&self, wanted: SegmentName) -> Option<SegmentName> {
        let cursor = std::fs::read_to_string(self.source.cache.join(CURSOR)).ok()?;
        let seg_size = super::spool::parse_cursor(&cursor)?.seg_size();
        match FileName::parse(&wanted.plain().to_string(), seg_size) {
            Ok(FileName::Segment(s)) => Some(s),
            _ => None,
        }
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

/// Writes `content` to `target` through a fsynced temporary file and a rename. The temporary
/// name is this process's own (a dot name no listing takes for WAL): a restore and the
/// prefetch worker may download the same segment at once, and each puts a whole file in
/// place without touching the other's.
fn write_file(fs: &StdFs, target: &Path, content: &[u8]) -> Result<(), pgwalrus_archive::Error> {
    let own = target.with_file_name(format!(
        ".{}.{}",
        target.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    durable::replace_file(fs, &own, content, Durability::Fsync)?;
    durable::move_into_place(fs, &own, target, Durability::Fsync).map(drop)
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

/// The last segment a restore served, in the cache.
const CURSOR: &str = ".pgwalrus-cursor";
/// Held by the one prefetch worker of a cache while it runs.
const LOCK: &str = ".pgwalrus-prefetch.lock";
/// A worker exits after this long without a restore.
const IDLE: std::time::Duration = std::time::Duration::from_secs(10);
/// How often an idle worker looks at the cursor.
const POLL: std::time::Duration = std::time::Duration::from_millis(20);
/// How long a segment the bucket did not have is not asked for again.
const ABSENT_FOR: std::time::Duration = std::time::Duration::from_secs(1);
/// Downloads at once.
const AT_ONCE: usize = 4;

/// The prefetch worker of `remote`'s cache (see the module documentation).
///
/// # Errors
/// The lock file cannot be opened.
pub(crate) fn work(remote: &Remote, depth: u32) -> std::io::Result<()> {
    let cache = remote.source.cache.clone();
    let Some(_lock) = super::spool::try_lock(&cache.join(LOCK))? else {
        return Ok(());
    };
    let mut cursor: Option<String> = None;
    let mut moved = super::spool::now();
    let mut absent: Vec<(SegmentName, std::time::Instant)> = Vec::new();
    // Downloads in flight: a new one starts as soon as one ends (not batch by batch), so
    // the window stays full while PostgreSQL replays.
    let mut downloads: tokio::task::JoinSet<(SegmentName, Result<Fetched, String>)> =
        tokio::task::JoinSet::new();
    let mut in_flight: Vec<SegmentName> = Vec::new();
    loop {
        if !cache.is_dir() {
            return Ok(());
        }
        let current = std::fs::read_to_string(cache.join(CURSOR)).ok();
        if current != cursor {
            cursor = current;
            moved = super::spool::now();
            absent.clear();
        }
        let at = cursor.as_deref().and_then(super::spool::parse_cursor);
        let idle = super::spool::now().duration_since(moved) > IDLE;
        if let Some(at) = at {
            // Segments before the last one served are done with. The last one stays:
            // PostgreSQL asks for it again when recovery ends. Once idle (recovery over),
            // it goes too.
            remove_served(&cache, at, idle);
        }
        if idle {
            return Ok(());
        }
        let Some(at) = at else {
            std::thread::sleep(POLL);
            continue;
        };
        absent.retain(|(_, since)| super::spool::now().duration_since(*since) < ABSENT_FOR);
        let wanted: Vec<SegmentName> = (1..=u64::from(depth))
            .filter_map(|i| SegmentName::new(at.tli(), SegNo(at.segno().0 + i), at.seg_size()).ok())
            .filter(|n| {
                !super::find::complete_forms(*n).any(|f| cache.join(f.to_string()).exists())
                    && !absent.iter().any(|(a, _)| a == n)
                    && !in_flight.contains(n)
            })
            .take(AT_ONCE.saturating_sub(in_flight.len()))
            .collect();
        let finished = remote.runtime.block_on(async {
            for name in wanted {
                let source = remote.source.clone();
                in_flight.push(name);
                downloads.spawn(async move { (name, source.fetch_segment(name).await) });
            }
            if downloads.is_empty() {
                tokio::time::sleep(POLL).await;
                return None;
            }
            tokio::select! {
                done = downloads.join_next() => done.and_then(Result::ok),
                () = tokio::time::sleep(POLL) => None,
            }
        });
        if let Some((name, result)) = finished {
            in_flight.retain(|n| *n != name);
            match result {
                Ok(Fetched::Cached(_)) => {}
                Ok(Fetched::Missing(_)) => absent.push((name, super::spool::now())),
                // The restore that asks for it meets the problem itself and says so.
                Err(e) => {
                    tracing::debug!("--prefetch: {e}");
                    absent.push((name, super::spool::now()));
                }
            }
        }
    }
}

/// Removes the cache's segments of `at`'s timeline before `at` (through `at` when
/// `through`).
fn remove_served(cache: &Path, at: SegmentName, through: bool) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(Ok(FileName::Segment(s))) = entry
            .file_name()
            .to_str()
            .map(|n| FileName::parse(n, at.seg_size()))
        else {
            continue;
        };
        if s.tli() == at.tli() && (s.segno() < at.segno() || (through && s.segno() == at.segno())) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
