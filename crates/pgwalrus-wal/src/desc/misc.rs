//! Descriptions of the small resource managers: Storage, CLOG, Database, Tablespace,
//! MultiXact, RelMap, Sequence, CommitTs, ReplicationOrigin, Generic, LogicalMessage.

use std::fmt::Write;

use super::{DescError, DescResult, Fields, relpath};
use crate::record::ForkNumber;
use crate::{PgMajor, Record};

/// `smgrdesc.c`: relation file creation and truncation.
pub(super) fn smgr(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    match record.header.rmgr_info() {
        0x10 => {
            // xl_smgr_create: rlocator, forkNum.
            let fork = u8::try_from(d.i32(12)?).unwrap_or(u8::MAX);
            out.push_str(&relpath(major, d.locator(0)?, ForkNumber(fork)));
        }
        0x20 => {
            // xl_smgr_truncate: blkno, rlocator, flags.
            write!(
                out,
                "{} to {} blocks flags {}",
                relpath(major, d.locator(4)?, ForkNumber::MAIN),
                d.u32(0)?,
                d.i32(16)?
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// A SLRU page number: `int` until 16, `int64` from 17.
fn pageno(major: PgMajor, d: Fields<'_>, at: usize) -> Result<i64, DescError> {
    if major >= PgMajor::V17 {
        d.i64(at)
    } else {
        d.i32(at).map(i64::from)
    }
}

/// `clogdesc.c`.
pub(super) fn clog(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    match record.header.rmgr_info() {
        0x00 => write!(out, "page {}", pageno(major, d, 0)?)?,
        0x10 => {
            // xl_clog_truncate: pageno, oldestXact, oldestXactDb.
            let xact_at = if major >= PgMajor::V17 { 8 } else { 4 };
            write!(
                out,
                "page {}; oldestXact {}",
                pageno(major, d, 0)?,
                d.u32(xact_at)?
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// `committsdesc.c`.
pub(super) fn commit_ts(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    match record.header.rmgr_info() {
        0x00 => write!(out, "{}", pageno(major, d, 0)?)?,
        0x10 => {
            let xid_at = if major >= PgMajor::V17 { 8 } else { 4 };
            write!(
                out,
                "pageno {}, oldestXid {}",
                pageno(major, d, 0)?,
                d.u32(xid_at)?
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// `dbasedesc.c`: database directory copy/creation and removal.
pub(super) fn dbase(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    let v15 = major >= PgMajor::V15;
    let info = record.header.rmgr_info();
    let drop = if v15 { 0x20 } else { 0x10 };
    if info == 0x00 {
        // xl_dbase_create_(file_copy_)rec: db_id, tablespace_id, src_db_id, src_tablespace_id.
        write!(
            out,
            "copy dir {}/{} to {}/{}",
            d.u32(12)?,
            d.u32(8)?,
            d.u32(4)?,
            d.u32(0)?
        )?;
    } else if v15 && info == 0x10 {
        write!(out, "create dir {}/{}", d.u32(4)?, d.u32(0)?)?;
    } else if info == drop {
        // xl_dbase_drop_rec: db_id, ntablespaces, tablespace_ids.
        let db_id = d.u32(0)?;
        let n = d.count(4)?;
        d.slice(8, n.saturating_mul(4))?;
        out.push_str("dir");
        for i in 0..n {
            write!(out, " {}/{db_id}", d.u32(8 + 4 * i)?)?;
        }
    }
    Ok(())
}

/// `tblspcdesc.c`.
pub(super) fn tblspc(record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    match record.header.rmgr_info() {
        0x00 => write!(out, "{} \"{}\"", d.u32(0)?, d.cstr(4)?)?,
        0x10 => write!(out, "{}", d.u32(0)?)?,
        _ => {}
    }
    Ok(())
}

/// `mxactdesc.c`.
pub(super) fn multixact(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    match record.header.rmgr_info() {
        0x00 | 0x10 => write!(out, "{}", pageno(major, d, 0)?)?,
        0x20 => {
            // xl_multixact_create: mid, moff, nmembers, members[] of (xid, status).
            let n = d.count(8)?;
            write!(out, "{} offset {} nmembers {n}: ", d.u32(0)?, d.u32(4)?)?;
            d.slice(12, n.saturating_mul(8))?;
            for i in 0..n {
                let at = 12 + 8 * i;
                let status = match d.i32(at + 4)? {
                    0 => "(keysh) ",
                    1 => "(sh) ",
                    2 => "(fornokeyupd) ",
                    3 => "(forupd) ",
                    4 => "(nokeyupd) ",
                    5 => "(upd) ",
                    _ => "(unk) ",
                };
                write!(out, "{} {status}", d.u32(at)?)?;
            }
        }
        0x30 => write!(
            out,
            "offsets [{}, {}), members [{}, {})",
            d.u32(4)?,
            d.u32(8)?,
            d.u32(12)?,
            d.u32(16)?
        )?,
        _ => {}
    }
    Ok(())
}

/// `relmapdesc.c`.
pub(super) fn relmap(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    if record.header.rmgr_info() == 0x00 {
        write!(out, "database {} tablespace {} size ", d.u32(0)?, d.u32(4)?)?;
        if major >= PgMajor::V15 {
            write!(out, "{}", d.i32(8)?)?;
        } else {
            write!(out, "{}", d.u32(8)?)?;
        }
    }
    Ok(())
}

/// `seqdesc.c`.
pub(super) fn seq(record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    if record.header.rmgr_info() == 0x00 {
        write!(out, "rel {}", d.locator(0)?)?;
    }
    Ok(())
}

/// `replorigindesc.c`.
pub(super) fn replorigin(record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    match record.header.rmgr_info() {
        0x00 => write!(
            out,
            "set {}; lsn {}; force: {}",
            d.u16(8)?,
            d.lsn(0)?,
            d.u8(10)?
        )?,
        0x10 => write!(out, "drop {}", d.u16(0)?)?,
        _ => {}
    }
    Ok(())
}

/// `genericdesc.c`: the (offset, length) fragments of the generic page delta.
pub(super) fn generic(record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    let end = d.0.len();
    let mut at = 0usize;
    while at < end {
        let offset = d.u16(at)?;
        let length = d.u16(at + 2)?;
        at += 4 + usize::from(length);
        if at < end {
            write!(out, "offset {offset}, length {length}; ")?;
        } else {
            write!(out, "offset {offset}, length {length}")?;
        }
    }
    Ok(())
}

/// `logicalmsgdesc.c`: transactional flag, prefix and the payload in hex.
pub(super) fn logicalmsg(record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    if record.header.rmgr_info() != 0x00 {
        return Ok(());
    }
    // xl_logical_message: dbId, transactional, prefix_size, message_size, message[].
    let prefix_size = usize::try_from(d.u64(8)?).map_err(|_| DescError::Short)?;
    let message_size = d.u64(16)?;
    let prefix = d.cstr(24)?;
    write!(
        out,
        "{}, prefix \"{prefix}\"; payload ({message_size} bytes): ",
        if d.bool(4)? {
            "transactional"
        } else {
            "non-transactional"
        }
    )?;
    let len = usize::try_from(message_size).map_err(|_| DescError::Short)?;
    let payload = d.slice(24usize.saturating_add(prefix_size), len)?;
    for (i, byte) in payload.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write!(out, "{byte:02X}")?;
    }
    Ok(())
}
