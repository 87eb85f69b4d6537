//! Streaming verification: every record is decoded and its CRC-32C checked as WAL arrives,
//! on the network side, before the chunk that completes it goes to the writer. A record that
//! fails stops the receiver with its LSN — pgwalrus never archives corrupt WAL silently.
//!
//! A decoder starts at every (re)start of streaming — always a segment boundary, possibly in
//! the middle of a record, whose continuation the decoder skips — and checks page headers
//! against the server's system identifier and, past timeline 1, the timeline's history.

use std::path::Path;

use pgwalrus_archive::{ArchiveFs, reader};
use pgwalrus_wal::history::TimelineHistory;
use pgwalrus_wal::names::{Compression, FileName, HistoryName};
use pgwalrus_wal::{DecodeError, Expectations, Lsn, TimeLineId, WalDecoder, WalSegSize};

/// The decoder of the stream being received, when verification is on.
#[derive(Debug)]
pub(crate) struct StreamVerifier {
    system_id: u64,
    seg_size: WalSegSize,
    decoder: Option<WalDecoder>,
}

impl StreamVerifier {
    /// Verification against the cluster `system_id`.
    pub(crate) fn new(system_id: u64, seg_size: WalSegSize) -> Self {
        Self {
            system_id,
            seg_size,
            decoder: None,
        }
    }

    /// Streaming (re)starts on `tli` at `lsn`; `history` is the history of `tli` (see
    /// [`stream_history`]), without which page headers are checked against the system
    /// identifier only.
    pub(crate) fn start(&mut self, tli: TimeLineId, lsn: Lsn, history: Option<TimelineHistory>) {
        let mut expectations = Expectations::default().with_system_id(self.system_id);
        if tli == TimeLineId::ONE {
            expectations = expectations.with_timeline(tli);
        } else if let Some(history) = history {
            expectations = expectations.with_timeline(tli).with_history(history);
        }
        // A start that is not page aligned cannot happen (streaming starts at segment
        // boundaries); verification is then simply off for this stream.
        self.decoder = WalDecoder::new(lsn, self.seg_size, expectations).ok();
    }

    /// Checks `bytes` (continuing the stream). `Err` names the first record or page that fails.
    ///
    /// # Errors
    /// The decoder's error: a CRC mismatch, a broken `xl_prev` link, an invalid page header…
    pub(crate) fn check(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(());
        };
        // Decoded in place: only a record that continues into the next chunk is copied.
        let mut input = decoder.feed_borrowed(bytes);
        while input.next_checked()?.is_some() {}
        Ok(())
    }
}

/// The history of `tli` for [`StreamVerifier::start`]: `fetched` when the session just got
/// it from the server (the writer may not have written it yet), else the archive's file in
/// `dir`, plain or compressed (`pg_receivewal -Z gzip` writes `00000002.history.gz`). `None`
/// on timeline 1, or when neither parses.
pub(crate) fn stream_history<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    tli: TimeLineId,
    fetched: Option<&[u8]>,
) -> Option<TimelineHistory> {
    if tli == TimeLineId::ONE {
        return None;
    }
    let read;
    let content = match fetched {
        Some(content) => content,
        None => {
            let plain = HistoryName::new(tli);
            read = std::iter::once(None)
                .chain(Compression::ALL.into_iter().map(Some))
                .map(|c| FileName::from(plain.with_compression(c)))
                .find_map(|name| reader::read_file(fs, dir, &name).ok())?;
            &read
        }
    };
    TimelineHistory::parse(tli, content).ok()
}
