//! Entry points for fuzzing: the `cargo fuzz` targets of `fuzz/` are one-liners over these,
//! and the saved corpora are replayed through them by this crate's tests (the regression
//! run on stable). Arbitrary bytes in, no panic out.

use crate::history::TimelineHistory;
use crate::names::FileName;
use crate::page::PageHeader;
use crate::{Expectations, Lsn, PgMajor, Record, TimeLineId, WalDecoder, WalSegSize, dump};

/// Archive file names found in a directory: a name that parses at any segment size prints
/// back to the same text.
pub fn file_name(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for size in WalSegSize::ALL {
        if let Ok(name) = FileName::parse(text, size) {
            assert_eq!(name.to_string(), text);
        }
    }
}

/// Timeline history files from the server or the archive; the first byte picks the
/// timeline the file is for.
pub fn history_file(data: &[u8]) {
    if let Some((&first, rest)) = data.split_first()
        && let Ok(tli) = TimeLineId::new(u32::from(first).max(1))
    {
        let _ = TimelineHistory::parse(tli, rest);
    }
}

/// WAL page headers read from archive files.
pub fn page_header(data: &[u8]) {
    let _ = PageHeader::parse(data);
}

/// Drives a [`WalDecoder`] over arbitrary bytes and describes every record it yields.
///
/// The first byte picks the expected major (or none, to learn it), the second the chunk
/// size the rest is fed in, the third whether to finish the stream; the rest is WAL
/// starting at segment 0/1000000 of a 1 MiB-segment cluster. Every decoded record is also
/// formatted as `pg_waldump` prints it and re-decoded with [`Record::decode`] for every
/// major. Returns the number of records decoded.
///
/// ```
/// assert_eq!(pgwalrus_wal::fuzz::decode_arbitrary(&[0; 64]), 0);
/// ```
pub fn decode_arbitrary(data: &[u8]) -> usize {
    let (config, wal) = data.split_at(data.len().min(3));
    let byte = |i: usize| config.get(i).copied().unwrap_or(0);
    let mut expect = Expectations::default().with_max_record_len(1 << 20);
    if let Some(&major) = PgMajor::ALL.get(usize::from(byte(0) % 6)) {
        expect = expect.with_major(major);
    }
    let chunk = usize::from(byte(1)).max(1) * 7;
    let finish = byte(2) & 1 == 1;
    let Ok(mut decoder) = WalDecoder::new(Lsn(0x0100_0000), WalSegSize::MIN, expect) else {
        return 0;
    };
    let mut records = 0;
    let mut drain = |decoder: &mut WalDecoder| {
        // Bounded: every record consumes input, errors and need-more stop the loop.
        while let Ok(Some(record)) = decoder.next() {
            records += 1;
            exercise(decoder.major().unwrap_or(PgMajor::V15), &record);
        }
    };
    for piece in wal.chunks(chunk) {
        decoder.feed(piece);
        drain(&mut decoder);
    }
    if finish {
        decoder.finish();
        drain(&mut decoder);
        let _ = decoder.end_of_wal();
    }
    records
}

/// Decodes arbitrary bytes as one complete record for every major and describes what
/// decodes. Returns how many majors accepted the bytes.
///
/// ```
/// assert_eq!(pgwalrus_wal::fuzz::decode_record_arbitrary(&[1, 2, 3]), 0);
/// ```
pub fn decode_record_arbitrary(data: &[u8]) -> usize {
    PgMajor::ALL
        .into_iter()
        .filter(|&major| {
            Record::decode(major, Lsn(0x0100_0028), data.to_vec())
                .map(|record| exercise(major, &record))
                .is_ok()
        })
        .count()
}

fn exercise(major: PgMajor, record: &Record) {
    let _ = dump::format_record(major, record);
    for other in PgMajor::ALL {
        let _ = crate::desc::describe(other, record);
    }
    let mut stats = dump::WalStats::new();
    stats.add(record);
    let _ = stats.render(major, true);
}

/// Runs every saved input of fuzz target `target` (`fuzz/corpus/<target>/` of the
/// workspace) through `run`: the stable-toolchain regression run of the fuzz targets, called
/// from the unit tests of each crate that has targets.
///
/// # Panics
/// When the corpus is missing or empty, or when `run` panics on an input.
#[doc(hidden)]
pub fn replay(target: &str, run: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        run(&data);
        count += 1;
    }
    assert!(count > 0, "{} is empty", dir.display());
}

#[cfg(test)]
mod tests {
    use super::replay;

    #[test]
    fn the_fuzz_corpora_replay_without_a_panic() {
        replay("file_name", super::file_name);
        replay("history_file", super::history_file);
        replay("page_header", super::page_header);
        replay("wal_decoder", |data| {
            super::decode_arbitrary(data);
        });
        replay("wal_record", |data| {
            super::decode_record_arbitrary(data);
        });
    }
}
