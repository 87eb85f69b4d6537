//! Entry points for fuzzing (`cargo fuzz` targets are one-liners over these): arbitrary bytes
//! in, no panic out.

use crate::{Expectations, Lsn, PgMajor, Record, WalDecoder, WalSegSize, dump};

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
