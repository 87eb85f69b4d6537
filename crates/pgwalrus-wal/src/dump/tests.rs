//! Tests for the `pg_waldump` line and statistics formats.

use super::*;
use crate::WalSegSize;
use crate::testutil::{Body, Image, WalWriter, rel};

fn record(rmid: u8, info: u8, xid: u32, body: &Body) -> Record {
    let w = WalWriter::new(PgMajor::V15, WalSegSize::MIN, Lsn(0x0100_0000));
    let raw = w.raw_record(rmid, info, xid, &body.build());
    Record::decode(PgMajor::V15, Lsn(0x0100_0028), raw).unwrap()
}

#[test]
fn line_with_fixed_widths_and_short_block_references() {
    let img = Image {
        info: 0x01, // a hole, not applied: written for consistency checking only
        hole_offset: 40,
        hole_length: None,
        bytes: vec![1; 8000],
    };
    let body = Body::new()
        .block(0, 0, Some(rel(5, 16384)), 7, None, b"tuple")
        .block(1, 2, None, 0, Some(img), b"")
        .block(2, 1, Some(rel(5, 16390)), 3, None, b"")
        .main(&[5, 0, 1, 0]);
    let r = record(10, 0x00, 735, &body);
    assert_eq!(
        format_record(PgMajor::V15, &r),
        format!(
            "rmgr: Heap        len (rec/tot): {:>6}/{:>6}, tx:        735, lsn: 0/01000028, prev 0/00FFFF00, \
             desc: INSERT off 5 flags 0x01, blkref #0: rel 1663/5/16384 blk 7, blkref #1: rel 1663/5/16384 \
             fork vm blk 0 FPW for WAL verification, blkref #2: rel 1663/5/16390 fork fsm blk 3",
            r.total_len() - 8000,
            r.total_len()
        )
    );
}

#[test]
fn unknown_types_and_empty_descriptions() {
    let r = record(0, 0xC0, 0, &Body::new());
    assert_eq!(
        format_record(PgMajor::V15, &r),
        "rmgr: XLOG        len (rec/tot):     24/    24, tx:          0, lsn: 0/01000028, prev 0/00FFFF00, desc: UNKNOWN (c0) "
    );
    let r = record(0, 0x40, 0, &Body::new());
    assert!(format_record(PgMajor::V15, &r).ends_with("desc: SWITCH "));
    let r = record(19, 0x01, 0, &Body::new().main(&[0; 11]));
    assert!(
        format_record(PgMajor::V15, &r).contains("rmgr: ReplicationOrigin len (rec/tot):"),
        "long names overflow the column as in pg_waldump"
    );
    let r = record(200, 0x00, 0, &Body::new().main(&[1]));
    assert!(format_record(PgMajor::V15, &r).contains("rmgr: custom200   len"));
    assert!(format_record(PgMajor::V15, &r).ends_with("desc: UNKNOWN (0) rmid: 200"));
}

#[test]
fn stats_rows_and_totals() {
    let mut stats = WalStats::new();
    let img = Image {
        info: 0x02,
        hole_offset: 0,
        hole_length: None,
        bytes: vec![0; 8192],
    };
    let with_fpi = Body::new().block(0, 0, Some(rel(5, 1)), 0, Some(img), b"");
    stats.add(&record(0, 0xB0, 0, &with_fpi)); // XLOG FPI
    stats.add(&record(1, 0x80, 700, &Body::new().main(&[0; 12]))); // COMMIT with HAS_INFO
    stats.add(&record(1, 0x00, 701, &Body::new().main(&[0; 8])));
    let total = stats.total();
    assert_eq!(total.count, 3);
    assert_eq!(total.fpi_len, 8192);
    assert_eq!(stats.rmgr(RmgrId::XACT).count, 2);
    // Transaction records are counted by opcode, without the HAS_INFO bit.
    assert_eq!(stats.record_type(RmgrId::XACT, 0).count, 2);
    assert_eq!(stats.record_type(RmgrId::XACT, 8).count, 0);
    let table = stats.render(PgMajor::V15, true);
    let lines: Vec<&str> = table.lines().collect();
    let (start, end) = stats.range().unwrap();
    assert_eq!(
        lines[0],
        format!(
            "WAL statistics between {} and {}:",
            crate::desc::LsnText(start.0),
            crate::desc::LsnText(end.0)
        )
    );
    assert!(lines[1].starts_with("Type                                           N      (%)"));
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name:<27} ")))
            .copied()
            .unwrap_or_else(|| panic!("no {name} row in\n{table}"))
    };
    assert!(row("XLOG/FPI").contains(" 1 ( 33.33)"), "{table}");
    assert!(row("Transaction/COMMIT").contains(" 2 ( 66.67)"), "{table}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("Total                                          3")
    );
    assert!(lines.last().unwrap().ends_with("[100%]"));
    let per_rmgr = stats.render(PgMajor::V14, false);
    assert!(!per_rmgr.starts_with("WAL statistics"));
    assert_eq!(
        per_rmgr.lines().filter(|l| l.starts_with("Heap ")).count(),
        1
    );
    assert_eq!(per_rmgr.lines().count(), 2 + 22 + 2);
}
