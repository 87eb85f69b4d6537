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
    crc32c_append(0, data)
}

/// Continues a finished CRC-32C over more bytes: `append(crc32c(a), b) == crc32c(a ++ b)`.
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    if data.len() <= SHORT_MAX
        && let Some(crc) = sse42::append(crc, &[data])
    {
        return crc;
    }
    crc32c::crc32c_append(crc, data)
}

/// The CRC PostgreSQL stores in `xl_crc` for a whole record (`xl_tot_len` bytes, header
/// included): the payload after the header, then the header's first 20 bytes. Returns
/// `None` when `record` is shorter than a record header.
pub fn record_crc(record: &[u8]) -> Option<u32> {
    let header = record.get(..XL_CRC_OFFSET)?;
    let payload = record.get(RECORD_HEADER_LEN..)?;
    if payload.len() <= SHORT_MAX
        && let Some(crc) = sse42::append(0, &[payload, header])
    {
        return Some(crc);
    }
    Some(crc32c_append(crc32c::crc32c(payload), header))
}

/// Inputs up to this long go through [`sse42`] (one dependent chain of `crc32`
/// instructions, nothing to set up); longer ones through the `crc32c` crate, whose three
/// interleaved chains win once there is enough to split.
const SHORT_MAX: usize = 512;

/// CRC-32C with SSE 4.2's `crc32` instruction, for short inputs.
///
/// Most WAL records are short (82 bytes on average in a `pgbench` archive), and for them
/// the `crc32c` crate's per-call work (checks, splitting the input for three interleaved
/// chains) costs more than the bytes: measured, 11.6 ns for a 64-byte record through the
/// crate, a third of all instructions `verify` executed. Here a record's two parts take
/// one call of a few instructions per 8 bytes. This needs the crate's one `unsafe` line:
/// calling a `#[target_feature]` function once the CPU is known to have the feature
/// (see `docs/benchmarks.md`).
mod sse42 {
    /// CRC-32C of the concatenation of `parts`, continuing `crc`; `None` without SSE 4.2
    /// (or off x86-64).
    #[inline]
    pub(super) fn append(crc: u32, parts: &[&[u8]]) -> Option<u32> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the only requirement of calling a `#[target_feature(enable =
            // "sse4.2")]` function is that the CPU supports SSE 4.2, checked just above.
            #[allow(unsafe_code)]
            let crc = unsafe { x86_64::append(crc, parts) };
            return Some(crc);
        }
        let _ = (crc, parts);
        None
    }

    #[cfg(target_arch = "x86_64")]
    mod x86_64 {
        use std::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64};

        #[target_feature(enable = "sse4.2")]
        pub(super) fn append(crc: u32, parts: &[&[u8]]) -> u32 {
            let mut c = !crc;
            for part in parts {
                c = part_crc(c, part);
            }
            !c
        }

        /// The running (not inverted) CRC `c` over `data`.
        #[target_feature(enable = "sse4.2")]
        fn part_crc(c: u32, mut data: &[u8]) -> u32 {
            let mut c = u64::from(c);
            while let Some((word, rest)) = data.split_first_chunk::<8>() {
                c = _mm_crc32_u64(c, u64::from_le_bytes(*word));
                data = rest;
            }
            // `_mm_crc32_u64` leaves the CRC in the low 32 bits; at most 7 bytes are left.
            let mut c = c as u32;
            if let Some((word, rest)) = data.split_first_chunk::<4>() {
                c = _mm_crc32_u32(c, u32::from_le_bytes(*word));
                data = rest;
            }
            if let Some((word, rest)) = data.split_first_chunk::<2>() {
                c = _mm_crc32_u16(c, u16::from_le_bytes(*word));
                data = rest;
            }
            if let Some(&byte) = data.first() {
                c = _mm_crc32_u8(c, byte);
            }
            c
        }
    }
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
    fn agrees_with_the_crc32c_crate_at_every_length_and_alignment() {
        let bytes: Vec<u8> = (0..2000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in 0..8 {
            for len in (0..600).chain([1000, 1500, 1990]) {
                let data = &bytes[start..start + len];
                assert_eq!(
                    crc32c(data),
                    crc32c::crc32c(data),
                    "start {start} length {len}"
                );
                assert_eq!(
                    crc32c_append(0x1234_5678, data),
                    crc32c::crc32c_append(0x1234_5678, data)
                );
                if len >= RECORD_HEADER_LEN {
                    let expected = crc32c::crc32c_append(crc32c::crc32c(&data[24..]), &data[..20]);
                    assert_eq!(
                        record_crc(data),
                        Some(expected),
                        "start {start} length {len}"
                    );
                }
            }
        }
    }
}
