//! `Transaction` record descriptions (`xactdesc.c`): commit, abort and prepare records with
//! their optional parts (`xinfo`), subtransaction assignment and invalidations.

use std::fmt::Write;

use super::standby::invalidations;
use super::{DescError, DescResult, Fields, LsnText, format_timestamptz, relpath};
use crate::record::{ForkNumber, RelFileLocator};
use crate::{PgMajor, Record};

const XLOG_XACT_COMMIT: u8 = 0x00;
const XLOG_XACT_PREPARE: u8 = 0x10;
const XLOG_XACT_ABORT: u8 = 0x20;
const XLOG_XACT_COMMIT_PREPARED: u8 = 0x30;
const XLOG_XACT_ABORT_PREPARED: u8 = 0x40;
const XLOG_XACT_ASSIGNMENT: u8 = 0x50;
const XLOG_XACT_INVALIDATIONS: u8 = 0x60;
const XLOG_XACT_OPMASK: u8 = 0x70;
const XLOG_XACT_HAS_INFO: u8 = 0x80;

const XINFO_HAS_DBINFO: u32 = 1 << 0;
const XINFO_HAS_SUBXACTS: u32 = 1 << 1;
const XINFO_HAS_RELFILELOCATORS: u32 = 1 << 2;
const XINFO_HAS_INVALS: u32 = 1 << 3;
const XINFO_HAS_TWOPHASE: u32 = 1 << 4;
const XINFO_HAS_ORIGIN: u32 = 1 << 5;
const XINFO_HAS_GID: u32 = 1 << 7;
const XINFO_HAS_DROPPED_STATS: u32 = 1 << 8;
const COMPLETION_APPLY_FEEDBACK: u32 = 1 << 29;
const COMPLETION_UPDATE_RELCACHE_FILE: u32 = 1 << 30;
const COMPLETION_FORCE_SYNC_COMMIT: u32 = 1 << 31;

/// Size of a shared invalidation message.
pub(super) const INVAL_MSG_LEN: usize = 16;

/// A dropped-statistics entry: kind, database and object id (64-bit from 18).
#[derive(Debug, Clone, Copy)]
struct DroppedStat {
    kind: i32,
    dboid: u32,
    objid: u64,
}

/// The parts of a commit or abort record (`xl_xact_parsed_commit` / `_abort`).
#[derive(Debug, Default)]
struct Parsed<'a> {
    xinfo: u32,
    db_id: u32,
    ts_id: u32,
    subxacts: Vec<u32>,
    rels: Vec<RelFileLocator>,
    stats: Vec<DroppedStat>,
    nmsgs: usize,
    msgs: &'a [u8],
    twophase_xid: u32,
    origin_lsn: u64,
    origin_timestamp: i64,
}

fn stat_len(major: PgMajor) -> usize {
    if major >= PgMajor::V18 { 16 } else { 12 }
}

fn read_stats(
    major: PgMajor,
    d: Fields<'_>,
    at: usize,
    n: usize,
) -> Result<Vec<DroppedStat>, DescError> {
    let len = stat_len(major);
    d.slice(at, n.checked_mul(len).ok_or(DescError::Short)?)?;
    (0..n)
        .map(|i| {
            let base = at + i * len;
            let objid = if major >= PgMajor::V18 {
                u64::from(d.u32(base + 12)?) << 32 | u64::from(d.u32(base + 8)?)
            } else {
                u64::from(d.u32(base + 8)?)
            };
            Ok(DroppedStat {
                kind: d.i32(base)?,
                dboid: d.u32(base + 4)?,
                objid,
            })
        })
        .collect()
}

fn read_rels(d: Fields<'_>, at: usize, n: usize) -> Result<Vec<RelFileLocator>, DescError> {
    d.slice(at, n.checked_mul(12).ok_or(DescError::Short)?)?;
    (0..n).map(|i| d.locator(at + i * 12)).collect()
}

pub(super) fn read_xids(d: Fields<'_>, at: usize, n: usize) -> Result<Vec<u32>, DescError> {
    d.slice(at, n.checked_mul(4).ok_or(DescError::Short)?)?;
    (0..n).map(|i| d.u32(at + i * 4)).collect()
}

/// `ParseCommitRecord` / `ParseAbortRecord`: the parts follow `xact_time` in a fixed order.
fn parse<'a>(major: PgMajor, info: u8, d: Fields<'a>) -> Result<Parsed<'a>, DescError> {
    let mut p = Parsed::default();
    let mut at = 8;
    if info & XLOG_XACT_HAS_INFO != 0 {
        p.xinfo = d.u32(at)?;
        at += 4;
    }
    if p.xinfo & XINFO_HAS_DBINFO != 0 {
        p.db_id = d.u32(at)?;
        p.ts_id = d.u32(at + 4)?;
        at += 8;
    }
    if p.xinfo & XINFO_HAS_SUBXACTS != 0 {
        let n = d.count(at)?;
        p.subxacts = read_xids(d, at + 4, n)?;
        at += 4 + 4 * n;
    }
    if p.xinfo & XINFO_HAS_RELFILELOCATORS != 0 {
        let n = d.count(at)?;
        p.rels = read_rels(d, at + 4, n)?;
        at += 4 + 12 * n;
    }
    if major >= PgMajor::V15 && p.xinfo & XINFO_HAS_DROPPED_STATS != 0 {
        let n = d.count(at)?;
        p.stats = read_stats(major, d, at + 4, n)?;
        at += 4 + stat_len(major) * n;
    }
    if p.xinfo & XINFO_HAS_INVALS != 0 {
        p.nmsgs = d.count(at)?;
        p.msgs = d.slice(at + 4, p.nmsgs * INVAL_MSG_LEN)?;
        at += 4 + INVAL_MSG_LEN * p.nmsgs;
    }
    if p.xinfo & XINFO_HAS_TWOPHASE != 0 {
        p.twophase_xid = d.u32(at)?;
        at += 4;
        if p.xinfo & XINFO_HAS_GID != 0 {
            at += d.cstr(at)?.len() + 1;
        }
    }
    if p.xinfo & XINFO_HAS_ORIGIN != 0 {
        p.origin_lsn = d.u64(at)?;
        p.origin_timestamp = d.i64(at + 8)?;
    }
    Ok(p)
}

fn relations(major: PgMajor, out: &mut String, label: &str, rels: &[RelFileLocator]) -> DescResult {
    if !rels.is_empty() {
        write!(out, "; {label}:")?;
        for rel in rels {
            write!(out, " {}", relpath(major, *rel, ForkNumber::MAIN))?;
        }
    }
    Ok(())
}

fn subxacts(out: &mut String, xids: &[u32]) -> DescResult {
    if !xids.is_empty() {
        out.push_str("; subxacts:");
        for xid in xids {
            write!(out, " {xid}")?;
        }
    }
    Ok(())
}

fn stats(out: &mut String, label: &str, stats: &[DroppedStat]) -> DescResult {
    if !stats.is_empty() {
        write!(out, "; {label}dropped stats:")?;
        for s in stats {
            write!(out, " {}/{}/{}", s.kind, s.dboid, s.objid)?;
        }
    }
    Ok(())
}

fn origin(out: &mut String, node: u16, lsn: u64, at: i64) -> DescResult {
    write!(
        out,
        "; origin: node {node}, lsn {}, at {}",
        LsnText(lsn),
        format_timestamptz(at)
    )?;
    Ok(())
}

pub(super) fn desc(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    let info = record.info();
    let origin_id = record.origin.unwrap_or(0);
    match info & XLOG_XACT_OPMASK {
        XLOG_XACT_COMMIT | XLOG_XACT_COMMIT_PREPARED => {
            let p = parse(major, info, d)?;
            if p.twophase_xid != 0 {
                write!(out, "{}: ", p.twophase_xid)?;
            }
            out.push_str(&format_timestamptz(d.i64(0)?));
            relations(major, out, "rels", &p.rels)?;
            subxacts(out, &p.subxacts)?;
            if major >= PgMajor::V15 {
                stats(out, "", &p.stats)?;
            }
            invalidations(
                major,
                out,
                p.nmsgs,
                p.msgs,
                p.db_id,
                p.ts_id,
                p.xinfo & COMPLETION_UPDATE_RELCACHE_FILE != 0,
            )?;
            if major >= PgMajor::V15 && p.xinfo & COMPLETION_APPLY_FEEDBACK != 0 {
                out.push_str("; apply_feedback");
            }
            if p.xinfo & COMPLETION_FORCE_SYNC_COMMIT != 0 {
                out.push_str("; sync");
            }
            if p.xinfo & XINFO_HAS_ORIGIN != 0 {
                origin(out, origin_id, p.origin_lsn, p.origin_timestamp)?;
            }
        }
        XLOG_XACT_ABORT | XLOG_XACT_ABORT_PREPARED => {
            let p = parse(major, info, d)?;
            if p.twophase_xid != 0 {
                write!(out, "{}: ", p.twophase_xid)?;
            }
            out.push_str(&format_timestamptz(d.i64(0)?));
            relations(major, out, "rels", &p.rels)?;
            subxacts(out, &p.subxacts)?;
            if major >= PgMajor::V15 {
                if p.xinfo & XINFO_HAS_ORIGIN != 0 {
                    origin(out, origin_id, p.origin_lsn, p.origin_timestamp)?;
                }
                stats(out, "", &p.stats)?;
            }
        }
        XLOG_XACT_PREPARE => prepare(major, d, origin_id, out)?,
        XLOG_XACT_ASSIGNMENT => {
            write!(out, "xtop {}: subxacts:", d.u32(0)?)?;
            let n = d.count(4)?;
            for xid in read_xids(d, 8, n)? {
                write!(out, " {xid}")?;
            }
        }
        XLOG_XACT_INVALIDATIONS => {
            let n = d.count(0)?;
            let msgs = d.slice(4, n * INVAL_MSG_LEN)?;
            invalidations(major, out, n, msgs, 0, 0, false)?;
        }
        _ => {}
    }
    Ok(())
}

fn maxalign(n: usize) -> usize {
    n.saturating_add(7) & !7
}

/// `ParsePrepareRecord` and `xact_desc_prepare`: an `xl_xact_prepare` header (its layout
/// gained two statistics counts in 15) followed by MAXALIGNed arrays.
fn prepare(major: PgMajor, d: Fields<'_>, origin_id: u16, out: &mut String) -> DescResult {
    let v15 = major >= PgMajor::V15;
    let database = d.u32(12)?;
    let prepared_at = d.i64(16)?;
    let nsubxacts = d.count(28)?;
    let ncommitrels = d.count(32)?;
    let nabortrels = d.count(36)?;
    let (ncommitstats, nabortstats, ninvalmsgs, initfileinval, gidlen, origin_lsn, origin_ts, size) =
        if v15 {
            (
                d.count(40)?,
                d.count(44)?,
                d.count(48)?,
                d.bool(52)?,
                d.u16(54)?,
                d.u64(56)?,
                d.i64(64)?,
                72,
            )
        } else {
            (
                0,
                0,
                d.count(40)?,
                d.bool(44)?,
                d.u16(46)?,
                d.u64(48)?,
                d.i64(56)?,
                64,
            )
        };
    let mut at = size;
    let gid_bytes = d.slice(at, usize::from(gidlen))?;
    let gid = Fields(gid_bytes).cstr(0).unwrap_or_default();
    at += maxalign(usize::from(gidlen));
    let subxact_ids = read_xids(d, at, nsubxacts)?;
    at += maxalign(nsubxacts * 4);
    let commit_rels = read_rels(d, at, ncommitrels)?;
    at += maxalign(ncommitrels * 12);
    let abort_rels = read_rels(d, at, nabortrels)?;
    at += maxalign(nabortrels * 12);
    let commit_stats = read_stats(major, d, at, ncommitstats)?;
    at += maxalign(ncommitstats * stat_len(major));
    let abort_stats = read_stats(major, d, at, nabortstats)?;
    at += maxalign(nabortstats * stat_len(major));
    let msgs = d.slice(at, ninvalmsgs * INVAL_MSG_LEN)?;

    write!(out, "gid {gid}: {}", format_timestamptz(prepared_at))?;
    relations(major, out, "rels(commit)", &commit_rels)?;
    relations(major, out, "rels(abort)", &abort_rels)?;
    // 16 and 17 parse the counts but never copy them into the parsed record, so they
    // print no dropped statistics for prepared transactions.
    if matches!(major, PgMajor::V15 | PgMajor::V18) {
        stats(out, "commit ", &commit_stats)?;
        stats(out, "abort ", &abort_stats)?;
    }
    subxacts(out, &subxact_ids)?;
    invalidations(major, out, ninvalmsgs, msgs, database, 0, initfileinval)?;
    if v15 && origin_id != 0 {
        origin(out, origin_id, origin_lsn, origin_ts)?;
    }
    Ok(())
}
