//! The shipping stage: after the receive engine has made WAL durable in the local spool,
//! upload every completed segment (as stored, compressed as configured) and every timeline
//! history file, create-only, and persist how far that got — the third position,
//! **shipped**, next to written and flushed.
//!
//! The stage reads only the spool, never the stream: what it ships was fsynced by the
//! engine first, so the flush position the server sees stays "durable locally". Its
//! persisted position (`pgwalrus.shipped` in the spool) only saves work: losing it, or
//! finding it behind, re-uploads objects that the bucket then reports as already there
//! with the same content. Histories go up before any segment (a timeline's history is in the
//! bucket before its first segment is), and segments in WAL order.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use pgwalrus_archive::durable::{self, Durability};
use pgwalrus_archive::fs::{ArchiveFile as _, ArchiveFs, StdFs};
use pgwalrus_archive::inventory::Inventory;
use pgwalrus_wal::names::{FileName, HistoryName, SegmentName};
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::meta::Stamp;
use crate::store::{Bucket, Created};

/// The file in the spool that holds the shipped position.
pub const STATE_FILE: &str = "pgwalrus.shipped";

/// Segment uploads in flight at once. On localhost one 16 MiB PUT reaches about 150 MiB/s
/// and eight at once about 200 MiB/s (docs/benchmarks.md); a remote store gains more.
const UPLOADS_AT_ONCE: usize = 4;

/// First and longest wait after a failed upload.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// The cluster whose WAL is shipped, as the engine learned it from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cluster {
    /// `IDENTIFY_SYSTEM`'s system identifier.
    pub system_id: u64,
    /// The server's WAL segment size.
    pub seg_size: WalSegSize,
}

/// How the stage runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipSettings {
    /// The local spool (the receive engine's archive directory).
    pub spool: PathBuf,
    /// Whether the state file is fsynced.
    pub durability: Durability,
    /// Accept a store that does not enforce create-only writes.
    pub single_writer: bool,
    /// How often the spool is looked at for new files.
    pub poll: Duration,
    /// Upload the bytes added to the open segment at most this long after they became
    /// durable (`ship_partial_interval`); `None` ships complete segments only.
    pub partial_interval: Option<Duration>,
}

/// What the stage is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShipState {
    /// Checking the store and the prefix.
    #[default]
    Starting,
    /// Uploading, or nothing left to upload.
    Shipping,
    /// An upload failed; waiting to try again.
    Retrying,
    /// Stopped after a permanent failure (conflict, another cluster, a refused store).
    Failed,
    /// Stopped on request.
    Stopped,
}

/// The stage's status, published on a `watch` channel.
#[derive(Debug, Clone, Default)]
pub struct ShipStatus {
    /// What the stage is doing.
    pub state: ShipState,
    /// The archive's URL.
    pub url: String,
    /// Whether the store enforces create-only writes (`None` until probed).
    pub create_only: Option<bool>,
    /// The last segment shipped.
    pub shipped_segment: Option<String>,
    /// End of the last segment shipped: everything before it on its timeline is in the bucket.
    pub shipped_lsn: Option<Lsn>,
    /// Timeline of the last segment shipped.
    pub shipped_tli: Option<TimeLineId>,
    /// How far the open segment is in the bucket as chunks: everything before it is there.
    pub partial_shipped_lsn: Option<Lsn>,
    /// Chunks of open segments uploaded.
    pub chunks: u64,
    /// Completed segments in the spool not yet shipped, at the last look.
    pub pending_segments: u64,
    /// When the oldest of them was completed (its file's modification time).
    pub oldest_pending_since: Option<SystemTime>,
    /// Objects uploaded (new objects created).
    pub uploads: u64,
    /// Uploads that found the same content already there.
    pub already_there: u64,
    /// PUT, GET, HEAD, LIST and DELETE requests made.
    pub requests: Requests,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Failed rounds retried.
    pub retries: u64,
    /// Creates whose answer was unclear, settled by reading back.
    pub reconciled: u64,
    /// Keys found holding different WAL.
    pub conflicts: u64,
    /// The last error, and when.
    pub last_error: Option<String>,
    /// When `last_error` happened.
    pub last_error_time: Option<SystemTime>,
}

impl ShipStatus {
    /// How far the bucket holds the WAL: the open segment's chunks when they reach past the
    /// last complete segment shipped.
    pub fn shipped_end(&self) -> Option<Lsn> {
        match (self.shipped_lsn, self.partial_shipped_lsn) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Requests by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    /// PUT.
    pub put: u64,
    /// GET.
    pub get: u64,
    /// HEAD.
    pub head: u64,
    /// LIST.
    pub list: u64,
    /// DELETE.
    pub delete: u64,
}

/// The persisted shipped position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    /// The cluster the position belongs to.
    pub system_identifier: u64,
    /// Highest timeline whose history file is in the bucket (1: none needed yet).
    pub history_tli: u32,
    /// The last segment shipped, plain name.
    pub segment: Option<String>,
    /// The open segment's chunks.
    #[serde(default)]
    pub partial: Option<PartialState>,
}

/// How much of the open segment is in the bucket as chunks. A chunk's key is recorded here
/// before it is uploaded, so the chunks can be removed once the complete segment is in the
/// bucket, whatever happened in between.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialState {
    /// The open segment, plain name.
    pub segment: String,
    /// Bytes of it (from its start) in the bucket.
    pub shipped_to: u64,
    /// The keys of its chunks.
    pub chunks: Vec<String>,
}

/// The durable end of the WAL in the spool (the engine's flush position and its timeline),
/// asked for when a chunk of the open segment is due.
pub type DurableEnd = Box<dyn Fn() -> Option<(TimeLineId, Lsn)> + Send + Sync>;

/// One upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// A timeline history file.
    History(HistoryName),
    /// A completed segment.
    Segment(SegmentName),
}

/// What to upload next, in order: the history files not yet shipped (oldest timeline
/// first), then the completed segments after the last shipped one, in WAL order.
/// `.partial` files stay local (the open segment's bytes go up as chunks, a later stage).
pub fn plan(inventory: &Inventory, shipped: &Shipped, seg_size: WalSegSize) -> Vec<Upload> {
    let last = shipped
        .segment
        .as_deref()
        .and_then(|name| match FileName::parse(name, seg_size) {
            Ok(FileName::Segment(s)) => Some((s.tli().get(), s.segno().0)),
            _ => None,
        });
    let mut histories: Vec<HistoryName> = inventory
        .histories
        .iter()
        .filter(|h| h.tli().get() > shipped.history_tli)
        .copied()
        .collect();
    histories.sort_by_key(|h| h.tli().get());
    histories.dedup_by_key(|h| h.tli().get());
    let mut segments: Vec<SegmentName> = inventory
        .segments
        .iter()
        .filter(|s| !s.is_partial() && !s.is_temporary())
        .filter(|s| last.is_none_or(|l| (s.tli().get(), s.segno().0) > l))
        .copied()
        .collect();
    segments.sort_by_key(|s| (s.tli().get(), s.segno().0));
    segments.dedup_by_key(|s| (s.tli().get(), s.segno().0));
    histories
        .into_iter()
        .map(Upload::History)
        .chain(segments.into_iter().map(Upload::Segment))
        .collect()
}

/// The shipping stage of one spool.
pub struct Shipper {
    durable: Option<DurableEnd>,
    wake: Option<std::sync::Arc<tokio::sync::Notify>>,
    last_chunk: Option<tokio::time::Instant>,
    chunks: u64,
    bucket: Bucket,
    layout: Layout,
    cluster: Cluster,
    settings: ShipSettings,
    fs: StdFs,
    shipped: Shipped,
    status: watch::Sender<ShipStatus>,
    uploads: u64,
    already_there: u64,
    retries: u64,
}

impl Shipper {
    /// A stage for `cluster`'s WAL in `settings.spool`, shipping to `bucket`.
    pub fn new(bucket: Bucket, cluster: Cluster, settings: ShipSettings) -> Self {
        let layout = Layout::new(&bucket.url().prefix, cluster.system_id);
        let status = watch::Sender::new(ShipStatus {
            url: bucket.url().to_string(),
            ..ShipStatus::default()
        });
        Shipper {
            durable: None,
            wake: None,
            last_chunk: None,
            chunks: 0,
            bucket,
            layout,
            cluster,
            settings,
            fs: StdFs::new(),
            shipped: Shipped::default(),
            status,
            uploads: 0,
            already_there: 0,
            retries: 0,
        }
    }

    /// Publishes the status on `status` (a channel the caller made before the stage could
    /// be created) instead of a channel of its own.
    pub fn with_status(mut self, status: watch::Sender<ShipStatus>) -> Self {
        let url = self.bucket.url().to_string();
        status.send_modify(|s| s.url = url);
        self.status = status;
        self
    }

    /// Wakes the stage before its next look at the spool is due (when the engine completed a
    /// segment, so that it goes up at once).
    pub fn with_wake(mut self, wake: std::sync::Arc<tokio::sync::Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// Where the durable WAL in the spool ends, for chunks of the open segment.
    pub fn with_durable_end(mut self, durable: DurableEnd) -> Self {
        self.durable = Some(durable);
        self
    }

    /// The status channel.
    pub fn status(&self) -> watch::Receiver<ShipStatus> {
        self.status.subscribe()
    }

    /// Checks the prefix (no other cluster), the store (create-only probe) and the
    /// archive's identity object, and loads the persisted position.
    ///
    /// # Errors
    /// A permanent [`Error`] when the bucket must not be used; the store's failure.
    pub async fn prepare(&mut self) -> Result<()> {
        // The read-only check first: a prefix that belongs to another cluster is refused
        // before anything is written under it, the probe included.
        self.bucket.check_cluster(&self.layout).await?;
        let enforced = self.bucket.probe(self.settings.single_writer).await?;
        self.status.send_modify(|s| s.create_only = Some(enforced));
        self.check_identity().await?;
        self.shipped = self.load_state()?;
        self.publish(None);
        Ok(())
    }

    /// Ships until `stop` turns true, then ships what is complete once more and returns.
    /// Transient failures are retried (1 s doubling to 30 s, logged once per change).
    ///
    /// # Errors
    /// A permanent failure: a conflict, a damaged local file.
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) -> Result<()> {
        let mut wait = BACKOFF.0;
        let mut failing: Option<String> = None;
        loop {
            let stopping = *stop.borrow();
            match self.pass().await {
                Ok(()) => {
                    if failing.take().is_some() {
                        info!(url = %self.bucket.url(), "shipping again");
                    }
                    wait = BACKOFF.0;
                    self.status.send_modify(|s| s.state = ShipState::Shipping);
                }
                Err(e) if e.is_permanent() => {
                    self.fail(&e);
                    self.status.send_modify(|s| s.state = ShipState::Failed);
                    return Err(e);
                }
                Err(e) => {
                    let text = error_chain(&e);
                    if failing.as_deref() != Some(text.as_str()) {
                        warn!(url = %self.bucket.url(), "shipping failed, retrying: {text}");
                    }
                    self.fail(&e);
                    failing = Some(text);
                    self.retries += 1;
                    self.status.send_modify(|s| s.state = ShipState::Retrying);
                    if stopping {
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                    wait = (wait * 2).min(BACKOFF.1);
                    continue;
                }
            }
            if stopping {
                break;
            }
            let wake = self.wake.clone();
            tokio::select! {
                () = tokio::time::sleep(self.settings.poll) => {}
                _ = stop.changed() => {}
                () = async { match &wake { Some(w) => w.notified().await, None => std::future::pending().await } } => {}
            }
        }
        self.status.send_modify(|s| s.state = ShipState::Stopped);
        Ok(())
    }

    /// One look at the spool, and every upload it calls for.
    async fn pass(&mut self) -> Result<()> {
        let inventory = Inventory::list(&self.fs, &self.settings.spool, self.cluster.seg_size)?;
        let uploads = plan(&inventory, &self.shipped, self.cluster.seg_size);
        self.publish(Some((&inventory, &uploads)));
        // History files one at a time, first: a timeline's history is in the bucket before
        // any of its segments. Then segments, several at once (one upload rarely fills the
        // link), finished in WAL order so the shipped position only ever advances over a
        // contiguous run.
        let mut segments = Vec::new();
        for what in uploads {
            match what {
                Upload::History(_) => {
                    let created = self.start(&inventory, what).await?;
                    self.shipped(what, created).await?;
                    self.publish(None);
                }
                Upload::Segment(_) => segments.push(what),
            }
        }
        let mut queue = segments.into_iter();
        let mut running = futures_util::stream::FuturesOrdered::new();
        loop {
            while running.len() < UPLOADS_AT_ONCE {
                let Some(what) = queue.next() else { break };
                let started = self.start(&inventory, what);
                running.push_back(async move { (what, started.await) });
            }
            let Some((what, result)) = futures_util::StreamExt::next(&mut running).await else {
                break;
            };
            // On a failure the uploads still running are dropped: the position stays before
            // the failed one, and the next round starts there (what finished is found again
            // as already there).
            self.shipped(what, result?).await?;
            self.publish(None);
        }
        if let Some(interval) = self.settings.partial_interval {
            let now = tokio::time::Instant::now();
            if self.last_chunk.is_none_or(|at| now >= at + interval) {
                self.last_chunk = Some(now);
                self.ship_chunk(&inventory).await?;
                self.publish(None);
            }
        }
        Ok(())
    }

    /// Uploads the durable bytes of the open segment that are not in the bucket yet, as one
    /// immutable chunk; nothing when no WAL arrived since the last one.
    async fn ship_chunk(&mut self, inventory: &Inventory) -> Result<()> {
        let Some((tli, end)) = self.durable.as_ref().and_then(|durable| durable()) else {
            return Ok(());
        };
        let seg_size = self.cluster.seg_size;
        let open = SegmentName::containing(tli, end, seg_size);
        let upto = end.0 - open.start_lsn().0;
        let plain = open.plain().to_string();
        let (from, mut chunks) = match &self.shipped.partial {
            Some(p) if p.segment == plain => (p.shipped_to, p.chunks.clone()),
            _ => (0, Vec::new()),
        };
        let already_complete = self.shipped.segment.as_deref().is_some_and(|last| {
            matches!(FileName::parse(last, seg_size), Ok(FileName::Segment(s))
                if (s.tli().get(), s.segno().0) >= (open.tli().get(), open.segno().0))
        });
        if upto <= from || already_complete {
            return Ok(());
        }
        let Some(local) = inventory
            .segments
            .iter()
            .find(|s| s.is_partial() && s.tli() == tli && s.segno() == open.segno())
            .copied()
        else {
            return Ok(());
        };
        let fs = self.fs;
        let dir = self.settings.spool.clone();
        let content = tokio::task::spawn_blocking(move || {
            pgwalrus_archive::reader::read_file(&fs, &dir, &FileName::Segment(local))
        })
        .await
        .map_err(|e| Error::LocalFile {
            path: inventory.path(local),
            error: std::io::Error::other(e),
        })??;
        let upto = upto.min(content.len() as u64);
        if upto <= from {
            return Ok(());
        }
        let body = Bytes::copy_from_slice(
            content
                .get(
                    usize::try_from(from).unwrap_or(usize::MAX)
                        ..usize::try_from(upto).unwrap_or(usize::MAX),
                )
                .unwrap_or_default(),
        );
        let key = self.layout.chunk(open, from, upto);
        // Recorded before the upload: a crash after it still knows the chunk to remove.
        chunks.push(key.to_string());
        self.shipped.partial = Some(PartialState {
            segment: plain.clone(),
            shipped_to: from,
            chunks: chunks.clone(),
        });
        self.save_state()?;
        let start = open.start_lsn();
        let stamp = Stamp::of(&body, None)
            .map_err(|why| Error::Damaged {
                key: key.to_string(),
                why,
            })?
            .with_range(Lsn(start.0 + from), Lsn(start.0 + upto));
        self.bucket.create(&self.layout, &key, body, &stamp).await?;
        self.chunks += 1;
        self.shipped.partial = Some(PartialState {
            segment: plain,
            shipped_to: upto,
            chunks,
        });
        self.save_state()
    }

    /// Removes the chunks of `segment` once it is in the bucket complete.
    async fn drop_chunks(&mut self, segment: SegmentName) -> Result<()> {
        let plain = segment.plain().to_string();
        let Some(partial) = self.shipped.partial.take_if(|p| p.segment == plain) else {
            return Ok(());
        };
        let keys: Vec<object_store::path::Path> = partial
            .chunks
            .iter()
            .map(|k| object_store::path::Path::from(k.as_str()))
            .collect();
        if let Err(e) = self.bucket.delete(&keys).await {
            // Put the record back: the next completion or start removes them.
            self.shipped.partial = Some(partial);
            return Err(e);
        }
        Ok(())
    }

    /// Starts the upload of `what` (the future runs on its own once polled).
    fn start(
        &self,
        inventory: &Inventory,
        what: Upload,
    ) -> impl Future<Output = Result<Created>> + use<> {
        let name = match what {
            Upload::History(h) => FileName::History(h),
            Upload::Segment(s) => FileName::Segment(s),
        };
        upload(
            self.bucket.clone(),
            self.layout.clone(),
            self.fs,
            inventory.path(name),
            what,
            self.cluster.seg_size,
        )
    }

    /// Records a finished upload: counters, the shipped position (persisted), the chunks of a
    /// segment now complete in the bucket.
    async fn shipped(&mut self, upload: Upload, created: Created) -> Result<()> {
        match created {
            Created::New => self.uploads += 1,
            Created::AlreadyThere => self.already_there += 1,
        }
        match upload {
            Upload::History(h) => {
                self.shipped.history_tli = self.shipped.history_tli.max(h.tli().get())
            }
            Upload::Segment(s) => {
                self.shipped.segment = Some(s.plain().to_string());
                // Chunks of a segment that is now in the bucket complete are only cost; a
                // failure to remove them keeps their record for the next try.
                if let Err(e) = self.drop_chunks(s).await {
                    warn!(
                        "could not remove the chunks of {}: {}",
                        s.plain(),
                        error_chain(&e)
                    );
                }
            }
        }
        self.save_state()?;
        Ok(())
    }

    async fn check_identity(&self) -> Result<()> {
        let identity = serde_json::json!({
            "system_identifier": self.cluster.system_id.to_string(),
            "wal_segment_size": self.cluster.seg_size.bytes(),
            "created_by": concat!("pgwalrus ", env!("CARGO_PKG_VERSION")),
        });
        let key = self.layout.identity();
        if let Some((body, _)) = self.bucket.get(&key).await? {
            let theirs: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| Error::Damaged {
                    key: key.to_string(),
                    why: format!("not the JSON pgwalrus writes: {e}"),
                })?;
            if theirs.get("system_identifier") != identity.get("system_identifier")
                || theirs.get("wal_segment_size") != identity.get("wal_segment_size")
            {
                return Err(Error::OtherCluster(format!(
                    "{key} describes another cluster ({theirs}); this server is {identity}"
                )));
            }
            return Ok(());
        }
        let body = Bytes::from(identity.to_string());
        let stamp = Stamp::of(&body, None).map_err(|why| Error::Damaged {
            key: key.to_string(),
            why,
        })?;
        match self.bucket.create(&self.layout, &key, body, &stamp).await {
            Ok(_) => Ok(()),
            // A second archiver wrote it first, with its own time or version: only the
            // cluster's facts matter, and they are compared on the next start.
            Err(Error::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn state_path(&self) -> PathBuf {
        self.settings.spool.join(STATE_FILE)
    }

    fn load_state(&self) -> Result<Shipped> {
        let path = self.state_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Shipped {
                    system_identifier: self.cluster.system_id,
                    history_tli: 1,
                    segment: None,
                    partial: None,
                });
            }
            Err(error) => return Err(Error::LocalFile { path, error }),
        };
        let shipped: Shipped = serde_json::from_str(&text).map_err(|e| Error::LocalFile {
            path: path.clone(),
            error: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        if shipped.system_identifier != self.cluster.system_id {
            return Err(Error::OtherCluster(format!(
                "{} records shipping for system identifier {}; this server's is {}",
                path.display(),
                shipped.system_identifier,
                self.cluster.system_id
            )));
        }
        Ok(shipped)
    }

    fn save_state(&self) -> Result<()> {
        let text = serde_json::to_string(&self.shipped).unwrap_or_default() + "\n";
        durable::replace_file(
            &self.fs,
            &self.state_path(),
            text.as_bytes(),
            self.settings.durability,
        )?;
        Ok(())
    }

    fn fail(&self, e: &Error) {
        let text = error_chain(e);
        self.status.send_modify(|s| {
            s.last_error = Some(text);
            s.last_error_time = Some(crate::clock::wall_clock());
        });
    }

    fn publish(&self, look: Option<(&Inventory, &[Upload])>) {
        let c = self.bucket.counters();
        let seg_size = self.cluster.seg_size;
        let shipped = self.shipped.segment.as_deref().and_then(|name| {
            match FileName::parse(name, seg_size) {
                Ok(FileName::Segment(s)) => Some(s),
                _ => None,
            }
        });
        let pending = look.map(|(inventory, uploads)| {
            let segments: Vec<&SegmentName> = uploads
                .iter()
                .filter_map(|u| match u {
                    Upload::Segment(s) => Some(s),
                    Upload::History(_) => None,
                })
                .collect();
            let oldest = segments.first().and_then(|s| {
                std::fs::metadata(inventory.path(**s))
                    .and_then(|m| m.modified())
                    .ok()
            });
            (segments.len() as u64, oldest)
        });
        self.status.send_modify(|s| {
            s.shipped_segment = shipped.map(|n| n.to_string());
            s.shipped_lsn = shipped.and_then(|n| n.end_lsn());
            s.shipped_tli = shipped.map(|n| n.tli());
            if let Some((count, oldest)) = pending {
                s.pending_segments = count;
                s.oldest_pending_since = oldest;
            }
            s.partial_shipped_lsn =
                self.shipped.partial.as_ref().and_then(|p| {
                    match FileName::parse(&p.segment, seg_size) {
                        Ok(FileName::Segment(open)) => Some(Lsn(open.start_lsn().0 + p.shipped_to)),
                        _ => None,
                    }
                });
            s.chunks = self.chunks;
            s.uploads = self.uploads;
            s.already_there = self.already_there;
            s.retries = self.retries;
            s.requests = Requests {
                put: c.puts.load(Ordering::Relaxed),
                get: c.gets.load(Ordering::Relaxed),
                head: c.heads.load(Ordering::Relaxed),
                list: c.lists.load(Ordering::Relaxed),
                delete: c.deletes.load(Ordering::Relaxed),
            };
            s.bytes_uploaded = c.bytes_up.load(Ordering::Relaxed);
            s.reconciled = c.reconciled.load(Ordering::Relaxed);
            s.conflicts = c.conflicts.load(Ordering::Relaxed);
        });
    }
}

/// One upload: the stored bytes of a spool file, checked (a segment decompresses to exactly
/// one segment, a history file to something), stamped, and created in the bucket. A free
/// function over clones so that several run at once.
async fn upload(
    bucket: Bucket,
    layout: Layout,
    fs: StdFs,
    path: PathBuf,
    upload: Upload,
    seg_size: WalSegSize,
) -> Result<Created> {
    let (name, key) = match upload {
        Upload::History(h) => (FileName::History(h), layout.history(h.tli())),
        Upload::Segment(s) => (FileName::Segment(s), layout.segment(s)),
    };
    let compression = match name {
        FileName::Segment(s) => s.compression(),
        FileName::History(h) => h.compression(),
        FileName::BackupHistory(_) => None,
    };
    let damaged = |why: String| Error::Damaged {
        key: path.display().to_string(),
        why,
    };
    // Reading and hashing (a segment is 16 MiB and more) stay off the runtime's thread.
    let read_path = path.clone();
    let (body, stamp) = tokio::task::spawn_blocking(move || {
        let body = Bytes::from(read_whole(&fs, &read_path)?);
        let stamp = Stamp::of(&body, compression).map_err(|why| Error::Damaged {
            key: read_path.display().to_string(),
            why,
        })?;
        Ok::<_, Error>((body, stamp))
    })
    .await
    .map_err(|e| damaged(e.to_string()))??;
    let stamp = match name {
        FileName::Segment(s) => {
            let want = u64::from(seg_size.bytes());
            if stamp.wal_size != want {
                return Err(damaged(format!(
                    "holds {} bytes of WAL, a segment has {want}",
                    stamp.wal_size
                )));
            }
            let start = s.start_lsn();
            stamp.with_range(start, Lsn(start.0 + want))
        }
        _ if stamp.wal_size == 0 => return Err(damaged("is empty".to_owned())),
        _ => stamp,
    };
    bucket.create(&layout, &key, body, &stamp).await
}

/// The whole of a local file, as stored.
fn read_whole(fs: &StdFs, path: &Path) -> Result<Vec<u8>> {
    let local = |error: std::io::Error| Error::LocalFile {
        path: path.to_path_buf(),
        error,
    };
    let file = fs.open_read(path).map_err(local)?;
    let len = file.size().map_err(local)?;
    let mut buf = vec![0u8; usize::try_from(len).map_err(|e| local(std::io::Error::other(e)))?];
    let n = file.read_full_at(&mut buf, 0).map_err(local)?;
    buf.truncate(n);
    Ok(buf)
}

/// An error with its causes, on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use pgwalrus_archive::fs::SimFs;
    use pgwalrus_wal::SegNo;

    use super::*;

    fn inventory(names: &[&str]) -> Inventory {
        let fs = SimFs::new();
        let dir = Path::new("/spool");
        fs.create_dir(dir);
        for name in names {
            fs.create_new(&dir.join(name)).unwrap();
        }
        Inventory::list(&fs, dir, WalSegSize::DEFAULT).unwrap()
    }

    fn shown(uploads: &[Upload]) -> Vec<String> {
        uploads
            .iter()
            .map(|u| match u {
                Upload::History(h) => h.to_string(),
                Upload::Segment(s) => s.to_string(),
            })
            .collect()
    }

    #[test]
    fn histories_go_first_then_completed_segments_in_wal_order() {
        let inv = inventory(&[
            "000000010000000000000003",
            "000000010000000000000004.partial",
            "000000020000000000000004.zst",
            "000000020000000000000005.partial",
            "00000002.history",
            "000000010000000000000002.gz",
            "000000020000000000000006.tmp",
        ]);
        let shipped = Shipped {
            system_identifier: 1,
            history_tli: 1,
            segment: None,
            partial: None,
        };
        assert_eq!(
            shown(&plan(&inv, &shipped, WalSegSize::DEFAULT)),
            [
                "00000002.history",
                "000000010000000000000002.gz",
                "000000010000000000000003",
                "000000020000000000000004.zst",
            ]
        );
    }

    #[test]
    fn what_was_shipped_is_not_planned_again() {
        let inv = inventory(&[
            "000000010000000000000003",
            "000000020000000000000004",
            "00000002.history",
        ]);
        let shipped = Shipped {
            system_identifier: 1,
            history_tli: 2,
            segment: Some("000000010000000000000003".into()),
            partial: None,
        };
        assert_eq!(
            shown(&plan(&inv, &shipped, WalSegSize::DEFAULT)),
            ["000000020000000000000004"]
        );
    }

    #[test]
    fn the_same_segment_in_two_compressions_is_shipped_once() {
        let inv = inventory(&["000000010000000000000003", "000000010000000000000003.zst"]);
        let shipped = Shipped::default();
        let planned = plan(&inv, &shipped, WalSegSize::DEFAULT);
        assert_eq!(planned.len(), 1);
        let Upload::Segment(s) = planned[0] else {
            panic!("{planned:?}")
        };
        assert_eq!(s.segno(), SegNo(3));
    }
}
