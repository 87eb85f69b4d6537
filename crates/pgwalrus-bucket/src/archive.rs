//! The archive of one cluster in a bucket, found and read as a whole: which cluster a prefix
//! holds (one LIST of the prefix, then its `archive.json`), every complete segment with its
//! size and time (LISTs of `wal/`, which the store pages), and retention over them with the
//! rules of a local archive (`pgwalrus_archive::retention`: complete segments only, oldest
//! first, no holes, never a history file), removed with batch deletes. None of this is on
//! the hot path: `prune`, `verify` and a receiver that starts from an empty spool use it.

use std::time::SystemTime;

use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path as Key;
use pgwalrus_archive::retention::{self, Candidate, Keep, Plan};
use pgwalrus_wal::WalSegSize;
use pgwalrus_wal::names::{FileName, SegmentName};

use crate::error::{Error, Result};
use crate::layout::{Layout, parse_system_id};
use crate::store::Bucket;

/// The cluster an archive under a prefix belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its keys.
    pub layout: Layout,
    /// Its WAL segment size (from `archive.json`).
    pub seg_size: WalSegSize,
}

/// The archive under `bucket`'s prefix: of cluster `system_id` when given, else of the one
/// cluster the prefix holds. `None` when there is none.
///
/// # Errors
/// [`Error::OtherCluster`] when the prefix holds several and none was named;
/// [`Error::Damaged`] for an unreadable `archive.json`; [`Error::Store`].
pub async fn find(bucket: &Bucket, system_id: Option<u64>) -> Result<Option<Found>> {
    let system_id = match system_id {
        Some(id) => id,
        None => {
            let prefix = Key::from(bucket.url().prefix.as_str());
            let (_, dirs) = bucket.list(&prefix).await?;
            let clusters: Vec<u64> = dirs.iter().filter_map(|d| parse_system_id(d)).collect();
            match clusters.as_slice() {
                [] => return Ok(None),
                [one] => *one,
                several => {
                    return Err(Error::OtherCluster(format!(
                        "{} holds the archives of several clusters ({several:?}); name one with its system identifier",
                        bucket.url()
                    )));
                }
            }
        }
    };
    let layout = Layout::new(&bucket.url().prefix, system_id);
    let identity = layout.identity();
    let Some((body, _)) = bucket.get(&identity).await? else {
        return Ok(None);
    };
    let seg_size = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("wal_segment_size")?.as_u64())
        .and_then(|b| u32::try_from(b).ok())
        .and_then(|b| WalSegSize::new(b).ok())
        .ok_or_else(|| Error::Damaged {
            key: identity.to_string(),
            why: "it does not give the WAL segment size".to_owned(),
        })?;
    Ok(Some(Found { layout, seg_size }))
}

/// A complete segment in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its name.
    pub name: SegmentName,
    /// Its key.
    pub key: Key,
    /// Its size as stored.
    pub size: u64,
    /// When it was written.
    pub modified: SystemTime,
}

/// Every complete segment of the archive, in WAL order, and keys under `wal/` that are not
/// segment names at the archive's size.
///
/// # Errors
/// [`Error::Store`].
pub async fn segments(bucket: &Bucket, found: &Found) -> Result<(Vec<Object>, Vec<Key>)> {
    let prefix = found.layout.wal_dir();
    bucket
        .counters()
        .lists
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let listed: Vec<object_store::ObjectMeta> = bucket
        .store()
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|error| Error::Store {
            op: "LIST",
            key: prefix.to_string(),
            error,
        })?;
    let mut objects = Vec::new();
    let mut strays = Vec::new();
    for meta in listed {
        match meta
            .location
            .filename()
            .map(|n| FileName::parse(n, found.seg_size))
        {
            Some(Ok(FileName::Segment(name))) if !name.is_partial() && !name.is_temporary() => {
                objects.push(Object {
                    name,
                    key: meta.location,
                    size: meta.size,
                    modified: SystemTime::from(meta.last_modified),
                });
            }
            _ => strays.push(meta.location),
        }
    }
    objects.sort_by_key(|o| (o.name.tli().get(), o.name.segno().0));
    Ok((objects, strays))
}

/// What retention would remove from the bucket at `now`.
pub fn plan(objects: &[Object], keep: Keep, now: SystemTime) -> Plan {
    let candidates: Vec<Candidate> = objects
        .iter()
        .map(|o| Candidate {
            name: o.name,
            bytes: o.size,
            modified: o.modified,
        })
        .collect();
    retention::plan(&candidates, keep, now)
}

/// Removes the planned segments with batch deletes (up to 1,000 keys per request where the
/// store has them).
///
/// # Errors
/// [`Error::Store`] for the first key that could not be removed; the ones before it are gone.
pub async fn remove(bucket: &Bucket, found: &Found, plan: &Plan) -> Result<()> {
    let keys: Vec<Key> = plan
        .remove
        .iter()
        .map(|n| found.layout.segment(*n))
        .collect();
    let requests = keys.len().div_ceil(1000) as u64;
    bucket
        .counters()
        .deletes
        .fetch_add(requests, std::sync::atomic::Ordering::Relaxed);
    let stream = futures_util::stream::iter(keys.into_iter().map(Ok)).boxed();
    let mut results = bucket.store().delete_stream(stream);
    while let Some(result) = results.next().await {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => {
                return Err(Error::Store {
                    op: "DELETE",
                    key: found.layout.wal_dir().to_string(),
                    error,
                });
            }
        }
    }
    Ok(())
}
