//! `Heap` and `Heap2` record descriptions (`heapdesc.c`). The wording changed in 16
//! (`key: value` pairs, arrays of offsets from the block data) and the prune/vacuum/freeze
//! records were merged into three `PRUNE_*` records in 17.

use std::fmt::Write;

use super::standby::invalidations;
use super::xact::INVAL_MSG_LEN;
use super::{DescError, DescResult, Fields, array, offsets};
use crate::{PgMajor, Record};

const XLOG_HEAP_OPMASK: u8 = 0x70;
const XLOG_HEAP_INIT_PAGE: u8 = 0x80;

const XLHL_XMAX_IS_MULTI: u8 = 0x01;
const XLHL_XMAX_LOCK_ONLY: u8 = 0x02;
const XLHL_XMAX_EXCL_LOCK: u8 = 0x04;
const XLHL_XMAX_KEYSHR_LOCK: u8 = 0x08;
const XLHL_KEYS_UPDATED: u8 = 0x10;

const INFOBITS: [(u8, &str); 5] = [
    (XLHL_XMAX_IS_MULTI, "IS_MULTI"),
    (XLHL_XMAX_LOCK_ONLY, "LOCK_ONLY"),
    (XLHL_XMAX_EXCL_LOCK, "EXCL_LOCK"),
    (XLHL_XMAX_KEYSHR_LOCK, "KEYSHR_LOCK"),
    (XLHL_KEYS_UPDATED, "KEYS_UPDATED"),
];

/// Before 16: each set bit's name followed by a space.
fn out_infobits(out: &mut String, bits: u8) {
    for (bit, name) in INFOBITS {
        if bits & bit != 0 {
            out.push_str(name);
            out.push(' ');
        }
    }
}

/// From 16: `key: [A, B]`.
fn infobits_desc(out: &mut String, bits: u8, key: &str) {
    out.push_str(key);
    out.push_str(": [");
    let names: Vec<&str> = INFOBITS
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    out.push_str(&names.join(", "));
    out.push(']');
}

fn offset_list(out: &mut String, list: &[u16]) -> DescResult {
    array(out, list.iter(), |out, off| Ok(write!(out, "{off}")?))
}

pub(super) fn heap(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    let v16 = major >= PgMajor::V16;
    match record.header.info & XLOG_HEAP_OPMASK {
        0x00 => {
            // xl_heap_insert: offnum, flags.
            if v16 {
                write!(out, "off: {}, flags: 0x{:02X}", d.u16(0)?, d.u8(2)?)?;
            } else {
                write!(out, "off {} flags 0x{:02X}", d.u16(0)?, d.u8(2)?)?;
            }
        }
        0x10 => {
            // xl_heap_delete: xmax, offnum, infobits_set, flags.
            if v16 {
                write!(out, "xmax: {}, off: {}, ", d.u32(0)?, d.u16(4)?)?;
                infobits_desc(out, d.u8(6)?, "infobits");
                write!(out, ", flags: 0x{:02X}", d.u8(7)?)?;
            } else {
                write!(out, "off {} flags 0x{:02X} ", d.u16(4)?, d.u8(7)?)?;
                out_infobits(out, d.u8(6)?);
            }
        }
        0x20 | 0x40 => {
            // xl_heap_update: old_xmax, old_offnum, old_infobits_set, flags, new_xmax,
            // new_offnum.
            if v16 {
                write!(out, "old_xmax: {}, old_off: {}, ", d.u32(0)?, d.u16(4)?)?;
                infobits_desc(out, d.u8(6)?, "old_infobits");
                write!(
                    out,
                    ", flags: 0x{:02X}, new_xmax: {}, new_off: {}",
                    d.u8(7)?,
                    d.u32(8)?,
                    d.u16(12)?
                )?;
            } else {
                write!(
                    out,
                    "off {} xmax {} flags 0x{:02X} ",
                    d.u16(4)?,
                    d.u32(0)?,
                    d.u8(7)?
                )?;
                out_infobits(out, d.u8(6)?);
                write!(out, "; new off {} xmax {}", d.u16(12)?, d.u32(8)?)?;
            }
        }
        0x30 => {
            // xl_heap_truncate: dbId, nrelids, flags, relids[].
            let nrelids = d.u32(4)?;
            let flags = d.u8(8)?;
            let n = usize::try_from(nrelids).map_err(|_| DescError::Short)?;
            d.slice(12, n.saturating_mul(4))?;
            let relids = (0..n).map(|i| d.u32(12 + 4 * i));
            if v16 {
                out.push_str("flags: [");
                let mut names = Vec::new();
                if flags & 0x01 != 0 {
                    names.push("CASCADE");
                }
                if flags & 0x02 != 0 {
                    names.push("RESTART_SEQS");
                }
                out.push_str(&names.join(", "));
                write!(out, "], nrelids: {nrelids}, relids:")?;
                array(out, relids, |out, id| Ok(write!(out, "{}", id?)?))?;
            } else {
                if flags & 0x01 != 0 {
                    out.push_str("cascade ");
                }
                if flags & 0x02 != 0 {
                    out.push_str("restart_seqs ");
                }
                write!(out, "nrelids {nrelids} relids")?;
                for id in relids {
                    write!(out, " {}", id?)?;
                }
            }
        }
        0x50 => {
            let sep = if v16 { ": " } else { " " };
            write!(out, "off{sep}{}", d.u16(0)?)?;
        }
        0x60 => {
            // xl_heap_lock: xmax (locking_xid before 16), offnum, infobits_set, flags.
            if v16 {
                write!(out, "xmax: {}, off: {}, ", d.u32(0)?, d.u16(4)?)?;
                infobits_desc(out, d.u8(6)?, "infobits");
                write!(out, ", flags: 0x{:02X}", d.u8(7)?)?;
            } else {
                write!(
                    out,
                    "off {}: xid {}: flags 0x{:02X} ",
                    d.u16(4)?,
                    d.u32(0)?,
                    d.u8(7)?
                )?;
                out_infobits(out, d.u8(6)?);
            }
        }
        0x70 => {
            let sep = if v16 { ": " } else { " " };
            write!(out, "off{sep}{}", d.u16(0)?)?;
            if major >= PgMajor::V18 {
                // xl_heap_inplace (18): offnum, dbId, tsId, relcacheInitFileInval, nmsgs,
                // msgs[].
                let n = d.count(16)?;
                let msgs = d.slice(20, n.saturating_mul(INVAL_MSG_LEN))?;
                invalidations(major, out, n, msgs, d.u32(4)?, d.u32(8)?, d.bool(12)?)?;
            }
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn heap2(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    let v16 = major >= PgMajor::V16;
    let block0 = record
        .block(0)
        .filter(|b| b.has_data())
        .map(|b| Fields(record.block_data(b)));
    match record.header.info & XLOG_HEAP_OPMASK {
        0x10..=0x30 if major >= PgMajor::V17 => prune_v17(major, d, block0, out)?,
        0x10 => {
            // xl_heap_prune: horizon, nredirected, ndead.
            if v16 {
                let nredirected = usize::from(d.u16(4)?);
                let ndead = usize::from(d.u16(6)?);
                write!(
                    out,
                    "snapshotConflictHorizon: {}, nredirected: {nredirected}, ndead: {ndead}",
                    d.u32(0)?
                )?;
                if let Some(b) = block0 {
                    let all = offsets(b, 0, b.0.len() / 2)?;
                    let dead_at = nredirected * 2;
                    let unused_at = dead_at + ndead;
                    let nunused = all.len().checked_sub(unused_at).ok_or(DescError::Short)?;
                    write!(out, ", nunused: {nunused}, redirected:")?;
                    let pairs = all.get(..dead_at).ok_or(DescError::Short)?;
                    array(out, pairs.chunks_exact(2), |out, p| {
                        Ok(write!(out, "{}->{}", p[0], p[1])?)
                    })?;
                    out.push_str(", dead:");
                    offset_list(out, all.get(dead_at..unused_at).ok_or(DescError::Short)?)?;
                    out.push_str(", unused:");
                    offset_list(out, all.get(unused_at..).ok_or(DescError::Short)?)?;
                }
            } else {
                write!(
                    out,
                    "latestRemovedXid {} nredirected {} ndead {}",
                    d.u32(0)?,
                    d.u16(4)?,
                    d.u16(6)?
                )?;
            }
        }
        0x20 => {
            // xl_heap_vacuum: nunused; the offsets are block 0's data.
            let nunused = usize::from(d.u16(0)?);
            if v16 {
                write!(out, "nunused: {nunused}")?;
                if let Some(b) = block0 {
                    out.push_str(", unused:");
                    offset_list(out, &offsets(b, 0, nunused)?)?;
                }
            } else {
                write!(out, "nunused {nunused}")?;
            }
        }
        0x30 => {
            if v16 {
                // xl_heap_freeze_page: horizon, nplans; block 0 holds the plans and then
                // every plan's offsets.
                let nplans = usize::from(d.u16(4)?);
                write!(
                    out,
                    "snapshotConflictHorizon: {}, nplans: {nplans}",
                    d.u32(0)?
                )?;
                if let Some(b) = block0 {
                    out.push_str(", plans:");
                    freeze_plans(out, b, 0, nplans, nplans * FREEZE_PLAN_LEN)?;
                }
            } else {
                write!(out, "cutoff xid {} ntuples {}", d.u32(0)?, d.u16(4)?)?;
            }
        }
        0x40 => {
            // xl_heap_visible: horizon, flags.
            if v16 {
                write!(
                    out,
                    "snapshotConflictHorizon: {}, flags: 0x{:02X}",
                    d.u32(0)?,
                    d.u8(4)?
                )?;
            } else {
                write!(out, "cutoff xid {} flags 0x{:02X}", d.u32(0)?, d.u8(4)?)?;
            }
        }
        0x50 => {
            // xl_heap_multi_insert: flags, ntuples, offsets[] (absent with INIT_PAGE).
            let flags = d.u8(0)?;
            let ntuples = d.u16(2)?;
            if v16 {
                write!(out, "ntuples: {ntuples}, flags: 0x{flags:02X}")?;
                let init = record.header.info & XLOG_HEAP_INIT_PAGE != 0;
                if block0.is_some() && !init {
                    out.push_str(", offsets:");
                    offset_list(out, &offsets(d, 4, usize::from(ntuples))?)?;
                }
            } else {
                write!(out, "{ntuples} tuples flags 0x{flags:02X}")?;
            }
        }
        0x60 => {
            // xl_heap_lock_updated: xmax, offnum, infobits_set, flags.
            if v16 {
                write!(out, "xmax: {}, off: {}, ", d.u32(0)?, d.u16(4)?)?;
                infobits_desc(out, d.u8(6)?, "infobits");
                write!(out, ", flags: 0x{:02X}", d.u8(7)?)?;
            } else {
                write!(
                    out,
                    "off {}: xmax {}: flags 0x{:02X} ",
                    d.u16(4)?,
                    d.u32(0)?,
                    d.u8(7)?
                )?;
                out_infobits(out, d.u8(6)?);
            }
        }
        0x70 => {
            // xl_heap_new_cid: top_xid, cmin, cmax, combocid, target locator, target tid.
            let rel = d.locator(16)?;
            let block = u32::from(d.u16(28)?) << 16 | u32::from(d.u16(30)?);
            let off = d.u16(32)?;
            let (cmin, cmax, combo) = (d.u32(4)?, d.u32(8)?, d.u32(12)?);
            if v16 {
                write!(
                    out,
                    "rel: {rel}, tid: {block}/{off}, cmin: {cmin}, cmax: {cmax}, combo: {combo}"
                )?;
            } else {
                write!(
                    out,
                    "rel {rel}; tid {block}/{off}; cmin: {cmin}, cmax: {cmax}, combo: {combo}"
                )?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `xl_heap_freeze_plan` / `xlhp_freeze_plan`: xmax, t_infomask2, t_infomask, frzflags,
/// ntuples (12 bytes with padding).
const FREEZE_PLAN_LEN: usize = 12;

/// The plans at `plans_at` in `b`, each printed with its offsets, which follow one another
/// from `offsets_at`.
fn freeze_plans(
    out: &mut String,
    b: Fields<'_>,
    plans_at: usize,
    nplans: usize,
    offsets_at: usize,
) -> DescResult {
    let mut next_offset = offsets_at;
    array(out, 0..nplans, |out, i| {
        let at = plans_at + i * FREEZE_PLAN_LEN;
        let ntuples = usize::from(b.u16(at + 10)?);
        write!(
            out,
            "{{ xmax: {}, infomask: {}, infomask2: {}, ntuples: {ntuples}, offsets:",
            b.u32(at)?,
            b.u16(at + 6)?,
            b.u16(at + 4)?
        )?;
        offset_list(out, &offsets(b, next_offset, ntuples)?)?;
        next_offset += ntuples * 2;
        out.push_str(" }");
        Ok(())
    })
}

const XLHP_IS_CATALOG_REL: u8 = 1 << 1;
const XLHP_HAS_CONFLICT_HORIZON: u8 = 1 << 3;
const XLHP_HAS_FREEZE_PLANS: u8 = 1 << 4;
const XLHP_HAS_REDIRECTIONS: u8 = 1 << 5;
const XLHP_HAS_DEAD_ITEMS: u8 = 1 << 6;
const XLHP_HAS_NOW_UNUSED_ITEMS: u8 = 1 << 7;

/// 17's `PRUNE_ON_ACCESS` / `PRUNE_VACUUM_SCAN` / `PRUNE_VACUUM_CLEANUP`: `xl_heap_prune`
/// (reason, flags), an optional unaligned conflict horizon, and in block 0's data the
/// sub-records the flags announce.
fn prune_v17(
    _major: PgMajor,
    d: Fields<'_>,
    block0: Option<Fields<'_>>,
    out: &mut String,
) -> DescResult {
    let flags = d.u8(1)?;
    if flags & XLHP_HAS_CONFLICT_HORIZON != 0 {
        write!(out, "snapshotConflictHorizon: {}", d.u32(2)?)?;
    }
    write!(
        out,
        ", isCatalogRel: {}",
        if flags & XLHP_IS_CATALOG_REL != 0 {
            'T'
        } else {
            'F'
        }
    )?;
    let Some(b) = block0 else {
        return Ok(());
    };
    let mut at = 0usize;
    let (mut nplans, mut plans_at) = (0usize, 0usize);
    if flags & XLHP_HAS_FREEZE_PLANS != 0 {
        // xlhp_freeze_plans: nplans, then the plans at offset 4.
        nplans = usize::from(b.u16(at)?);
        plans_at = at + 4;
        at = plans_at + nplans * FREEZE_PLAN_LEN;
    }
    let mut items = |flag: u8, per_item: usize| -> Result<(usize, usize), DescError> {
        if flags & flag == 0 {
            return Ok((0, 0));
        }
        // xlhp_prune_items: ntargets, then the offsets.
        let n = usize::from(b.u16(at)?);
        let start = at + 2;
        at = start + n * per_item * 2;
        Ok((n, start))
    };
    let (nredirected, redirected_at) = items(XLHP_HAS_REDIRECTIONS, 2)?;
    let (ndead, dead_at) = items(XLHP_HAS_DEAD_ITEMS, 1)?;
    let (nunused, unused_at) = items(XLHP_HAS_NOW_UNUSED_ITEMS, 1)?;
    let frz_offsets_at = at;
    write!(
        out,
        ", nplans: {nplans}, nredirected: {nredirected}, ndead: {ndead}, nunused: {nunused}"
    )?;
    if nplans > 0 {
        out.push_str(", plans:");
        freeze_plans(out, b, plans_at, nplans, frz_offsets_at)?;
    }
    if nredirected > 0 {
        out.push_str(", redirected:");
        let pairs = offsets(b, redirected_at, nredirected * 2)?;
        array(out, pairs.chunks_exact(2), |out, p| {
            Ok(write!(out, "{}->{}", p[0], p[1])?)
        })?;
    }
    if ndead > 0 {
        out.push_str(", dead:");
        offset_list(out, &offsets(b, dead_at, ndead)?)?;
    }
    if nunused > 0 {
        out.push_str(", unused:");
        offset_list(out, &offsets(b, unused_at, nunused)?)?;
    }
    Ok(())
}
