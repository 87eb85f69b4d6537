//! [`TimeLineId`]: which history of the cluster a piece of WAL belongs to. Timeline 1 is the
//! one `initdb` starts; each promotion or point-in-time recovery starts a new, larger one.

use std::fmt;
use std::str::FromStr;

use crate::error::{ValueError, excerpt};
use crate::hex;

/// A timeline id, always at least 1.
///
/// Text form ([`Display`](fmt::Display) / [`FromStr`]) is decimal, as the server prints it
/// in `IDENTIFY_SYSTEM` and history files. File names carry it as eight upper-case hex
/// digits; [`UpperHex`](fmt::UpperHex) and [`TimeLineId::from_hex8`] handle that form.
///
/// ```
/// use pgwalrus_wal::TimeLineId;
///
/// let tli: TimeLineId = "42".parse()?;
/// assert_eq!(format!("{tli:08X}"), "0000002A");
/// assert_eq!(TimeLineId::from_hex8("0000002A")?, tli);
/// assert!(TimeLineId::new(0).is_err());
/// # Ok::<(), pgwalrus_wal::ValueError>(())
/// ```
#[doc(alias = "TimeLineID")]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TimeLineId(u32);

impl TimeLineId {
    /// Timeline 1, the one every cluster starts on.
    pub const ONE: TimeLineId = TimeLineId(1);

    /// Checks a raw timeline id.
    ///
    /// # Errors
    ///
    /// [`ValueError::TimeLineId`] for 0, which PostgreSQL never assigns.
    pub fn new(value: u32) -> Result<Self, ValueError> {
        if value == 0 {
            Err(ValueError::TimeLineId {
                input: "0".into(),
                reason: "timelines start at 1",
            })
        } else {
            Ok(TimeLineId(value))
        }
    }

    /// The raw id.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The next timeline id (what a promotion of this timeline would choose if no newer
    /// one exists), or `None` at `u32::MAX`.
    pub const fn checked_next(self) -> Option<TimeLineId> {
        match self.0.checked_add(1) {
            Some(v) => Some(TimeLineId(v)),
            None => None,
        }
    }

    /// Parses the eight upper-case hex digits that open every WAL file name
    /// (`0000002A` is timeline 42). Lower case is rejected, as PostgreSQL never writes it.
    ///
    /// # Errors
    ///
    /// [`ValueError::TimeLineId`] naming the input when it is not exactly eight upper-case
    /// hex digits, or is `00000000`.
    pub fn from_hex8(s: &str) -> Result<Self, ValueError> {
        let value = hex::parse_upper8(s.as_bytes()).map_err(|e| ValueError::TimeLineId {
            input: excerpt(s),
            reason: e.reason(),
        })?;
        TimeLineId::new(value).map_err(|_| ValueError::TimeLineId {
            input: excerpt(s),
            reason: "timelines start at 1",
        })
    }
}

impl fmt::Display for TimeLineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::UpperHex for TimeLineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::UpperHex::fmt(&self.0, f)
    }
}

impl FromStr for TimeLineId {
    type Err = ValueError;

    /// Parses a decimal timeline id (digits only, as PostgreSQL prints `%u`).
    ///
    /// # Errors
    ///
    /// [`ValueError::TimeLineId`] naming the input when it is empty, has a non-digit, is
    /// above `u32::MAX` or is 0.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| ValueError::TimeLineId {
            input: excerpt(s),
            reason,
        };
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("expected a decimal number"));
        }
        let value: u32 = s.parse().map_err(|_| bad("larger than 4294967295"))?;
        if value == 0 {
            return Err(bad("timelines start at 1"));
        }
        Ok(TimeLineId(value))
    }
}

impl TryFrom<u32> for TimeLineId {
    type Error = ValueError;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        TimeLineId::new(value)
    }
}

impl From<TimeLineId> for u32 {
    fn from(tli: TimeLineId) -> Self {
        tli.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_is_not_a_timeline() {
        assert!(TimeLineId::new(0).is_err());
        assert!(TimeLineId::try_from(0).is_err());
        assert!("0".parse::<TimeLineId>().is_err());
        assert!(TimeLineId::from_hex8("00000000").is_err());
        assert_eq!(TimeLineId::new(1), Ok(TimeLineId::ONE));
    }

    #[test]
    fn decimal_text_round_trips_and_rejects_junk() {
        assert_eq!("7".parse::<TimeLineId>().unwrap().get(), 7);
        assert_eq!("007".parse::<TimeLineId>().unwrap().get(), 7);
        assert_eq!("4294967295".parse::<TimeLineId>().unwrap().get(), u32::MAX);
        for bad in ["", "-1", "+1", " 1", "1 ", "0x1", "A", "4294967296"] {
            let err = bad.parse::<TimeLineId>().unwrap_err();
            assert!(
                err.to_string().contains(&format!("{bad:?}")),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn hex8_is_the_file_name_form() {
        assert_eq!(
            TimeLineId::from_hex8("DEADBEEF").unwrap().get(),
            0xDEAD_BEEF
        );
        for bad in [
            "deadbeef",
            "0000002a",
            "2A",
            "00000002A",
            "0000002G",
            "",
            "0000000é",
        ] {
            assert!(TimeLineId::from_hex8(bad).is_err(), "{bad:?}");
        }
        let err = TimeLineId::from_hex8("0000002a").unwrap_err();
        assert!(err.to_string().contains("upper-case"), "{err}");
    }

    #[test]
    fn next_is_checked() {
        assert_eq!(TimeLineId::ONE.checked_next().unwrap().get(), 2);
        assert_eq!(TimeLineId::new(u32::MAX).unwrap().checked_next(), None);
    }

    proptest! {
        #[test]
        fn both_text_forms_round_trip(v in 1u32..) {
            let tli = TimeLineId::new(v).unwrap();
            prop_assert_eq!(tli.to_string().parse::<TimeLineId>(), Ok(tli));
            prop_assert_eq!(TimeLineId::from_hex8(&format!("{tli:08X}")), Ok(tli));
        }

        #[test]
        fn parse_never_panics(s in ".{0,12}") {
            let _ = s.parse::<TimeLineId>();
            let _ = TimeLineId::from_hex8(&s);
        }
    }
}
