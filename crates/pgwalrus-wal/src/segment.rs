//! [`WalSegSize`] (a cluster's WAL segment size, fixed at `initdb`) and [`SegNo`] (the
//! number of a segment counted from the start of the WAL stream), with the conversions
//! between segment numbers and [`Lsn`]s.

use std::fmt;
use std::str::FromStr;

use crate::error::{ValueError, excerpt};
use crate::lsn::Lsn;

/// A WAL segment size: a power of two from 1 MiB to 1 GiB, as `initdb --wal-segsize`
/// accepts and `SHOW wal_segment_size` reports.
///
/// Text form is the one `SHOW wal_segment_size` prints (`16MB`, `1GB`); parsing also takes
/// a plain byte count or a `kB` value.
///
/// ```
/// use pgwalrus_wal::WalSegSize;
///
/// let s: WalSegSize = "64MB".parse()?;
/// assert_eq!(s.bytes(), 64 << 20);
/// assert_eq!(s.segments_per_xlogid(), 64);
/// assert_eq!(WalSegSize::DEFAULT.to_string(), "16MB");
/// assert!(WalSegSize::new(3 << 20).is_err());
/// # Ok::<(), pgwalrus_wal::ValueError>(())
/// ```
#[doc(alias = "wal_segment_size")]
#[doc(alias = "wal_segsz_bytes")]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalSegSize(u32);

impl WalSegSize {
    /// The smallest size PostgreSQL accepts, 1 MiB.
    #[doc(alias = "WalSegMinSize")]
    pub const MIN: WalSegSize = WalSegSize(1 << 20);

    /// The largest size PostgreSQL accepts, 1 GiB.
    #[doc(alias = "WalSegMaxSize")]
    pub const MAX: WalSegSize = WalSegSize(1 << 30);

    /// The size `initdb` chooses by default, 16 MiB.
    #[doc(alias = "DEFAULT_XLOG_SEG_SIZE")]
    pub const DEFAULT: WalSegSize = WalSegSize(16 << 20);

    /// Every valid size, smallest first.
    pub const ALL: [WalSegSize; 11] = [
        WalSegSize(1 << 20),
        WalSegSize(1 << 21),
        WalSegSize(1 << 22),
        WalSegSize(1 << 23),
        WalSegSize(1 << 24),
        WalSegSize(1 << 25),
        WalSegSize(1 << 26),
        WalSegSize(1 << 27),
        WalSegSize(1 << 28),
        WalSegSize(1 << 29),
        WalSegSize(1 << 30),
    ];

    /// Checks a size in bytes.
    ///
    /// # Errors
    ///
    /// [`ValueError::WalSegSize`] unless `bytes` is a power of two from 1 MiB to 1 GiB.
    #[doc(alias = "IsValidWalSegSize")]
    pub const fn new(bytes: u32) -> Result<Self, ValueError> {
        if bytes.is_power_of_two() && bytes >= Self::MIN.0 && bytes <= Self::MAX.0 {
            Ok(WalSegSize(bytes))
        } else {
            Err(ValueError::WalSegSize {
                bytes: bytes as u64,
            })
        }
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u32 {
        self.0
    }

    /// The size in bytes, widened for arithmetic with positions.
    pub const fn as_u64(self) -> u64 {
        self.0 as u64
    }

    /// log2 of the size (20 to 30).
    pub(crate) const fn log2(self) -> u32 {
        self.0.trailing_zeros()
    }

    /// How many segments share one value of the middle eight hex digits of a segment file
    /// name: `0x1_0000_0000 / size` (4096 for 1 MiB, 256 for 16 MiB, 4 for 1 GiB).
    #[doc(alias = "XLogSegmentsPerXLogId")]
    pub const fn segments_per_xlogid(self) -> u64 {
        (1u64 << 32) >> self.log2()
    }

    /// The largest segment number whose first byte is a valid position.
    pub const fn max_segno(self) -> SegNo {
        SegNo(u64::MAX >> self.log2())
    }
}

impl Default for WalSegSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for WalSegSize {
    /// The form `SHOW wal_segment_size` prints: `1MB` … `512MB`, `1GB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1 << 30 {
            write!(f, "{}GB", self.0 >> 30)
        } else {
            write!(f, "{}MB", self.0 >> 20)
        }
    }
}

impl fmt::Debug for WalSegSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WalSegSize({self})")
    }
}

impl FromStr for WalSegSize {
    type Err = ValueError;

    /// Parses a byte count with an optional PostgreSQL memory unit, as `SHOW
    /// wal_segment_size` prints it: `16MB`, `1GB`, `1024kB`, `16777216B`, `16777216`.
    /// Units are case-sensitive, as in PostgreSQL.
    ///
    /// # Errors
    ///
    /// [`ValueError::WalSegSizeText`] when the text is not a number with a known unit;
    /// [`ValueError::WalSegSize`] when the number is not a valid size.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text_error = || ValueError::WalSegSizeText { input: excerpt(s) };
        let digits_end = s.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = s.split_at_checked(digits_end).ok_or_else(text_error)?;
        if number.is_empty() || number.len() > 20 {
            return Err(text_error());
        }
        let number: u64 = number.parse().map_err(|_| text_error())?;
        let shift = match unit {
            "" | "B" => 0,
            "kB" => 10,
            "MB" => 20,
            "GB" => 30,
            "TB" => 40,
            _ => return Err(text_error()),
        };
        let bytes = number
            .checked_mul(1u64 << shift)
            .ok_or(ValueError::WalSegSize { bytes: u64::MAX })?;
        let narrow = u32::try_from(bytes).map_err(|_| ValueError::WalSegSize { bytes })?;
        WalSegSize::new(narrow)
    }
}

impl TryFrom<u32> for WalSegSize {
    type Error = ValueError;

    fn try_from(bytes: u32) -> Result<Self, Self::Error> {
        WalSegSize::new(bytes)
    }
}

impl TryFrom<u64> for WalSegSize {
    type Error = ValueError;

    fn try_from(bytes: u64) -> Result<Self, Self::Error> {
        let narrow = u32::try_from(bytes).map_err(|_| ValueError::WalSegSize { bytes })?;
        WalSegSize::new(narrow)
    }
}

impl From<WalSegSize> for u32 {
    fn from(size: WalSegSize) -> Self {
        size.0
    }
}

impl From<WalSegSize> for u64 {
    fn from(size: WalSegSize) -> Self {
        size.as_u64()
    }
}

/// A segment number: which segment of the WAL stream, counting from 0 at `0/0`.
///
/// It is independent of the timeline; the same number on two timelines names two files.
/// Whether a number names a real segment depends on the segment size (its first byte must be
/// a valid [`Lsn`]); see [`WalSegSize::max_segno`]. Text form is decimal.
#[doc(alias = "XLogSegNo")]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct SegNo(pub u64);

impl SegNo {
    /// The first position of this segment, or `None` if the segment would start past
    /// [`Lsn::MAX`].
    #[doc(alias = "XLogSegNoOffsetToRecPtr")]
    pub const fn start_lsn(self, seg_size: WalSegSize) -> Option<Lsn> {
        if self.0 > seg_size.max_segno().0 {
            None
        } else {
            Some(Lsn(self.0 << seg_size.log2()))
        }
    }

    /// The position just past this segment (the next segment's start), or `None` if that is
    /// past [`Lsn::MAX`] (true of the very last segment too).
    pub const fn end_lsn(self, seg_size: WalSegSize) -> Option<Lsn> {
        match self.0.checked_add(1) {
            Some(next) => SegNo(next).start_lsn(seg_size),
            None => None,
        }
    }

    /// The position `offset` bytes into this segment, or `None` if the offset is not below
    /// the segment size or the position does not exist.
    pub const fn lsn_at(self, offset: u32, seg_size: WalSegSize) -> Option<Lsn> {
        if offset >= seg_size.bytes() {
            return None;
        }
        match self.start_lsn(seg_size) {
            Some(start) => Some(Lsn(start.0 | offset as u64)),
            None => None,
        }
    }

    /// `true` if the segment holds `lsn`.
    pub const fn contains(self, lsn: Lsn, seg_size: WalSegSize) -> bool {
        lsn.segno(seg_size).0 == self.0
    }

    /// The following segment number, or `None` at `u64::MAX`.
    pub const fn checked_next(self) -> Option<SegNo> {
        match self.0.checked_add(1) {
            Some(v) => Some(SegNo(v)),
            None => None,
        }
    }

    /// The preceding segment number, or `None` at 0.
    pub const fn checked_prev(self) -> Option<SegNo> {
        match self.0.checked_sub(1) {
            Some(v) => Some(SegNo(v)),
            None => None,
        }
    }
}

impl fmt::Display for SegNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for SegNo {
    type Err = ValueError;

    /// Parses a decimal segment number (digits only).
    ///
    /// # Errors
    ///
    /// [`ValueError::SegNo`] naming the input when it is empty, has a non-digit or exceeds
    /// `u64::MAX`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::SegNo { input: excerpt(s) });
        }
        s.parse()
            .map(SegNo)
            .map_err(|_| ValueError::SegNo { input: excerpt(s) })
    }
}

impl From<u64> for SegNo {
    fn from(value: u64) -> Self {
        SegNo(value)
    }
}

impl From<SegNo> for u64 {
    fn from(segno: SegNo) -> Self {
        segno.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_exactly_the_powers_of_two_from_1mib_to_1gib() {
        let valid: Vec<u32> = (0..32)
            .map(|k| 1u32 << k)
            .filter(|&b| WalSegSize::new(b).is_ok())
            .collect();
        let expected: Vec<u32> = WalSegSize::ALL.iter().map(|s| s.bytes()).collect();
        assert_eq!(valid, expected);
        for bad in [
            0,
            1,
            (1 << 20) - 1,
            (1 << 20) + 1,
            3 << 20,
            1 << 31,
            u32::MAX,
        ] {
            assert_eq!(
                WalSegSize::new(bad),
                Err(ValueError::WalSegSize {
                    bytes: u64::from(bad)
                })
            );
        }
        assert!(WalSegSize::try_from(1u64 << 32).is_err());
        assert_eq!(WalSegSize::try_from(16u64 << 20), Ok(WalSegSize::DEFAULT));
        assert_eq!(WalSegSize::default(), WalSegSize::DEFAULT);
    }

    #[test]
    fn segments_per_xlogid_matches_postgres() {
        assert_eq!(WalSegSize::MIN.segments_per_xlogid(), 4096);
        assert_eq!(WalSegSize::DEFAULT.segments_per_xlogid(), 256);
        assert_eq!(WalSegSize::MAX.segments_per_xlogid(), 4);
        for s in WalSegSize::ALL {
            assert_eq!(s.segments_per_xlogid() * s.as_u64(), 1 << 32);
        }
    }

    // The text forms are what `SHOW wal_segment_size` printed on PostgreSQL 15 clusters
    // initialised with --wal-segsize=1, 16, 64 and 1024.
    #[test]
    fn text_form_matches_show_wal_segment_size() {
        for (text, bytes) in [
            ("1MB", 1u32 << 20),
            ("16MB", 16 << 20),
            ("64MB", 64 << 20),
            ("1GB", 1 << 30),
        ] {
            let s: WalSegSize = text.parse().unwrap();
            assert_eq!(s.bytes(), bytes);
            assert_eq!(s.to_string(), text);
        }
        assert_eq!("512MB".parse::<WalSegSize>().unwrap().to_string(), "512MB");
        assert_eq!("1024kB".parse::<WalSegSize>(), Ok(WalSegSize::MIN));
        assert_eq!("16777216".parse::<WalSegSize>(), Ok(WalSegSize::DEFAULT));
        assert_eq!("16777216B".parse::<WalSegSize>(), Ok(WalSegSize::DEFAULT));
        assert_eq!("1024MB".parse::<WalSegSize>(), Ok(WalSegSize::MAX));
    }

    #[test]
    fn text_rejects_say_why() {
        for bad in [
            "", "MB", "16mb", "16 MB", "-16MB", "+16MB", "16MiB", "1.5GB", "é",
        ] {
            assert_eq!(
                bad.parse::<WalSegSize>(),
                Err(ValueError::WalSegSizeText { input: bad.into() }),
                "{bad:?}"
            );
        }
        assert_eq!(
            "3MB".parse::<WalSegSize>(),
            Err(ValueError::WalSegSize { bytes: 3 << 20 })
        );
        assert_eq!(
            "2GB".parse::<WalSegSize>(),
            Err(ValueError::WalSegSize { bytes: 2 << 30 })
        );
        assert_eq!(
            "9999999999TB".parse::<WalSegSize>(),
            Err(ValueError::WalSegSize { bytes: u64::MAX })
        );
        assert!(
            "123456789012345678901"
                .parse::<WalSegSize>()
                .unwrap_err()
                .to_string()
                .contains("123456789012345678901")
        );
    }

    #[test]
    fn segno_converts_to_and_from_lsn() {
        let s = WalSegSize::DEFAULT;
        assert_eq!(SegNo(0).start_lsn(s), Some(Lsn(0)));
        assert_eq!(SegNo(0x16B3).start_lsn(s), Some(Lsn(0x16_B300_0000)));
        assert_eq!(SegNo(0x16B3).end_lsn(s), Some(Lsn(0x16_B400_0000)));
        assert_eq!(SegNo(1).lsn_at(0xA000, s), Some(Lsn(0x100_A000)));
        assert_eq!(SegNo(1).lsn_at(16 << 20, s), None);
        assert!(SegNo(1).contains(Lsn(0x1FF_FFFF), s));
        assert!(!SegNo(1).contains(Lsn(0x200_0000), s));
        let last = s.max_segno();
        assert_eq!(last.start_lsn(s), Some(Lsn(u64::MAX - (s.as_u64() - 1))));
        assert_eq!(last.end_lsn(s), None);
        assert_eq!(last.checked_next().unwrap().start_lsn(s), None);
        assert_eq!(SegNo(u64::MAX).checked_next(), None);
        assert_eq!(SegNo(0).checked_prev(), None);
        assert_eq!(SegNo(5).checked_prev(), Some(SegNo(4)));
    }

    #[test]
    fn segno_text_is_decimal() {
        assert_eq!("42".parse::<SegNo>(), Ok(SegNo(42)));
        assert_eq!(SegNo(42).to_string(), "42");
        assert_eq!(u64::MAX.to_string().parse::<SegNo>(), Ok(SegNo(u64::MAX)));
        for bad in ["", "-1", "+1", "0x1", "1 ", "18446744073709551616"] {
            assert_eq!(
                bad.parse::<SegNo>(),
                Err(ValueError::SegNo { input: bad.into() })
            );
        }
    }

    proptest! {
        #[test]
        fn segno_text_round_trips(v in any::<u64>()) {
            prop_assert_eq!(SegNo(v).to_string().parse::<SegNo>(), Ok(SegNo(v)));
        }

        #[test]
        fn seg_size_text_round_trips(k in 0usize..11) {
            let s = WalSegSize::ALL[k];
            prop_assert_eq!(s.to_string().parse::<WalSegSize>(), Ok(s));
            prop_assert_eq!(s.bytes().to_string().parse::<WalSegSize>(), Ok(s));
        }

        #[test]
        fn seg_size_parse_never_panics(s in ".{0,24}") {
            let _ = s.parse::<WalSegSize>();
        }

        #[test]
        fn segno_of_start_lsn_round_trips(k in 0usize..11, raw in any::<u64>()) {
            let s = WalSegSize::ALL[k];
            let segno = SegNo(raw % (s.max_segno().0 + 1));
            let start = segno.start_lsn(s).unwrap();
            prop_assert_eq!(start.segno(s), segno);
            prop_assert_eq!(start.segment_offset(s), 0);
        }
    }
}
