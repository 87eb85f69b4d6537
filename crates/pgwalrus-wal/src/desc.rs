//! Record descriptions: the text `pg_waldump` prints after a record's type (the resource
//! managers' `rm_desc` routines), reproduced per major from the record's main and block data.
//!
//! Every built-in resource manager is described; custom resource managers (15 and later)
//! get `pg_waldump`'s stand-in `rmid: N` (see [`is_described`]).
//!
//! Timestamps print as `pg_waldump` prints them with `TZ=UTC`
//! (`2024-05-01 12:00:00.123456 UTC`); `pg_waldump` itself uses the local time zone.
//!
//! Record data shorter than its type needs (impossible in WAL a server wrote) yields a
//! description ending in `<data too short>` instead of what the server would read past
//! the end of its buffer.

mod btree;
mod heap;
mod index;
mod misc;
mod standby;
mod time;
mod xact;
mod xlog;

use std::fmt;

use crate::record::{ForkNumber, RelFileLocator};
use crate::rmgr::RmgrId;
use crate::{PgMajor, Record};

pub use time::format_timestamptz;

/// Why a description could not be completed.
#[derive(Debug)]
pub(crate) enum DescError {
    /// The data ends before a field the record type has.
    Short,
    /// Writing to the output failed (never for a `String`).
    Fmt,
}

impl From<fmt::Error> for DescError {
    fn from(_: fmt::Error) -> Self {
        DescError::Fmt
    }
}

pub(crate) type DescResult = Result<(), DescError>;

/// Little-endian fields of a C struct laid out in record data, read at byte offsets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a>(pub(crate) &'a [u8]);

impl<'a> Fields<'a> {
    pub(crate) fn slice(self, at: usize, len: usize) -> Result<&'a [u8], DescError> {
        at.checked_add(len)
            .and_then(|end| self.0.get(at..end))
            .ok_or(DescError::Short)
    }

    fn array<const N: usize>(self, at: usize) -> Result<[u8; N], DescError> {
        self.slice(at, N)?.try_into().map_err(|_| DescError::Short)
    }

    pub(crate) fn u8(self, at: usize) -> Result<u8, DescError> {
        self.0.get(at).copied().ok_or(DescError::Short)
    }

    pub(crate) fn i8(self, at: usize) -> Result<i8, DescError> {
        Ok(i8::from_le_bytes(self.array(at)?))
    }

    pub(crate) fn bool(self, at: usize) -> Result<bool, DescError> {
        Ok(self.u8(at)? != 0)
    }

    pub(crate) fn u16(self, at: usize) -> Result<u16, DescError> {
        Ok(u16::from_le_bytes(self.array(at)?))
    }

    pub(crate) fn u32(self, at: usize) -> Result<u32, DescError> {
        Ok(u32::from_le_bytes(self.array(at)?))
    }

    pub(crate) fn i32(self, at: usize) -> Result<i32, DescError> {
        Ok(i32::from_le_bytes(self.array(at)?))
    }

    pub(crate) fn u64(self, at: usize) -> Result<u64, DescError> {
        Ok(u64::from_le_bytes(self.array(at)?))
    }

    pub(crate) fn i64(self, at: usize) -> Result<i64, DescError> {
        Ok(i64::from_le_bytes(self.array(at)?))
    }

    pub(crate) fn lsn(self, at: usize) -> Result<LsnText, DescError> {
        Ok(LsnText(self.u64(at)?))
    }

    pub(crate) fn locator(self, at: usize) -> Result<RelFileLocator, DescError> {
        RelFileLocator::read(self.0, at).ok_or(DescError::Short)
    }

    /// A count field that sizes a following array: negative counts are invalid data.
    pub(crate) fn count(self, at: usize) -> Result<usize, DescError> {
        usize::try_from(self.i32(at)?).map_err(|_| DescError::Short)
    }

    /// A NUL-terminated string at `at`, cut at the end of the data if unterminated.
    pub(crate) fn cstr(self, at: usize) -> Result<String, DescError> {
        let rest = self.0.get(at..).ok_or(DescError::Short)?;
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        Ok(String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned())
    }
}

/// An LSN printed as the descriptions print them: `%X/%X`, without zero padding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LsnText(pub(crate) u64);

impl fmt::Display for LsnText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Whether pgwalrus describes records of `rmid` as `pg_waldump` does: every built-in
/// resource manager. (Custom ones get `pg_waldump`'s stand-in, `rmid: N`.)
pub fn is_described(rmid: RmgrId) -> bool {
    rmid.is_builtin()
}

/// The record's description as `pg_waldump` of `major` prints it after `desc: TYPE `.
///
/// # Examples
/// ```
/// # fn demo(record: &pgwalrus_wal::Record) {
/// use pgwalrus_wal::{PgMajor, desc};
/// let text = desc::describe(PgMajor::V15, record);
/// # }
/// ```
pub fn describe(major: PgMajor, record: &Record) -> String {
    let mut out = String::new();
    write_description(major, record, &mut out);
    out
}

/// Appends the record's description (see [`describe`]) to `out`.
pub fn write_description(major: PgMajor, record: &Record, out: &mut String) {
    let start = out.len();
    let result = match RmgrId(record.rmid()) {
        RmgrId::XLOG => xlog::desc(major, record, out),
        RmgrId::XACT => xact::desc(major, record, out),
        RmgrId::SMGR => misc::smgr(major, record, out),
        RmgrId::CLOG => misc::clog(major, record, out),
        RmgrId::DBASE => misc::dbase(major, record, out),
        RmgrId::TBLSPC => misc::tblspc(record, out),
        RmgrId::MULTIXACT => misc::multixact(major, record, out),
        RmgrId::RELMAP => misc::relmap(major, record, out),
        RmgrId::STANDBY => standby::desc(major, record, out),
        RmgrId::HEAP2 => heap::heap2(major, record, out),
        RmgrId::HEAP => heap::heap(major, record, out),
        RmgrId::BTREE => btree::desc(major, record, out),
        RmgrId::HASH => index::hash(major, record, out),
        RmgrId::GIN => index::gin(record, out),
        RmgrId::GIST => index::gist(major, record, out),
        RmgrId::SPGIST => index::spgist(major, record, out),
        RmgrId::BRIN => index::brin(record, out),
        RmgrId::SEQ => misc::seq(record, out),
        RmgrId::COMMIT_TS => misc::commit_ts(major, record, out),
        RmgrId::REPLORIGIN => misc::replorigin(record, out),
        RmgrId::GENERIC => misc::generic(record, out),
        RmgrId::LOGICALMSG => misc::logicalmsg(record, out),
        id if id.is_custom() => {
            // pg_waldump's stand-in for a custom resource manager it cannot load.
            out.push_str(&format!("rmid: {}", id.0));
            Ok(())
        }
        _ => Ok(()),
    };
    if result.is_err() {
        if out.len() > start {
            out.push(' ');
        }
        out.push_str("<data too short>");
    }
}

/// `relpathperm`: a relation fork's path relative to the data directory.
pub(crate) fn relpath(major: PgMajor, rel: RelFileLocator, fork: ForkNumber) -> String {
    const GLOBALTABLESPACE_OID: u32 = 1664;
    const DEFAULTTABLESPACE_OID: u32 = 1663;
    let suffix = match fork {
        ForkNumber::MAIN => String::new(),
        other => format!("_{}", other.name().unwrap_or("?")),
    };
    match rel.spc_oid {
        GLOBALTABLESPACE_OID => format!("global/{}{suffix}", rel.rel_number),
        DEFAULTTABLESPACE_OID => format!("base/{}/{}{suffix}", rel.db_oid, rel.rel_number),
        spc => format!(
            "pg_tblspc/{spc}/PG_{}_{}/{}/{}{suffix}",
            major.number(),
            major.catalog_version(),
            rel.db_oid,
            rel.rel_number
        ),
    }
}

/// `array_desc` (16 and later): ` [a, b, c]`, or ` []`.
pub(crate) fn array<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut String, T) -> DescResult,
) -> DescResult {
    out.push_str(" [");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        each(out, item)?;
    }
    out.push(']');
    Ok(())
}

/// `count` little-endian `u16` offsets starting at `at` (OffsetNumber arrays).
pub(crate) fn offsets(data: Fields<'_>, at: usize, count: usize) -> Result<Vec<u16>, DescError> {
    let bytes = data.slice(at, count.checked_mul(2).ok_or(DescError::Short)?)?;
    Ok(bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect())
}

#[cfg(test)]
mod tests;
