//! The keys of an archive in a bucket. Every key is computed from a WAL file name and the
//! cluster's system identifier, so a restore is one GET and nothing on the hot path LISTs:
//!
//! ```text
//! PREFIX/SYSID/archive.json                      the archive's identity (create-only)
//! PREFIX/SYSID/wal/000000010000000000000007      a complete segment, as stored (maybe compressed)
//! PREFIX/SYSID/history/00000002.history          a timeline history file
//! PREFIX/SYSID/partial/0000…08/00000000-0001A000  a chunk of the open segment: bytes [start, end)
//! PREFIX/SYSID/conflicts/wal/0000…07.<nanos>      our bytes, kept aside when the key held others
//! PREFIX/.pgwalrus-probe/<pid>-<nanos>           the create-only probe, removed after
//! ```
//!
//! The compression is not part of a key: it is in the object's metadata and its magic
//! bytes, so a change of compression never makes a segment look missing and restore never
//! tries one name per codec. `SYSID` is decimal, as `pg_controldata` prints it.

use object_store::path::Path;
use pgwalrus_wal::TimeLineId;
use pgwalrus_wal::names::{HistoryName, SegmentName};

/// The keys of one cluster's archive under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
    system_id: u64,
}

impl Layout {
    /// The layout of cluster `system_id` under `prefix` (no leading or trailing `/`).
    pub fn new(prefix: &str, system_id: u64) -> Self {
        Layout {
            prefix: prefix.trim_matches('/').to_owned(),
            system_id,
        }
    }

    /// The cluster's system identifier.
    pub fn system_id(&self) -> u64 {
        self.system_id
    }

    fn key(&self, rest: &str) -> Path {
        Path::from(join(&self.prefix, &format!("{}/{rest}", self.system_id)))
    }

    /// The root of this cluster's archive.
    pub fn root(&self) -> Path {
        Path::from(join(&self.prefix, &self.system_id.to_string()))
    }

    /// The archive's identity object.
    pub fn identity(&self) -> Path {
        self.key("archive.json")
    }

    /// A segment (complete or `.partial`), whatever its local compression.
    pub fn segment(&self, name: SegmentName) -> Path {
        self.key(&format!(
            "wal/{}",
            name.with_compression(None).not_temporary()
        ))
    }

    /// A chunk of the open segment `name`: its bytes from offset `start` to `end`.
    pub fn chunk(&self, name: SegmentName, start: u64, end: u64) -> Path {
        self.key(&format!("partial/{}/{start:08X}-{end:08X}", name.plain()))
    }

    /// Where the chunks of segment `name` are.
    pub fn chunks(&self, name: SegmentName) -> Path {
        self.key(&format!("partial/{}", name.plain()))
    }

    /// Where the complete segments are.
    pub fn wal_dir(&self) -> Path {
        self.key("wal")
    }

    /// Where the chunks of all open segments are.
    pub fn partial_dir(&self) -> Path {
        self.key("partial")
    }

    /// Where the history files are.
    pub fn history_dir(&self) -> Path {
        self.key("history")
    }

    /// A timeline's history file.
    pub fn history(&self, tli: TimeLineId) -> Path {
        self.key(&format!("history/{}", HistoryName::new(tli)))
    }

    /// Where our copy of `key` is kept aside when `key` held different bytes.
    pub fn conflict(&self, key: &Path, nanos: u128) -> Path {
        let root = self.root();
        let relative = key
            .prefix_match(&root)
            .map(|parts| {
                parts
                    .map(|p| p.as_ref().to_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_else(|| key.to_string());
        self.key(&format!("conflicts/{relative}.{nanos}"))
    }

    /// The prefix under which clusters' archives live (for the other-cluster check).
    pub fn prefix(&self) -> Option<Path> {
        (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()))
    }
}

/// The probe key for the create-only check under `prefix`.
pub fn probe_key(prefix: &str, unique: &str) -> Path {
    Path::from(join(
        prefix.trim_matches('/'),
        &format!(".pgwalrus-probe/{unique}"),
    ))
}

/// The byte range of a chunk, from the last part of its key (`0000A000-0001F000`).
pub fn parse_chunk(part: &str) -> Option<(u64, u64)> {
    let (start, end) = part.split_once('-')?;
    let hex = |t: &str| {
        (t.len() == 8)
            .then(|| u64::from_str_radix(t, 16).ok())
            .flatten()
    };
    let (start, end) = (hex(start)?, hex(end)?);
    (start < end).then_some((start, end))
}

/// Whether a top-level name under the prefix is a cluster's archive (a system identifier).
pub fn parse_system_id(part: &str) -> Option<u64> {
    (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        .then(|| part.parse().ok())
        .flatten()
}

fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else {
        format!("{prefix}/{rest}")
    }
}

#[cfg(test)]
mod tests {
    use pgwalrus_wal::names::Compression;
    use pgwalrus_wal::{SegNo, WalSegSize};

    use super::*;

    fn seg(tli: u32, segno: u64) -> SegmentName {
        SegmentName::new(
            TimeLineId::new(tli).unwrap(),
            SegNo(segno),
            WalSegSize::DEFAULT,
        )
        .unwrap()
    }

    #[test]
    fn keys_are_computed_from_names_and_ignore_local_compression() {
        let layout = Layout::new("fleet/db1/", 7_310_000_000_000_000_001);
        let s = seg(1, 7);
        assert_eq!(
            layout.segment(s).as_ref(),
            "fleet/db1/7310000000000000001/wal/000000010000000000000007"
        );
        assert_eq!(
            layout.segment(s.with_compression(Some(Compression::Zstd))),
            layout.segment(s)
        );
        assert_eq!(
            layout.segment(s.partial()).as_ref(),
            "fleet/db1/7310000000000000001/wal/000000010000000000000007.partial"
        );
        assert_eq!(
            layout.history(TimeLineId::new(2).unwrap()).as_ref(),
            "fleet/db1/7310000000000000001/history/00000002.history"
        );
        assert_eq!(
            layout.identity().as_ref(),
            "fleet/db1/7310000000000000001/archive.json"
        );
    }

    #[test]
    fn an_empty_prefix_is_the_bucket_root() {
        let layout = Layout::new("", 42);
        assert_eq!(
            layout.segment(seg(1, 1)).as_ref(),
            "42/wal/000000010000000000000001"
        );
        assert_eq!(layout.prefix(), None);
        assert_eq!(probe_key("", "p").as_ref(), ".pgwalrus-probe/p");
    }

    #[test]
    fn conflicts_keep_the_relative_key_and_a_time() {
        let layout = Layout::new("p", 42);
        let key = layout.segment(seg(1, 7));
        assert_eq!(
            layout.conflict(&key, 99).as_ref(),
            "p/42/conflicts/wal/000000010000000000000007.99"
        );
    }

    #[test]
    fn chunk_keys_name_their_byte_range_and_parse_back() {
        let layout = Layout::new("p", 42);
        let key = layout.chunk(seg(1, 7).partial(), 0xA000, 0x1F000);
        assert_eq!(
            key.as_ref(),
            "p/42/partial/000000010000000000000007/0000A000-0001F000"
        );
        assert_eq!(
            parse_chunk(key.filename().unwrap()),
            Some((0xA000, 0x1F000))
        );
        assert_eq!(parse_chunk("0001F000-0000A000"), None);
        assert_eq!(parse_chunk("A000-1F000"), None);
    }

    #[test]
    fn only_decimal_names_are_system_identifiers() {
        assert_eq!(
            parse_system_id("7310000000000000001"),
            Some(7_310_000_000_000_000_001)
        );
        assert_eq!(parse_system_id(".pgwalrus-probe"), None);
        assert_eq!(parse_system_id("99999999999999999999999"), None);
        assert_eq!(parse_system_id(""), None);
    }
}
