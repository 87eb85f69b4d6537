//! `XLOG` record descriptions (`xlogdesc.c`): checkpoints, NEXTOID, restore points,
//! parameter changes, end of recovery, overwritten contrecords.

use std::fmt::Write;

use super::{DescResult, Fields, format_timestamptz};
use crate::rmgr::{
    XLOG_BACKUP_END, XLOG_CHECKPOINT_ONLINE, XLOG_CHECKPOINT_REDO, XLOG_CHECKPOINT_SHUTDOWN,
    XLOG_END_OF_RECOVERY, XLOG_FPW_CHANGE, XLOG_NEXTOID, XLOG_OVERWRITE_CONTRECORD,
    XLOG_PARAMETER_CHANGE, XLOG_RESTORE_POINT,
};
use crate::{PgMajor, Record};

/// `wal_level` names; the first entry for a value wins, as in the server's table.
fn wal_level(level: i32) -> &'static str {
    match level {
        0 => "minimal",
        1 => "replica",
        2 => "logical",
        _ => "?",
    }
}

pub(super) fn desc(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    let v17 = major >= PgMajor::V17;
    match record.header.rmgr_info() {
        info @ (XLOG_CHECKPOINT_SHUTDOWN | XLOG_CHECKPOINT_ONLINE) => {
            // CheckPoint: redo, tlis, fullPageWrites, [wal_level (17+)], then from offset 24
            // the same fields in every major.
            write!(
                out,
                "redo {}; tli {}; prev tli {}; fpw {}; ",
                d.lsn(0)?,
                d.u32(8)?,
                d.u32(12)?,
                if d.bool(16)? { "true" } else { "false" }
            )?;
            if v17 {
                write!(out, "wal_level {}; ", wal_level(d.i32(20)?))?;
            }
            let next_xid = d.u64(24)?;
            write!(
                out,
                "xid {}:{}; oid {}; multi {}; offset {}; oldest xid {} in DB {}; oldest multi {} in DB {}; \
                 oldest/newest commit timestamp xid: {}/{}; oldest running xid {}; {}",
                next_xid >> 32,
                next_xid & 0xFFFF_FFFF,
                d.u32(32)?,
                d.u32(36)?,
                d.u32(40)?,
                d.u32(44)?,
                d.u32(48)?,
                d.u32(52)?,
                d.u32(56)?,
                d.u32(72)?,
                d.u32(76)?,
                d.u32(80)?,
                if info == XLOG_CHECKPOINT_SHUTDOWN {
                    "shutdown"
                } else {
                    "online"
                }
            )?;
        }
        XLOG_NEXTOID => write!(out, "{}", d.u32(0)?)?,
        XLOG_RESTORE_POINT => {
            // xl_restore_point: rp_time, then rp_name[MAXFNAMELEN].
            let name = d.slice(8, 64.min(d.0.len().saturating_sub(8)))?;
            out.push_str(&Fields(name).cstr(0)?);
        }
        XLOG_BACKUP_END => write!(out, "{}", d.lsn(0)?)?,
        XLOG_PARAMETER_CHANGE => write!(
            out,
            "max_connections={} max_worker_processes={} max_wal_senders={} \
             max_prepared_xacts={} max_locks_per_xact={} wal_level={} wal_log_hints={} \
             track_commit_timestamp={}",
            d.i32(0)?,
            d.i32(4)?,
            d.i32(8)?,
            d.i32(12)?,
            d.i32(16)?,
            wal_level(d.i32(20)?),
            on_off(d.bool(24)?),
            on_off(d.bool(25)?)
        )?,
        XLOG_FPW_CHANGE => out.push_str(if d.bool(0)? { "true" } else { "false" }),
        XLOG_END_OF_RECOVERY => {
            write!(
                out,
                "tli {}; prev tli {}; time {}",
                d.u32(8)?,
                d.u32(12)?,
                format_timestamptz(d.i64(0)?)
            )?;
            if v17 {
                write!(out, "; wal_level {}", wal_level(d.i32(16)?))?;
            }
        }
        XLOG_OVERWRITE_CONTRECORD => write!(
            out,
            "lsn {}; time {}",
            d.lsn(0)?,
            format_timestamptz(d.i64(8)?)
        )?,
        XLOG_CHECKPOINT_REDO if v17 => write!(out, "wal_level {}", wal_level(d.i32(0)?))?,
        // NOOP, SWITCH, FPI, FPI_FOR_HINT: nothing to add.
        _ => {}
    }
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}
