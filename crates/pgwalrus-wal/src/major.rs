//! [`PgMajor`]: the PostgreSQL major versions whose WAL pgwalrus reads, and what differs
//! between them at the record level (page magic, full-page-image flag bits, which resource
//! manager ids are valid).

use std::fmt;

use crate::page::PAGE_MAGIC_BY_MAJOR;

/// A supported PostgreSQL major version (14 to 18).
///
/// The WAL format changes between majors in small ways: the page magic, the meaning of the
/// full-page-image flag bits (15 added lz4 and zstd and moved the "apply" bit), custom
/// resource managers (15), and the payload layout of many record types. Decoding and
/// description take the major as a parameter; [`PgMajor::from_magic`] recovers it from a
/// page header.
///
/// ```
/// use pgwalrus_wal::PgMajor;
///
/// assert_eq!(PgMajor::from_magic(0xD110), Some(PgMajor::V15));
/// assert_eq!(PgMajor::V15.magic(), 0xD110);
/// assert_eq!(PgMajor::try_from(17).map(PgMajor::number), Ok(17));
/// assert!(PgMajor::V16 > PgMajor::V15);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PgMajor {
    /// PostgreSQL 14.
    V14,
    /// PostgreSQL 15.
    V15,
    /// PostgreSQL 16.
    V16,
    /// PostgreSQL 17.
    V17,
    /// PostgreSQL 18.
    V18,
}

impl PgMajor {
    /// Every supported major, oldest first.
    pub const ALL: [PgMajor; 5] = [
        PgMajor::V14,
        PgMajor::V15,
        PgMajor::V16,
        PgMajor::V17,
        PgMajor::V18,
    ];

    /// The major version number (`14` … `18`).
    pub const fn number(self) -> u32 {
        match self {
            PgMajor::V14 => 14,
            PgMajor::V15 => 15,
            PgMajor::V16 => 16,
            PgMajor::V17 => 17,
            PgMajor::V18 => 18,
        }
    }

    /// The page magic (`XLOG_PAGE_MAGIC`) this major writes.
    #[doc(alias = "XLOG_PAGE_MAGIC")]
    pub fn magic(self) -> u16 {
        PAGE_MAGIC_BY_MAJOR
            .iter()
            .find(|(major, _)| *major == self.number())
            .map_or(0, |(_, magic)| *magic)
    }

    /// The major whose WAL carries `magic`, if it is a supported one.
    pub fn from_magic(magic: u16) -> Option<PgMajor> {
        let number = crate::page::major_for_magic(magic)?;
        PgMajor::try_from(number).ok()
    }

    /// The catalog version of the major's releases (`CATALOG_VERSION_NO`), which names
    /// tablespace subdirectories (`PG_15_202209061`).
    pub(crate) const fn catalog_version(self) -> u32 {
        match self {
            PgMajor::V14 => 202_107_181,
            PgMajor::V15 => 202_209_061,
            PgMajor::V16 => 202_307_071,
            PgMajor::V17 => 202_406_281,
            PgMajor::V18 => 202_506_291,
        }
    }
}

impl fmt::Display for PgMajor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// A number that is not a supported major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported postgresql major version {0}: expected 14 to 18")]
pub struct UnsupportedMajor(pub u32);

impl TryFrom<u32> for PgMajor {
    type Error = UnsupportedMajor;

    fn try_from(number: u32) -> Result<Self, Self::Error> {
        PgMajor::ALL
            .into_iter()
            .find(|m| m.number() == number)
            .ok_or(UnsupportedMajor(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_round_trips_for_every_major() {
        for major in PgMajor::ALL {
            assert_eq!(PgMajor::from_magic(major.magic()), Some(major));
            assert_eq!(PgMajor::try_from(major.number()), Ok(major));
            assert_eq!(major.to_string(), major.number().to_string());
        }
        assert_eq!(PgMajor::from_magic(0xD106), None);
        assert_eq!(PgMajor::try_from(13), Err(UnsupportedMajor(13)));
        assert_eq!(
            UnsupportedMajor(19).to_string(),
            "unsupported postgresql major version 19: expected 14 to 18"
        );
    }
}
