//! `Btree` record descriptions (`nbtdesc.c`). 16 switched to `key: value` wording and
//! lists the offsets deleted or updated by VACUUM and DELETE records; 17 added
//! `isCatalogRel`.

use std::fmt::Write;

use super::{DescResult, Fields, array, offsets};
use crate::{PgMajor, Record};

pub(super) fn desc(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    let v16 = major >= PgMajor::V16;
    let v17 = major >= PgMajor::V17;
    let tf = |b: bool| if b { 'T' } else { 'F' };
    let block0 = record
        .block(0)
        .filter(|b| b.has_data())
        .map(|b| Fields(record.block_data(b)));
    match record.header.rmgr_info() {
        0x00 | 0x10 | 0x20 | 0x50 => {
            let sep = if v16 { ": " } else { " " };
            write!(out, "off{sep}{}", d.u16(0)?)?;
        }
        0x30 | 0x40 => {
            // xl_btree_split: level, firstrightoff, newitemoff, postingoff.
            let (level, first, new, posting) = (d.u32(0)?, d.u16(4)?, d.u16(6)?, d.u16(8)?);
            if v16 {
                write!(
                    out,
                    "level: {level}, firstrightoff: {first}, newitemoff: {new}, postingoff: {posting}"
                )?;
            } else {
                write!(
                    out,
                    "level {level}, firstrightoff {first}, newitemoff {new}, postingoff {posting}"
                )?;
            }
        }
        0x60 => {
            let sep = if v16 { ": " } else { " " };
            write!(out, "nintervals{sep}{}", d.u16(0)?)?;
        }
        0xC0 => {
            // xl_btree_vacuum: ndeleted, nupdated.
            let (ndeleted, nupdated) = (d.u16(0)?, d.u16(2)?);
            if v16 {
                write!(out, "ndeleted: {ndeleted}, nupdated: {nupdated}")?;
                if let Some(b) = block0 {
                    delvacuum(out, b, ndeleted, nupdated)?;
                }
            } else {
                write!(out, "ndeleted {ndeleted}; nupdated {nupdated}")?;
            }
        }
        0x70 => {
            // xl_btree_delete: horizon, ndeleted, nupdated, [isCatalogRel (16+)].
            let (horizon, ndeleted, nupdated) = (d.u32(0)?, d.u16(4)?, d.u16(6)?);
            if v16 {
                write!(
                    out,
                    "snapshotConflictHorizon: {horizon}, ndeleted: {ndeleted}, nupdated: {nupdated}"
                )?;
                if v17 {
                    write!(out, ", isCatalogRel: {}", tf(d.bool(8)?))?;
                }
                if let Some(b) = block0 {
                    delvacuum(out, b, ndeleted, nupdated)?;
                }
            } else {
                write!(
                    out,
                    "latestRemovedXid {horizon}; ndeleted {ndeleted}; nupdated {nupdated}"
                )?;
            }
        }
        0xB0 => {
            // xl_btree_mark_page_halfdead: poffset, leafblk, leftblk, rightblk, topparent.
            let (leaf, left, right, top) = (d.u32(4)?, d.u32(8)?, d.u32(12)?, d.u32(16)?);
            if v16 {
                write!(
                    out,
                    "topparent: {top}, leaf: {leaf}, left: {left}, right: {right}"
                )?;
            } else {
                write!(
                    out,
                    "topparent {top}; leaf {leaf}; left {left}; right {right}"
                )?;
            }
        }
        0x80 | 0x90 => {
            // xl_btree_unlink_page: leftsib, rightsib, level, safexid (64-bit at 16),
            // leafleftsib, leafrightsib, leaftopparent.
            let safexid = d.u64(16)?;
            let (epoch, xid) = (safexid >> 32, safexid & 0xFFFF_FFFF);
            let (left, right, level) = (d.u32(0)?, d.u32(4)?, d.u32(8)?);
            let (leafleft, leafright, top) = (d.u32(24)?, d.u32(28)?, d.u32(32)?);
            if v16 {
                write!(
                    out,
                    "left: {left}, right: {right}, level: {level}, safexid: {epoch}:{xid}, \
                     leafleft: {leafleft}, leafright: {leafright}, leaftopparent: {top}"
                )?;
            } else {
                write!(
                    out,
                    "left {left}; right {right}; level {level}; safexid {epoch}:{xid}; \
                     leafleft {leafleft}; leafright {leafright}; leaftopparent {top}"
                )?;
            }
        }
        0xA0 => {
            // xl_btree_newroot: rootblk, level.
            let sep = if v16 { "level: " } else { "lev " };
            write!(out, "{sep}{}", d.u32(4)?)?;
        }
        0xD0 => {
            // xl_btree_reuse_page: locator, block, horizon (64-bit at 16), [isCatalogRel].
            let rel = d.locator(0)?;
            let horizon = d.u64(16)?;
            let (epoch, xid) = (horizon >> 32, horizon & 0xFFFF_FFFF);
            if v16 {
                write!(out, "rel: {rel}, snapshotConflictHorizon: {epoch}:{xid}")?;
                if v17 {
                    write!(out, ", isCatalogRel: {}", tf(d.bool(24)?))?;
                }
            } else {
                write!(out, "rel {rel}; latestRemovedXid {epoch}:{xid}")?;
            }
        }
        0xE0 => {
            // xl_btree_metadata in block 0's data; last_cleanup_num_delpages at 20.
            let meta = record
                .block(0)
                .map(|b| Fields(record.block_data(b)))
                .unwrap_or(Fields(&[]));
            let sep = if v16 { ": " } else { " " };
            write!(out, "last_cleanup_num_delpages{sep}{}", meta.u32(20)?)?;
        }
        _ => {}
    }
    Ok(())
}

/// `delvacuum_desc` (16 and later): the deleted offsets, then each updated posting-list
/// tuple's offset with the TIDs removed from it.
fn delvacuum(out: &mut String, b: Fields<'_>, ndeleted: u16, nupdated: u16) -> DescResult {
    let ndeleted = usize::from(ndeleted);
    let nupdated = usize::from(nupdated);
    out.push_str(", deleted:");
    let deleted = offsets(b, 0, ndeleted)?;
    array(out, deleted.iter(), |out, off| Ok(write!(out, "{off}")?))?;
    out.push_str(", updated: [");
    let updated = offsets(b, ndeleted * 2, nupdated)?;
    // xl_btree_update entries: ndeletedtids, then that many uint16 posting offsets.
    let mut at = (ndeleted + nupdated) * 2;
    for (i, off) in updated.iter().enumerate() {
        let ntids = usize::from(b.u16(at)?);
        write!(out, "{{ off: {off}, nptids: {ntids}, ptids: [")?;
        let tids = offsets(b, at + 2, ntids)?;
        for (p, tid) in tids.iter().enumerate() {
            if p > 0 {
                out.push_str(", ");
            }
            write!(out, "{tid}")?;
        }
        out.push_str("] }");
        if i + 1 < nupdated {
            out.push_str(", ");
        }
        at += 2 + ntids * 2;
    }
    out.push(']');
    Ok(())
}
