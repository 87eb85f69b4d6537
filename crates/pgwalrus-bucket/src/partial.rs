//! The open segment in the bucket, and starting over from the bucket alone.
//!
//! While a segment fills, the shipping stage uploads the bytes added since its last upload
//! as an immutable chunk, `partial/NAME/START-END`. [`assemble`] puts a segment's chunks
//! back together: sorted by start, each checked against its stamp, overlaps required to
//! agree, stopping at the first gap. [`hydrate`] prepares an empty spool from what the
//! bucket holds — the newest segment, as a `.partial` rebuilt from its chunks when there are
//! some, the history files, and the shipped position — so that a receiver on a new machine
//! resumes where the lost one left its WAL in the bucket.

use std::path::Path;

use object_store::path::Path as Key;
use pgwalrus_archive::durable::{self, Durability};
use pgwalrus_archive::fs::StdFs;
use pgwalrus_wal::names::{FileName, SegmentName};
use tracing::warn;

use crate::error::{Error, Result};
use crate::layout::{Layout, parse_chunk};
use crate::meta::sniff;
use crate::ship::{PartialState, STATE_FILE, Shipped};
use crate::store::Bucket;

/// A segment's chunks, put back together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    /// The segment's bytes from its start, as far as the chunks reach without a gap.
    pub bytes: Vec<u8>,
    /// The keys of the chunks used.
    pub keys: Vec<Key>,
}

/// The chunks of segment `name`, assembled; `None` when it has none.
///
/// # Errors
/// [`Error::Damaged`] for a chunk whose bytes disagree with its stamp or with an
/// overlapping chunk; [`Error::Store`].
pub async fn assemble(
    bucket: &Bucket,
    layout: &Layout,
    name: SegmentName,
) -> Result<Option<Assembled>> {
    let (objects, _) = bucket.list(&layout.chunks(name)).await?;
    let mut chunks: Vec<(u64, u64, Key)> = objects
        .into_iter()
        .filter_map(|key| {
            let (start, end) = parse_chunk(key.filename()?)?;
            Some((start, end, key))
        })
        .collect();
    if chunks.is_empty() {
        return Ok(None);
    }
    chunks.sort_by_key(|(start, end, _)| (*start, *end));
    let seg = name.seg_size().as_u64();
    let mut bytes: Vec<u8> = Vec::new();
    let mut keys = Vec::new();
    for (start, end, key) in chunks {
        let have = bytes.len() as u64;
        if start > have {
            warn!(
                key = %key,
                "the chunks of {} have a gap at offset {have}: the open segment is rebuilt up to there",
                name.plain()
            );
            break;
        }
        if end <= have || end > seg {
            continue;
        }
        let damaged = |why: String| Error::Damaged {
            key: key.to_string(),
            why,
        };
        let Some((body, stamp)) = bucket.get(&key).await? else {
            continue;
        };
        if let Some(stamp) = &stamp {
            stamp.check_stored(&body).map_err(damaged)?;
        }
        if body.len() as u64 != end - start {
            return Err(damaged(format!(
                "holds {} bytes, its name says {}",
                body.len(),
                end - start
            )));
        }
        // Offsets fit in memory: they are below the segment size, at most 1 GiB.
        let overlap = usize::try_from(have - start).unwrap_or(usize::MAX);
        let from = usize::try_from(start).unwrap_or(usize::MAX);
        if bytes.get(from..) != body.get(..overlap) {
            return Err(damaged(format!(
                "disagrees with an earlier chunk in the bytes they share (offsets {start} to {have})"
            )));
        }
        bytes.extend_from_slice(body.get(overlap..).unwrap_or_default());
        keys.push(key);
    }
    Ok(Some(Assembled { bytes, keys }))
}

/// What [`hydrate`] put into the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hydrated {
    /// The cluster whose archive it is.
    pub system_id: u64,
    /// The newest segment, as written into the spool (complete, or `.partial`).
    pub newest: FileName,
    /// For a `.partial`: how many bytes of it the chunks held.
    pub partial_bytes: Option<u64>,
}

/// Prepares an empty spool from the bucket: the history files, the newest segment (a
/// `.partial` rebuilt from chunks when the bucket has chunks newer than its newest complete
/// segment) and the shipped position. `Ok(None)` when the bucket holds no archive under its
/// prefix yet.
///
/// # Errors
/// [`Error::OtherCluster`] when the prefix holds several clusters' archives; [`Error::Damaged`];
/// [`Error::Store`]; [`Error::Local`] writing the spool.
pub async fn hydrate(
    bucket: &Bucket,
    spool: &Path,
    durability: Durability,
) -> Result<Option<Hydrated>> {
    let Some(found) = crate::archive::find(bucket, None).await? else {
        return Ok(None);
    };
    let (system_id, layout, seg_size) = (found.layout.system_id(), found.layout, found.seg_size);

    let fs = StdFs::new();
    let local = |e: pgwalrus_archive::Error| Error::Local(e);
    let mut history_tli = 1;
    let (histories, _) = bucket.list(&layout.history_dir()).await?;
    for key in histories {
        let Some(Ok(FileName::History(name))) =
            key.filename().map(|n| FileName::parse(n, seg_size))
        else {
            continue;
        };
        if let Some((body, _)) = bucket.get(&key).await? {
            durable::replace_file(&fs, &spool.join(name.to_string()), &body, durability)
                .map_err(local)?;
            history_tli = history_tli.max(name.tli().get());
        }
    }

    let newest = |names: &[String]| {
        names
            .iter()
            .filter_map(|n| match FileName::parse(n, seg_size) {
                Ok(FileName::Segment(s)) if !s.is_partial() => Some(s),
                _ => None,
            })
            .max_by_key(|s| (s.tli().get(), s.segno().0))
    };
    let (complete_keys, _) = bucket.list(&layout.wal_dir()).await?;
    let complete_names: Vec<String> = complete_keys
        .iter()
        .filter_map(|k| k.filename().map(str::to_owned))
        .collect();
    let newest_complete = newest(&complete_names);
    let (_, partial_dirs) = bucket.list(&layout.partial_dir()).await?;
    let newest_open = newest(&partial_dirs).filter(|open| {
        newest_complete
            .is_none_or(|c| (open.tli().get(), open.segno().0) > (c.tli().get(), c.segno().0))
    });

    let mut shipped = Shipped {
        system_identifier: system_id,
        history_tli,
        segment: newest_complete.map(|s| s.to_string()),
        partial: None,
    };
    let mut result = None;
    if let Some(open) = newest_open
        && let Some(assembled) = assemble(bucket, &layout, open).await?
        && !assembled.bytes.is_empty()
    {
        let name = open.partial();
        let mut content = assembled.bytes;
        let held = content.len() as u64;
        content.resize(usize::try_from(seg_size.as_u64()).unwrap_or(usize::MAX), 0);
        durable::replace_file(&fs, &spool.join(name.to_string()), &content, durability)
            .map_err(local)?;
        shipped.partial = Some(PartialState {
            segment: open.to_string(),
            shipped_to: held,
            chunks: assembled.keys.iter().map(ToString::to_string).collect(),
        });
        result = Some(Hydrated {
            system_id,
            newest: FileName::Segment(name),
            partial_bytes: Some(held),
        });
    }
    if result.is_none()
        && let Some(complete) = newest_complete
    {
        let key = layout.segment(complete);
        let Some((body, stamp)) = bucket.get(&key).await? else {
            return Ok(None);
        };
        let compression = match &stamp {
            Some(stamp) => {
                stamp.check_stored(&body).map_err(|why| Error::Damaged {
                    key: key.to_string(),
                    why,
                })?;
                stamp.compression
            }
            None => sniff(&body),
        };
        let name = complete.with_compression(compression);
        durable::replace_file(&fs, &spool.join(name.to_string()), &body, durability)
            .map_err(local)?;
        result = Some(Hydrated {
            system_id,
            newest: FileName::Segment(name),
            partial_bytes: None,
        });
    }
    if result.is_some() {
        let text = serde_json::to_string(&shipped).unwrap_or_default() + "\n";
        durable::replace_file(&fs, &spool.join(STATE_FILE), text.as_bytes(), durability)
            .map_err(local)?;
    }
    Ok(result)
}
