//! `pg_waldump`-compatible output: one line per record, and the `--stats` /
//! `--stats=record` tables.
//!
//! The record line is, with `pg_waldump`'s fixed widths:
//!
//! ```text
//! rmgr: Heap        len (rec/tot):     59/    59, tx:        735, lsn: 0/01A2B3C8, prev 0/01A2B390, desc: INSERT off 5 flags 0x00, blkref #0: rel 1663/5/16384 blk 0
//! ```
//!
//! `rec` is the record's length without full-page images, `tot` its `xl_tot_len`; block
//! references follow the description in the short form `pg_waldump` prints by default.

use std::fmt::Write;

use crate::record::{ForkNumber, XLR_INFO_MASK};
use crate::rmgr::{RmgrId, identify};
use crate::{Lsn, PgMajor, Record, desc};

/// The record as `pg_waldump` (of `major`, run with `TZ=UTC`) prints it, without the
/// trailing newline.
pub fn format_record(major: PgMajor, record: &Record) -> String {
    let mut line = String::with_capacity(160);
    write_record(major, record, &mut line);
    line
}

/// Appends the `pg_waldump` line for `record` (see [`format_record`]) to `out`.
pub fn write_record(major: PgMajor, record: &Record, out: &mut String) {
    let rmid = RmgrId(record.rmid());
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "rmgr: {rmid:<11} len (rec/tot): {:>6}/{:>6}, tx: {:>10}, lsn: {:#}, prev {:#}, ",
        record.rec_len(),
        record.total_len(),
        record.xid(),
        record.lsn,
        record.prev()
    );
    match identify(major, rmid, record.info()) {
        Some(id) => {
            let _ = write!(out, "desc: {id} ");
        }
        None => {
            let _ = write!(out, "desc: UNKNOWN ({:x}) ", record.info() & !XLR_INFO_MASK);
        }
    }
    desc::write_description(major, record, out);
    write_block_refs(record, out);
}

/// The short block-reference list: `, blkref #N: rel S/D/R [fork F ]blk B[ FPW]`.
pub fn write_block_refs(record: &Record, out: &mut String) {
    for block in &record.blocks {
        let _ = write!(out, ", blkref #{}: rel {}", block.id, block.locator);
        let fork = block.fork();
        if fork != ForkNumber::MAIN {
            match fork.name() {
                Some(name) => {
                    let _ = write!(out, " fork {name}");
                }
                None => {
                    let _ = write!(out, " fork {}", fork.0);
                }
            }
        }
        let _ = write!(out, " blk {}", block.block);
        if let Some(image) = &block.image {
            out.push_str(if image.apply {
                " FPW"
            } else {
                " FPW for WAL verification"
            });
        }
    }
}

/// Counts and sizes for one row of the statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsRow {
    /// Records.
    pub count: u64,
    /// Bytes of records without their full-page images.
    pub rec_len: u64,
    /// Bytes of full-page images.
    pub fpi_len: u64,
}

impl StatsRow {
    /// Record plus image bytes.
    pub fn combined(&self) -> u64 {
        self.rec_len + self.fpi_len
    }

    fn add(&mut self, rec_len: u64, fpi_len: u64) {
        self.count += 1;
        self.rec_len += rec_len;
        self.fpi_len += fpi_len;
    }
}

/// `pg_waldump --stats` accumulation: per resource manager, and per record type (the
/// high four `xl_info` bits; for Transaction records only the three opcode bits).
///
/// ```
/// use pgwalrus_wal::PgMajor;
/// use pgwalrus_wal::dump::WalStats;
///
/// let stats = WalStats::new();
/// assert_eq!(stats.total().count, 0);
/// // Like pg_waldump 15 and later, nothing is printed before a record was counted.
/// assert!(stats.render(PgMajor::V15, false).is_empty());
/// assert!(stats.render(PgMajor::V14, false).contains("Total"));
/// ```
#[derive(Debug, Clone)]
pub struct WalStats {
    per_rmgr: Vec<StatsRow>,
    per_record: Vec<[StatsRow; 16]>,
    count: u64,
    start: Option<Lsn>,
    end: Option<Lsn>,
}

impl Default for WalStats {
    fn default() -> Self {
        Self::new()
    }
}

impl WalStats {
    /// Empty statistics.
    pub fn new() -> Self {
        WalStats {
            per_rmgr: vec![StatsRow::default(); 256],
            per_record: vec![[StatsRow::default(); 16]; 256],
            count: 0,
            start: None,
            end: None,
        }
    }

    /// Counts `record` (`XLogRecStoreStats`).
    pub fn add(&mut self, record: &Record) {
        let rmid = usize::from(record.rmid());
        let (rec_len, fpi_len) = (u64::from(record.rec_len()), u64::from(record.fpi_len()));
        self.count += 1;
        if self.start.is_none() {
            self.start = Some(record.lsn);
        }
        self.end = Some(record.end);
        if let Some(row) = self.per_rmgr.get_mut(rmid) {
            row.add(rec_len, fpi_len);
        }
        let mut recid = usize::from(record.info() >> 4);
        if RmgrId(record.rmid()) == RmgrId::XACT {
            recid &= 0x07;
        }
        if let Some(row) = self.per_record.get_mut(rmid).and_then(|r| r.get_mut(recid)) {
            row.add(rec_len, fpi_len);
        }
    }

    /// The row of one resource manager.
    pub fn rmgr(&self, rmid: RmgrId) -> StatsRow {
        self.per_rmgr
            .get(usize::from(rmid.0))
            .copied()
            .unwrap_or_default()
    }

    /// The row of one record type (`rmgr_info >> 4`, see [`WalStats`]).
    pub fn record_type(&self, rmid: RmgrId, recid: u8) -> StatsRow {
        self.per_record
            .get(usize::from(rmid.0))
            .and_then(|r| r.get(usize::from(recid)))
            .copied()
            .unwrap_or_default()
    }

    /// All records counted.
    pub fn total(&self) -> StatsRow {
        let mut total = StatsRow {
            count: self.count,
            ..StatsRow::default()
        };
        for row in &self.per_rmgr {
            total.rec_len += row.rec_len;
            total.fpi_len += row.fpi_len;
        }
        total
    }

    /// The first record's position and the last record's end, once a record was counted.
    pub fn range(&self) -> Option<(Lsn, Lsn)> {
        Some((self.start?, self.end?))
    }

    /// The statistics table as `pg_waldump --stats` (or `--stats=record` when
    /// `per_record`) of `major` prints it, lines ending in `\n`.
    pub fn render(&self, major: PgMajor, per_record: bool) -> String {
        let mut out = String::new();
        let total = self.total();
        if major >= PgMajor::V15 {
            let Some((start, end)) = self.range() else {
                return out;
            };
            let _ = writeln!(
                out,
                "WAL statistics between {} and {}:",
                desc_lsn(start),
                desc_lsn(end)
            );
        }
        let _ = writeln!(
            out,
            "{:<27} {:>20} {:>8} {:>20} {:>8} {:>20} {:>8} {:>20} {:>8}",
            "Type", "N", "(%)", "Record size", "(%)", "FPI size", "(%)", "Combined size", "(%)"
        );
        let _ = writeln!(
            out,
            "{:<27} {:>20} {:>8} {:>20} {:>8} {:>20} {:>8} {:>20} {:>8}",
            "----", "-", "---", "-----------", "---", "--------", "---", "-------------", "---"
        );
        for rmid in RmgrId::all(major) {
            if per_record {
                for recid in 0u8..16 {
                    let row = self.record_type(rmid, recid);
                    if row.count == 0 {
                        continue;
                    }
                    let name = match identify(major, rmid, recid << 4) {
                        Some(id) => format!("{rmid}/{id}"),
                        None => format!("{rmid}/UNKNOWN ({:x})", recid << 4),
                    };
                    stats_row(&mut out, &name, row, total);
                }
            } else {
                let row = self.rmgr(rmid);
                if rmid.is_custom() && row.count == 0 {
                    continue;
                }
                stats_row(&mut out, &rmid.to_string(), row, total);
            }
        }
        let _ = writeln!(
            out,
            "{:<27} {:>20} {:>8} {:>20} {:>8} {:>20} {:>8} {:>20}",
            "", "--------", "", "--------", "", "--------", "", "--------"
        );
        let combined = total.combined();
        let rec_pct = pct(total.rec_len, combined);
        let fpi_pct = pct(total.fpi_len, combined);
        let _ = writeln!(
            out,
            "{:<27} {:>20} {:<9}{:>20} {:<9}{:>20} {:<9}{:>20} {:<6}",
            "Total",
            total.count,
            "",
            total.rec_len,
            format!("[{rec_pct:.2}%]"),
            total.fpi_len,
            format!("[{fpi_pct:.2}%]"),
            combined,
            "[100%]"
        );
        out
    }
}

fn desc_lsn(lsn: Lsn) -> String {
    desc::LsnText(lsn.0).to_string()
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn stats_row(out: &mut String, name: &str, row: StatsRow, total: StatsRow) {
    let _ = writeln!(
        out,
        "{name:<27} {:>20} ({:>6.2}) {:>20} ({:>6.2}) {:>20} ({:>6.2}) {:>20} ({:>6.2})",
        row.count,
        pct(row.count, total.count),
        row.rec_len,
        pct(row.rec_len, total.rec_len),
        row.fpi_len,
        pct(row.fpi_len, total.fpi_len),
        row.combined(),
        pct(row.combined(), total.combined()),
    );
}

#[cfg(test)]
mod tests;
