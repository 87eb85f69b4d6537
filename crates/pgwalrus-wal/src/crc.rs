//! CRC-32C as PostgreSQL computes it for WAL records (`pg_crc32c`: Castagnoli polynomial,
//! initial value and final XOR `0xFFFFFFFF`), using the CPU's CRC instructions where present.
//!
//! A record's `xl_crc` covers the bytes after the 24-byte record header first, then the
//! header up to (not including) the CRC field itself.

use crate::record::{RECORD_HEADER_LEN, XL_CRC_OFFSET};

/// CRC-32C of `data` (the `INIT_CRC32C` / `COMP_CRC32C` / `FIN_CRC32C` sequence).
///
/// ```
/// assert_eq!(pgwalrus_wal::crc::crc32c(b"123456789"), 0xE306_9283);
/// ```
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continues a finished CRC-32C over more bytes: `append(crc32c(a), b) == crc32c(a ++ b)`.
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// The CRC PostgreSQL stores in `xl_crc` for a whole record (`xl_tot_len` bytes, header
/// included): the payload after the header, then the header's first 20 bytes. Returns
/// `None` when `record` is shorter than a record header.
pub fn record_crc(record: &[u8]) -> Option<u32> {
    record_crc_joined(record, &mut [0; JOIN_LEN])
}

/// Records with at most this many bytes after the header have their CRC taken in one call.
const JOIN_MAX: usize = 256;

/// The size of the buffer [`record_crc_joined`] joins a short record's parts in.
pub(crate) const JOIN_LEN: usize = JOIN_MAX + XL_CRC_OFFSET;

/// [`record_crc`], joining the two parts of a short record in `joined` (any contents) so
/// that it takes one CRC call instead of two: most records are short, and a call costs
/// more than its bytes.
pub(crate) fn record_crc_joined(record: &[u8], joined: &mut [u8; JOIN_LEN]) -> Option<u32> {
    let header = record.get(..XL_CRC_OFFSET)?;
    let payload = record.get(RECORD_HEADER_LEN..)?;
    let n = payload.len() + XL_CRC_OFFSET;
    if let Some((first, rest)) = joined
        .get_mut(..n)
        .and_then(|j| j.split_at_mut_checked(payload.len()))
    {
        first.copy_from_slice(payload);
        rest.copy_from_slice(header);
        return Some(crc32c(joined.get(..n).unwrap_or_default()));
    }
    Some(crc32c_append(crc32c(payload), header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // The CRC-32C check value, and vectors from RFC 3720 (iSCSI) appendix B.4.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        let descending: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c(&descending), 0x113F_DB5C);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn append_equals_concatenation() {
        let (a, b) = (b"hello, ".as_slice(), b"write-ahead log".as_slice());
        let whole: Vec<u8> = [a, b].concat();
        assert_eq!(crc32c_append(crc32c(a), b), crc32c(&whole));
    }

    /// An `XLOG/SWITCH` record (24 bytes, header only) as a PostgreSQL 15 server wrote it:
    /// `xl_tot_len` 24, xid 0, `xl_prev` 0/018FE1F0, info 0x40, rmid 0, `xl_crc` 0x5F2B3BF5
    /// (captured with `xxd` from a 15.18 cluster's `pg_wal`).
    const PG15_SWITCH: [u8; 24] = [
        0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0xE1, 0x8F, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x40, 0x00, 0x00, 0x00, 0xF5, 0x3B, 0x2B, 0x5F,
    ];

    #[test]
    fn real_record_crc_matches_its_xl_crc() {
        let stored = u32::from_le_bytes([
            PG15_SWITCH[20],
            PG15_SWITCH[21],
            PG15_SWITCH[22],
            PG15_SWITCH[23],
        ]);
        assert_eq!(record_crc(&PG15_SWITCH), Some(stored));
        assert_eq!(record_crc(&PG15_SWITCH[..10]), None);
    }

    #[test]
    fn joined_and_split_computations_agree_at_every_length() {
        for len in [24, 25, 31, 32, 100, 279, 280, 281, 300, 5000] {
            let record: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            let two_calls = crc32c_append(crc32c(&record[24..]), &record[..20]);
            assert_eq!(record_crc(&record), Some(two_calls), "length {len}");
        }
    }
}
