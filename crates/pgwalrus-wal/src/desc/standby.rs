//! `Standby` record descriptions (`standbydesc.c`): access-exclusive locks, running
//! transactions, invalidations; and the invalidation-message list that commit records and
//! (from 18) in-place heap updates share with them.

use std::fmt::Write;

use super::xact::{INVAL_MSG_LEN, read_xids};
use super::{DescResult, Fields};
use crate::{PgMajor, Record};

const XLOG_STANDBY_LOCK: u8 = 0x00;
const XLOG_RUNNING_XACTS: u8 = 0x10;
const XLOG_INVALIDATIONS: u8 = 0x20;

pub(super) fn desc(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    match record.header.rmgr_info() {
        XLOG_STANDBY_LOCK => {
            let n = d.count(0)?;
            d.slice(4, n.saturating_mul(12))?;
            for i in 0..n {
                let at = 4 + i * 12;
                write!(
                    out,
                    "xid {} db {} rel {} ",
                    d.u32(at)?,
                    d.u32(at + 4)?,
                    d.u32(at + 8)?
                )?;
            }
        }
        XLOG_RUNNING_XACTS => {
            // xl_running_xacts: xcnt, subxcnt, subxid_overflow, nextXid, oldestRunningXid,
            // latestCompletedXid, xids[xcnt + subxcnt].
            let xcnt = d.count(0)?;
            let subxcnt = d.count(4)?;
            write!(
                out,
                "nextXid {} latestCompletedXid {} oldestRunningXid {}",
                d.u32(12)?,
                d.u32(20)?,
                d.u32(16)?
            )?;
            if xcnt > 0 {
                write!(out, "; {xcnt} xacts:")?;
                for xid in read_xids(d, 24, xcnt)? {
                    write!(out, " {xid}")?;
                }
            }
            let overflow = d.bool(8)?;
            if major >= PgMajor::V16 {
                if overflow {
                    out.push_str("; subxid overflowed");
                }
                if subxcnt > 0 {
                    write!(out, "; {subxcnt} subxacts:")?;
                    for xid in read_xids(d, 24 + 4 * xcnt, subxcnt)? {
                        write!(out, " {xid}")?;
                    }
                }
            } else if overflow {
                out.push_str("; subxid ovf");
            }
        }
        XLOG_INVALIDATIONS => {
            // xl_invalidations: dbId, tsId, relcacheInitFileInval, nmsgs, msgs.
            let n = d.count(12)?;
            let msgs = d.slice(16, n.saturating_mul(INVAL_MSG_LEN))?;
            invalidations(major, out, n, msgs, d.u32(0)?, d.u32(4)?, d.bool(8)?)?;
        }
        _ => {}
    }
    Ok(())
}

/// `standby_desc_invalidations`: nothing when there are no messages, else an optional
/// relcache-init-file note and `; inval msgs:` with one entry per message.
pub(super) fn invalidations(
    major: PgMajor,
    out: &mut String,
    nmsgs: usize,
    msgs: &[u8],
    db_id: u32,
    ts_id: u32,
    relcache_init_file: bool,
) -> DescResult {
    if nmsgs == 0 {
        return Ok(());
    }
    if relcache_init_file {
        write!(out, "; relcache init file inval dbid {db_id} tsid {ts_id}")?;
    }
    out.push_str("; inval msgs:");
    let m = Fields(msgs);
    for i in 0..nmsgs {
        let at = i * INVAL_MSG_LEN;
        match m.i8(at)? {
            id if id >= 0 => write!(out, " catcache {id}")?,
            -1 => write!(out, " catalog {}", m.u32(at + 8)?)?,
            -2 => write!(out, " relcache {}", m.u32(at + 8)?)?,
            -3 => out.push_str(" smgr"),
            -4 => write!(out, " relmap db {}", m.u32(at + 4)?)?,
            -5 => write!(out, " snapshot {}", m.u32(at + 8)?)?,
            -6 if major >= PgMajor::V18 => write!(out, " relsync {}", m.u32(at + 8)?)?,
            id => write!(out, " unrecognized id {id}")?,
        }
    }
    Ok(())
}
