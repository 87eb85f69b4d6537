//! [`Lsn`]: a byte position in the WAL stream, its `X/Y` text form, checked arithmetic and
//! the arithmetic that places a position within a segment.

use std::fmt;
use std::str::FromStr;

use crate::error::{ValueError, excerpt};
use crate::hex;
use crate::segment::{SegNo, WalSegSize};

/// A log sequence number: the byte position of a point in the WAL stream.
///
/// Text form is PostgreSQL's `pg_lsn`: the high and low 32 bits in upper-case hex separated
/// by `/` (`16/B374D848`). Every `u64` is a representable position; `0/0` is
/// [`Lsn::INVALID`]. Arithmetic is checked: nothing here wraps silently.
///
/// ```
/// use pgwalrus_wal::{Lsn, WalSegSize};
///
/// let lsn: Lsn = "16/b374d848".parse()?;
/// assert_eq!(lsn.to_string(), "16/B374D848");
/// assert_eq!(format!("{lsn:#}"), "16/B374D848");
/// assert_eq!(format!("{:#}", Lsn(0xA000)), "0/0000A000");
/// assert_eq!(lsn.segment_offset(WalSegSize::DEFAULT), 0x74D848);
/// # Ok::<(), pgwalrus_wal::ValueError>(())
/// ```
#[doc(alias = "XLogRecPtr")]
#[doc(alias = "pg_lsn")]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `0/0`, which PostgreSQL uses to mean "no position".
    #[doc(alias = "InvalidXLogRecPtr")]
    pub const INVALID: Lsn = Lsn(0);

    /// The largest position, `FFFFFFFF/FFFFFFFF`.
    pub const MAX: Lsn = Lsn(u64::MAX);

    /// Wraps a raw position.
    pub const fn new(value: u64) -> Self {
        Lsn(value)
    }

    /// Builds a position from its high and low 32-bit halves (the two sides of `X/Y`).
    pub const fn from_parts(high: u32, low: u32) -> Self {
        Lsn(((high as u64) << 32) | low as u64)
    }

    /// The raw 64-bit position.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The high 32 bits (the `X` of `X/Y`).
    pub const fn high(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The low 32 bits (the `Y` of `X/Y`).
    pub const fn low(self) -> u32 {
        self.0 as u32
    }

    /// `false` only for [`Lsn::INVALID`] (`0/0`).
    #[doc(alias = "XLogRecPtrIsInvalid")]
    #[doc(alias = "XLogRecPtrIsValid")]
    pub const fn is_valid(self) -> bool {
        self.0 != 0
    }

    /// `self + bytes`, or `None` past [`Lsn::MAX`].
    pub const fn checked_add(self, bytes: u64) -> Option<Lsn> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(Lsn(v)),
            None => None,
        }
    }

    /// `self - bytes`, or `None` below `0/0`.
    pub const fn checked_sub(self, bytes: u64) -> Option<Lsn> {
        match self.0.checked_sub(bytes) {
            Some(v) => Some(Lsn(v)),
            None => None,
        }
    }

    /// How many bytes `self` lies past `earlier`, or `None` if `earlier` is after `self`.
    #[doc(alias = "pg_wal_lsn_diff")]
    pub const fn checked_distance(self, earlier: Lsn) -> Option<u64> {
        self.0.checked_sub(earlier.0)
    }

    /// The number of bytes between two positions, in either order.
    pub const fn abs_diff(self, other: Lsn) -> u64 {
        self.0.abs_diff(other.0)
    }

    /// Where this position falls inside its segment, in bytes from the segment start.
    #[doc(alias = "XLogSegmentOffset")]
    pub const fn segment_offset(self, seg_size: WalSegSize) -> u32 {
        // The mask is below 1 GiB, so the result always fits in 32 bits.
        (self.0 & (seg_size.as_u64() - 1)) as u32
    }

    /// The first position of the segment holding this position.
    pub const fn segment_start(self, seg_size: WalSegSize) -> Lsn {
        Lsn(self.0 & !(seg_size.as_u64() - 1))
    }

    /// `true` when this position is the first byte of a segment.
    pub const fn is_segment_start(self, seg_size: WalSegSize) -> bool {
        self.segment_offset(seg_size) == 0
    }

    /// The number of the segment holding the byte at this position.
    #[doc(alias = "XLByteToSeg")]
    pub const fn segno(self, seg_size: WalSegSize) -> SegNo {
        SegNo(self.0 >> seg_size.log2())
    }

    /// Treating this position as an exclusive end, the segment that holds the byte just
    /// before it: at a segment boundary this is the previous segment. `None` for `0/0`
    /// (PostgreSQL wraps around to the last segment there; we refuse instead).
    ///
    /// This is what `pg_walfile_name()` uses: the file holding WAL *up to* a position.
    #[doc(alias = "XLByteToPrevSeg")]
    pub const fn end_segno(self, seg_size: WalSegSize) -> Option<SegNo> {
        match self.0.checked_sub(1) {
            Some(last) => Some(SegNo(last >> seg_size.log2())),
            None => None,
        }
    }
}

impl fmt::Display for Lsn {
    /// `X/Y` with both halves in upper-case hex and no padding, as PostgreSQL up to 18
    /// prints it. The alternate form (`{:#}`) zero-pads the low half to eight digits
    /// (`%X/%08X`), as PostgreSQL after 18 prints it. Both forms parse back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{:X}/{:08X}", self.high(), self.low())
        } else {
            write!(f, "{:X}/{:X}", self.high(), self.low())
        }
    }
}

impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lsn({self})")
    }
}

impl FromStr for Lsn {
    type Err = ValueError;

    /// Parses `X/Y` as `pg_lsn` does: 1 to 8 hex digits on each side, either case,
    /// zero-padding allowed; no sign, no `0x`, no whitespace.
    ///
    /// # Errors
    ///
    /// [`ValueError::Lsn`] naming the input when either half is empty, longer than eight
    /// digits (so wider than 32 bits), or not hex, or the `/` is missing.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ValueError::Lsn { input: excerpt(s) };
        let (high, low) = s.split_once('/').ok_or_else(invalid)?;
        let high = hex::parse_half(high.as_bytes()).ok_or_else(invalid)?;
        let low = hex::parse_half(low.as_bytes()).ok_or_else(invalid)?;
        Ok(Lsn::from_parts(high, low))
    }
}

impl From<u64> for Lsn {
    fn from(value: u64) -> Self {
        Lsn(value)
    }
}

impl From<Lsn> for u64 {
    fn from(lsn: Lsn) -> Self {
        lsn.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lsn(s: &str) -> Lsn {
        s.parse().unwrap()
    }

    #[test]
    fn formats_upper_case_without_padding() {
        assert_eq!(Lsn(0).to_string(), "0/0");
        assert_eq!(Lsn(0xA000).to_string(), "0/A000");
        assert_eq!(Lsn(0x16_B374_D848).to_string(), "16/B374D848");
        assert_eq!(Lsn::MAX.to_string(), "FFFFFFFF/FFFFFFFF");
        assert_eq!(format!("{:?}", Lsn(0x1_0000_0000)), "Lsn(1/0)");
    }

    #[test]
    fn alternate_form_pads_the_low_half() {
        assert_eq!(format!("{:#}", Lsn(0)), "0/00000000");
        assert_eq!(format!("{:#}", Lsn(0x16_0000_A000)), "16/0000A000");
    }

    // Accepted and rejected forms checked against PostgreSQL 15's `'…'::pg_lsn` input.
    #[test]
    fn parses_what_pg_lsn_accepts() {
        assert_eq!(lsn("0/0000A000"), Lsn(0xA000));
        assert_eq!(lsn("a/b"), Lsn::from_parts(0xA, 0xB));
        assert_eq!(lsn("16/B374D848"), Lsn(0x16_B374_D848));
        assert_eq!(lsn("00000016/b374d848"), Lsn(0x16_B374_D848));
        assert_eq!(lsn("FFFFFFFF/FFFFFFFF"), Lsn::MAX);
    }

    #[test]
    fn rejects_what_pg_lsn_rejects() {
        for bad in [
            "",
            "/",
            "/1",
            "1/",
            "1",
            "1//0",
            "000000001/0",
            "0/000000001",
            "100000000/0",
            "0x1/0",
            "+1/0",
            "1/-0",
            " 1/0",
            "1/0 ",
            "G/0",
            "1/0/0",
            "é/0",
            "0/é",
        ] {
            let err = bad.parse::<Lsn>().unwrap_err();
            assert_eq!(err, ValueError::Lsn { input: bad.into() }, "{bad:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")));
        }
    }

    #[test]
    fn checked_arithmetic_never_wraps() {
        assert_eq!(Lsn(10).checked_add(5), Some(Lsn(15)));
        assert_eq!(Lsn::MAX.checked_add(1), None);
        assert_eq!(Lsn(10).checked_sub(10), Some(Lsn::INVALID));
        assert_eq!(Lsn(10).checked_sub(11), None);
        assert_eq!(Lsn(10).checked_distance(Lsn(4)), Some(6));
        assert_eq!(Lsn(4).checked_distance(Lsn(10)), None);
        assert_eq!(Lsn(4).abs_diff(Lsn(10)), 6);
        assert_eq!(Lsn::MAX.abs_diff(Lsn::INVALID), u64::MAX);
    }

    #[test]
    fn validity_is_only_about_zero() {
        assert!(!Lsn::INVALID.is_valid());
        assert!(Lsn(1).is_valid());
        assert_eq!(Lsn::default(), Lsn::INVALID);
    }

    #[test]
    fn places_positions_within_segments() {
        let s = WalSegSize::DEFAULT;
        let x = lsn("16/B374D848");
        assert_eq!(x.segno(s), SegNo(0x16B3));
        assert_eq!(x.segment_offset(s), 0x74_D848);
        assert_eq!(x.segment_start(s), lsn("16/B3000000"));
        assert!(!x.is_segment_start(s));
        assert!(lsn("16/B3000000").is_segment_start(s));
        assert_eq!(lsn("0/1000000").end_segno(s), Some(SegNo(0)));
        assert_eq!(lsn("0/1000001").end_segno(s), Some(SegNo(1)));
        assert_eq!(Lsn::INVALID.end_segno(s), None);
        assert_eq!(Lsn::MAX.segno(s), SegNo(u64::MAX >> 24));
        assert_eq!(Lsn::MAX.segment_offset(s), (1 << 24) - 1);
    }

    proptest! {
        #[test]
        fn text_round_trips(v in any::<u64>()) {
            let l = Lsn(v);
            prop_assert_eq!(l.to_string().parse::<Lsn>().unwrap(), l);
            prop_assert_eq!(format!("{l:#}").parse::<Lsn>().unwrap(), l);
            prop_assert_eq!(l.to_string().to_lowercase().parse::<Lsn>().unwrap(), l);
        }

        #[test]
        fn parse_never_panics(s in ".{0,24}") {
            let _ = s.parse::<Lsn>();
        }

        #[test]
        fn parse_agrees_with_a_reference_grammar(s in "[0-9a-fA-FxX+/ -]{0,20}") {
            let expected = s.split_once('/').and_then(|(h, l)| {
                let ok = |p: &str| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_hexdigit());
                (ok(h) && ok(l)).then(|| {
                    Lsn::from_parts(u32::from_str_radix(h, 16).unwrap(), u32::from_str_radix(l, 16).unwrap())
                })
            });
            prop_assert_eq!(s.parse::<Lsn>().ok(), expected);
        }

        #[test]
        fn segment_arithmetic_is_consistent(v in any::<u64>(), k in 0u32..=10) {
            let s = WalSegSize::new(1 << (20 + k)).unwrap();
            let l = Lsn(v);
            let start = l.segment_start(s);
            prop_assert_eq!(start.checked_add(u64::from(l.segment_offset(s))), Some(l));
            prop_assert_eq!(l.segno(s).start_lsn(s), Some(start));
            prop_assert_eq!(start.segno(s), l.segno(s));
        }
    }
}
