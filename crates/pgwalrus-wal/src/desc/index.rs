//! Descriptions of the index access methods other than B-tree: Hash (`hashdesc.c`), GIN
//! (`gindesc.c`), GiST (`gistdesc.c`), SP-GiST (`spgdesc.c`) and BRIN (`brindesc.c`).
//! Their texts changed only where conflict horizons were renamed (16) and `isCatalogRel`
//! was added (17).

use std::fmt::Write;

use super::{DescResult, Fields};
use crate::{PgMajor, Record};

fn tf(b: bool) -> char {
    if b { 'T' } else { 'F' }
}

/// C's `%g`: six significant digits, scientific notation when the exponent is below -4 or
/// at least 6, trailing zeros removed.
pub(super) fn format_g(v: f64) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Round to six significant digits first; the exponent is the rounded one's.
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = usize::try_from(5 - exp).unwrap_or(0);
        trim_fraction(&format!("{v:.decimals$}")).to_owned()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `hashdesc.c`.
pub(super) fn hash(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    match record.header.rmgr_info() {
        0x00 => {
            // xl_hash_init_meta_page: num_tuples (double), procid, ffactor.
            let num_tuples = f64::from_le_bytes(d.slice(0, 8)?.try_into().unwrap_or([0; 8]));
            write!(
                out,
                "num_tuples {}, fillfactor {}",
                format_g(num_tuples),
                d.u16(12)?
            )?;
        }
        0x10 => write!(out, "bmsize {}", d.u16(0)?)?,
        0x20 => write!(out, "off {}", d.u16(0)?)?,
        0x30 => write!(out, "bmsize {}, bmpage_found {}", d.u16(0)?, tf(d.bool(2)?))?,
        0x40 => {
            let flags = d.u8(8)?;
            write!(
                out,
                "new_bucket {}, meta_page_masks_updated {}, issplitpoint_changed {}",
                d.u32(0)?,
                tf(flags & 0x01 != 0),
                tf(flags & 0x02 != 0)
            )?;
        }
        0x60 => write!(
            out,
            "old_bucket_flag {}, new_bucket_flag {}",
            d.u16(0)?,
            d.u16(2)?
        )?,
        0x70 => write!(out, "ntups {}, is_primary {}", d.u16(0)?, tf(d.bool(2)?))?,
        0x80 => write!(
            out,
            "prevblkno {}, nextblkno {}, ntups {}, is_primary {}",
            d.u32(0)?,
            d.u32(4)?,
            d.u16(8)?,
            tf(d.bool(10)?)
        )?,
        0x90 => write!(
            out,
            "clear_dead_marking {}, is_primary {}",
            tf(d.bool(0)?),
            tf(d.bool(1)?)
        )?,
        0xB0 => {
            let ntuples = f64::from_le_bytes(d.slice(0, 8)?.try_into().unwrap_or([0; 8]));
            write!(out, "ntuples {}", format_g(ntuples))?;
        }
        0xC0 => {
            // xl_hash_vacuum_one_page: horizon, ntuples (int until 15, uint16 from 16),
            // isCatalogRel (16+).
            if major >= PgMajor::V16 {
                write!(
                    out,
                    "ntuples {}, snapshotConflictHorizon {}",
                    d.u16(4)?,
                    d.u32(0)?
                )?;
                if major >= PgMajor::V17 {
                    write!(out, ", isCatalogRel {}", tf(d.bool(6)?))?;
                }
            } else {
                write!(out, "ntuples {}, latestRemovedXid {}", d.i32(4)?, d.u32(0)?)?;
            }
        }
        _ => {}
    }
    Ok(())
}

const GIN_INSERT_ISDATA: u16 = 0x01;
const GIN_INSERT_ISLEAF: u16 = 0x02;
const GIN_SPLIT_ROOT: u16 = 0x04;

/// A `BlockIdData` (two 16-bit halves, high first) as a block number.
fn block_id(d: Fields<'_>, at: usize) -> Result<u32, super::DescError> {
    Ok(u32::from(d.u16(at)?) << 16 | u32::from(d.u16(at + 2)?))
}

/// `desc_recompress_leaf`: the segment actions of a recompressed data leaf.
fn gin_recompress_leaf(out: &mut String, d: Fields<'_>) -> DescResult {
    let nactions = d.u16(0)?;
    write!(out, " {nactions} segments:")?;
    let mut at = 2usize;
    for _ in 0..nactions {
        let segno = d.u8(at)?;
        let action = d.u8(at + 1)?;
        at += 2;
        let mut nitems = 0u16;
        if action == 2 || action == 3 {
            // A GinPostingList: first item pointer, nbytes, then SHORTALIGNed bytes.
            let nbytes = usize::from(d.u16(at + 6)?);
            let size = 8 + nbytes.next_multiple_of(2);
            at += size.next_multiple_of(2);
        }
        if action == 4 {
            nitems = d.u16(at)?;
            at += 2 + usize::from(nitems) * 6;
        }
        match action {
            4 => write!(out, " {segno} (add {nitems} items)")?,
            1 => write!(out, " {segno} (delete)")?,
            2 => write!(out, " {segno} (insert)")?,
            3 => write!(out, " {segno} (replace)")?,
            other => {
                write!(out, " {segno} unknown action {other} ???")?;
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The image note GIN prints instead of block 0's data when the block carries an image.
fn gin_image_note(record: &Record, out: &mut String) -> bool {
    match record.block(0).and_then(|b| b.image.as_ref()) {
        Some(image) => {
            out.push_str(if image.apply {
                " (full page image)"
            } else {
                " (full page image, for WAL verification)"
            });
            true
        }
        None => false,
    }
}

/// `gindesc.c`.
pub(super) fn gin(record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    let block0 = record
        .block(0)
        .map(|b| Fields(record.block_data(b)))
        .unwrap_or(Fields(&[]));
    match record.header.rmgr_info() {
        0x20 => {
            // ginxlogInsert: flags; for internal pages, the children's block ids follow.
            let flags = d.u16(0)?;
            write!(
                out,
                "isdata: {} isleaf: {}",
                tf(flags & GIN_INSERT_ISDATA != 0),
                tf(flags & GIN_INSERT_ISLEAF != 0)
            )?;
            if flags & GIN_INSERT_ISLEAF == 0 {
                write!(out, " children: {}/{}", block_id(d, 2)?, block_id(d, 6)?)?;
            }
            if !gin_image_note(record, out) {
                if flags & GIN_INSERT_ISDATA == 0 {
                    // ginxlogInsertEntry: offset, isDelete.
                    write!(out, " isdelete: {}", tf(block0.bool(2)?))?;
                } else if flags & GIN_INSERT_ISLEAF != 0 {
                    gin_recompress_leaf(out, block0)?;
                } else {
                    // ginxlogInsertDataInternal: offset, PostingItem (child, key).
                    write!(
                        out,
                        " pitem: {}-{}/{}",
                        block_id(block0, 2)?,
                        block_id(block0, 6)?,
                        block0.u16(10)?
                    )?;
                }
            }
        }
        0x30 => {
            // ginxlogSplit: node, rrlink, children, flags.
            let flags = d.u16(24)?;
            write!(
                out,
                "isrootsplit: {} isdata: {} isleaf: {}",
                tf(flags & GIN_SPLIT_ROOT != 0),
                tf(flags & GIN_INSERT_ISDATA != 0),
                tf(flags & GIN_INSERT_ISLEAF != 0)
            )?;
        }
        0x90 if !gin_image_note(record, out) => gin_recompress_leaf(out, block0)?,
        0x80 => {
            // ginxlogDeleteListPages: GinMetaPageData (56 bytes), ndeleted.
            write!(out, "ndeleted: {}", d.i32(56)?)?;
        }
        // CREATE_PTREE, VACUUM_PAGE, DELETE_PAGE, UPDATE_META_PAGE, INSERT_LISTPAGE.
        _ => {}
    }
    Ok(())
}

/// `gistdesc.c`.
pub(super) fn gist(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    let v16 = major >= PgMajor::V16;
    let v17 = major >= PgMajor::V17;
    match record.header.rmgr_info() {
        0x20 => {
            // gistxlogPageReuse: locator, block, horizon (64-bit at 16), isCatalogRel (16+).
            let horizon = d.u64(16)?;
            write!(
                out,
                "rel {}; blk {}; {} {}:{}",
                d.locator(0)?,
                d.u32(12)?,
                if v16 {
                    "snapshotConflictHorizon"
                } else {
                    "latestRemovedXid"
                },
                horizon >> 32,
                horizon & 0xFFFF_FFFF
            )?;
            if v17 {
                write!(out, ", isCatalogRel {}", tf(d.bool(24)?))?;
            }
        }
        0x10 => {
            // gistxlogDelete: horizon, ntodelete, isCatalogRel (16+).
            write!(
                out,
                "delete: {} {}, nitems: {}",
                if v16 {
                    "snapshotConflictHorizon"
                } else {
                    "latestRemovedXid"
                },
                d.u32(0)?,
                d.u16(4)?
            )?;
            if v17 {
                write!(out, ", isCatalogRel {}", tf(d.bool(6)?))?;
            }
        }
        // gistxlogPageSplit: origrlink, orignsn (8-byte aligned), origleaf, npage.
        0x30 => write!(out, "page_split: splits to {} pages", d.u16(18)?)?,
        0x60 => {
            // gistxlogPageDelete: deleteXid (64-bit), downlinkOffset.
            let xid = d.u64(0)?;
            write!(
                out,
                "deleteXid {}:{}; downlink {}",
                xid >> 32,
                xid & 0xFFFF_FFFF,
                d.u16(8)?
            )?;
        }
        // PAGE_UPDATE and ASSIGN_LSN print nothing.
        _ => {}
    }
    Ok(())
}

/// `spgdesc.c`.
pub(super) fn spgist(major: PgMajor, record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    let flag = |out: &mut String, set: bool, text: &str| {
        if set {
            out.push_str(text);
        }
    };
    match record.header.rmgr_info() {
        0x10 => {
            // spgxlogAddLeaf: newPage, storesNulls, offnumLeaf, offnumHeadLeaf,
            // offnumParent, nodeI.
            write!(
                out,
                "off: {}, headoff: {}, parentoff: {}, nodeI: {}",
                d.u16(2)?,
                d.u16(4)?,
                d.u16(6)?,
                d.u16(8)?
            )?;
            flag(out, d.bool(0)?, " (newpage)");
            flag(out, d.bool(1)?, " (nulls)");
        }
        0x20 => {
            // spgxlogMoveLeafs: nMoves, newPage, replaceDead, storesNulls, offnumParent,
            // nodeI.
            write!(
                out,
                "nmoves: {}, parentoff: {}, nodeI: {}",
                d.u16(0)?,
                d.u16(6)?,
                d.u16(8)?
            )?;
            flag(out, d.bool(2)?, " (newpage)");
            flag(out, d.bool(3)?, " (replacedead)");
            flag(out, d.bool(4)?, " (nulls)");
        }
        0x30 => {
            // spgxlogAddNode: offnum, offnumNew, newPage, parentBlk, offnumParent, nodeI.
            write!(
                out,
                "off: {}, newoff: {}, parentBlk: {}, parentoff: {}, nodeI: {}",
                d.u16(0)?,
                d.u16(2)?,
                d.i8(5)?,
                d.u16(6)?,
                d.u16(8)?
            )?;
            flag(out, d.bool(4)?, " (newpage)");
        }
        0x40 => {
            // spgxlogSplitTuple: offnumPrefix, offnumPostfix, newPage, postfixBlkSame.
            write!(out, "prefixoff: {}, postfixoff: {}", d.u16(0)?, d.u16(2)?)?;
            flag(out, d.bool(4)?, " (newpage)");
            flag(out, d.bool(5)?, " (same)");
        }
        0x50 => {
            // spgxlogPickSplit: isRootSplit, nDelete, nInsert, initSrc, initDest,
            // offnumInner, initInner, storesNulls, innerIsParent, offnumParent, nodeI.
            write!(
                out,
                "ndelete: {}, ninsert: {}, inneroff: {}, parentoff: {}, nodeI: {}",
                d.u16(2)?,
                d.u16(4)?,
                d.u16(8)?,
                d.u16(14)?,
                d.u16(16)?
            )?;
            flag(out, d.bool(12)?, " (innerIsParent)");
            flag(out, d.bool(11)?, " (nulls)");
            flag(out, d.bool(0)?, " (isRootSplit)");
        }
        0x60 => write!(
            out,
            "ndead: {}, nplaceholder: {}, nmove: {}, nchain: {}",
            d.u16(0)?,
            d.u16(2)?,
            d.u16(4)?,
            d.u16(6)?
        )?,
        0x70 => write!(out, "ndelete: {}", d.u16(0)?)?,
        0x80 => {
            // spgxlogVacuumRedirect: nToPlaceholder, firstPlaceholder, horizon,
            // isCatalogRel (16+).
            write!(
                out,
                "ntoplaceholder: {}, firstplaceholder: {}, {}: {}",
                d.u16(0)?,
                d.u16(2)?,
                if major >= PgMajor::V16 {
                    "snapshotConflictHorizon"
                } else {
                    "newestredirectxid"
                },
                d.u32(4)?
            )?;
            if major >= PgMajor::V17 {
                write!(out, ", isCatalogRel: {}", tf(d.bool(8)?))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `brindesc.c`.
pub(super) fn brin(record: &Record, out: &mut String) -> DescResult {
    let d = Fields(record.main_data());
    match record.header.info & 0x70 {
        0x00 => write!(out, "v{} pagesPerRange {}", d.u16(4)?, d.u32(0)?)?,
        0x10 => write!(
            out,
            "heapBlk {} pagesPerRange {} offnum {}",
            d.u32(0)?,
            d.u32(4)?,
            d.u16(8)?
        )?,
        0x20 => write!(
            out,
            "heapBlk {} pagesPerRange {} old offnum {}, new offnum {}",
            d.u32(4)?,
            d.u32(8)?,
            d.u16(0)?,
            d.u16(12)?
        )?,
        0x30 => write!(out, "offnum {}", d.u16(0)?)?,
        0x40 => write!(out, "targetBlk {}", d.u32(0)?)?,
        0x50 => write!(
            out,
            "pagesPerRange {}, heapBlk {}, page offset {}",
            d.u32(0)?,
            d.u32(4)?,
            d.u16(8)?
        )?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::format_g;

    #[test]
    fn percent_g_like_c() {
        let cases = [
            (47175.0, "47175"),
            (0.0, "0"),
            (1.0, "1"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (1e6, "1e+06"),
            (999999.5, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (1.234_567_89, "1.23457"),
            (100.0, "100"),
            (1e100, "1e+100"),
            (f64::INFINITY, "inf"),
        ];
        for (v, want) in cases {
            assert_eq!(format_g(v), want, "{v}");
        }
    }
}
