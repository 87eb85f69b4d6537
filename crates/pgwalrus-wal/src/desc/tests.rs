//! Description tests per major, on records built byte by byte in the layouts of the
//! server's structs. Expected texts follow the format strings of each major's `*desc.c`.
//! (PostgreSQL 15 is also checked against `pg_waldump` by the integration test.)

use super::*;
use crate::testutil::{Body, WalWriter, rel};
use crate::{Lsn, WalSegSize};

use PgMajor::{V14, V15, V16, V17, V18};

/// Little-endian struct bytes.
#[derive(Default)]
struct Le(Vec<u8>);

impl Le {
    fn new() -> Self {
        Le(Vec::new())
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn pad(mut self, n: usize) -> Self {
        self.0.extend(std::iter::repeat_n(0, n));
        self
    }
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn rel(self, spc: u32, db: u32, relnumber: u32) -> Self {
        self.u32(spc).u32(db).u32(relnumber)
    }
}

fn record_with(rmid: u8, info: u8, body: Body) -> Record {
    record_origin(rmid, info, body, None)
}

fn record_origin(rmid: u8, info: u8, body: Body, origin: Option<u16>) -> Record {
    let body = match origin {
        Some(o) => body.origin(o),
        None => body,
    };
    let w = WalWriter::new(V15, WalSegSize::MIN, Lsn(0x0100_0000));
    let raw = w.raw_record(rmid, info, 0, &body.build());
    Record::decode(V15, Lsn(0x0100_0028), raw).unwrap()
}

fn main_only(rmid: u8, info: u8, main: Le) -> Record {
    record_with(rmid, info, Body::new().main_long(&main.0))
}

/// A 2024-05-01 12:00:00.123456 UTC timestamp.
const TS: i64 = 767_880_000_123_456;
const TS_TEXT: &str = "2024-05-01 12:00:00.123456 UTC";

#[test]
fn timestamp_constant_is_what_it_says() {
    assert_eq!(format_timestamptz(TS), TS_TEXT);
}

fn checkpoint(major: PgMajor) -> Le {
    let le = Le::new().u64(0x0100_0028).u32(1).u32(1).u8(1).pad(3);
    let le = if major >= V17 { le.i32(1) } else { le.pad(4) };
    le.u64(735)
        .u32(24576)
        .u32(1)
        .u32(0)
        .u32(716)
        .u32(1)
        .u32(1)
        .u32(1)
        .pad(4)
        .i64(1_714_564_800)
        .u32(0)
        .u32(0)
        .u32(735)
        .pad(4)
}

#[test]
fn xlog_checkpoint_gained_wal_level_in_17() {
    let tail = "xid 0:735; oid 24576; multi 1; offset 0; oldest xid 716 in DB 1; oldest multi 1 in DB 1; \
                oldest/newest commit timestamp xid: 0/0; oldest running xid 735; online";
    for major in [V14, V15, V16] {
        let r = main_only(0, 0x10, checkpoint(major));
        assert_eq!(
            describe(major, &r),
            format!("redo 0/1000028; tli 1; prev tli 1; fpw true; {tail}")
        );
    }
    for major in [V17, V18] {
        let r = main_only(0, 0x00, checkpoint(major));
        assert_eq!(
            describe(major, &r),
            format!("redo 0/1000028; tli 1; prev tli 1; fpw true; wal_level replica; {tail}")
                .replace("online", "shutdown")
        );
    }
}

#[test]
fn xlog_small_records() {
    let r = main_only(0, 0x30, Le::new().u32(24576));
    assert_eq!(describe(V15, &r), "24576");
    let r = main_only(0, 0x50, Le::new().u64(0x2_0000_0028));
    assert_eq!(describe(V15, &r), "2/28");
    let mut name = b"before upgrade".to_vec();
    name.resize(64, 0);
    let r = main_only(0, 0x70, Le::new().i64(TS).bytes(&name));
    assert_eq!(describe(V16, &r), "before upgrade");
    let r = main_only(0, 0x80, Le::new().u8(0));
    assert_eq!(describe(V15, &r), "false");
    let param = Le::new()
        .i32(100)
        .i32(8)
        .i32(10)
        .i32(0)
        .i32(64)
        .i32(2)
        .u8(1)
        .u8(0)
        .pad(2);
    assert_eq!(
        describe(V18, &main_only(0, 0x60, param)),
        "max_connections=100 max_worker_processes=8 max_wal_senders=10 max_prepared_xacts=0 \
         max_locks_per_xact=64 wal_level=logical wal_log_hints=on track_commit_timestamp=off"
    );
    let eor = || Le::new().i64(TS).u32(2).u32(1).i32(0).pad(4);
    assert_eq!(
        describe(V16, &main_only(0, 0x90, eor())),
        format!("tli 2; prev tli 1; time {TS_TEXT}")
    );
    assert_eq!(
        describe(V17, &main_only(0, 0x90, eor())),
        format!("tli 2; prev tli 1; time {TS_TEXT}; wal_level minimal")
    );
    assert_eq!(
        describe(V17, &main_only(0, 0xE0, Le::new().i32(9))),
        "wal_level ?"
    );
    assert_eq!(describe(V16, &main_only(0, 0xE0, Le::new().i32(1))), "");
    let r = main_only(0, 0xD0, Le::new().u64(0x0300_1FF8).i64(TS));
    assert_eq!(describe(V14, &r), format!("lsn 0/3001FF8; time {TS_TEXT}"));
    // FPI, SWITCH and NOOP have nothing to add.
    assert_eq!(describe(V15, &record_with(0, 0xB0, Body::new())), "");
}

#[test]
fn short_data_is_flagged_not_read_past() {
    let r = main_only(0, 0x10, Le::new().u64(1).u32(1));
    let text = describe(V15, &r);
    assert!(text.ends_with("<data too short>"), "{text}");
    let r = record_with(0, 0x30, Body::new());
    assert_eq!(describe(V15, &r), "<data too short>");
}

fn commit_body(major: PgMajor) -> Le {
    // xact_time, xinfo, dbinfo, subxacts, rels, [stats], invals, twophase (xid, gid), origin
    let xinfo: u32 = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x80 | 0x100 | (1 << 29) | (1 << 31);
    let le = Le::new()
        .i64(TS)
        .u32(xinfo)
        .u32(5)
        .u32(1663)
        .i32(2)
        .u32(740)
        .u32(741)
        .i32(2)
        .rel(1663, 5, 16384)
        .rel(1664, 0, 1262);
    let le = if major >= V15 {
        let le = le.i32(1).i32(2).u32(5);
        if major >= V18 {
            le.u32(16384).u32(1)
        } else {
            le.u32(16384)
        }
    } else {
        le
    };
    le.i32(3)
        .bytes(&inval(-2, 5, 16384))
        .bytes(&inval(17, 5, 0))
        .bytes(&inval(-6, 5, 99))
        .u32(739)
        .bytes(b"gid\0")
        .u64(0x0100_0000)
        .i64(TS)
}

fn inval(id: i8, db: u32, rel: u32) -> Vec<u8> {
    let mut m = vec![id as u8, 0, 0, 0];
    m.extend_from_slice(&db.to_le_bytes());
    m.extend_from_slice(&rel.to_le_bytes());
    m.extend_from_slice(&[0; 4]);
    m
}

#[test]
fn transaction_commit_parts_per_major() {
    let rels = "rels: base/5/16384 global/1262";
    let origin = format!("origin: node 7, lsn 0/1000000, at {TS_TEXT}");
    let r = |m| record_origin(1, 0x80, Body::new().main_long(&commit_body(m).0), Some(7));
    assert_eq!(
        describe(V14, &r(V14)),
        format!(
            "739: {TS_TEXT}; {rels}; subxacts: 740 741; inval msgs: relcache 16384 catcache 17 \
             unrecognized id -6; sync; {origin}"
        )
    );
    for major in [V15, V16, V17] {
        assert_eq!(
            describe(major, &r(major)),
            format!(
                "739: {TS_TEXT}; {rels}; subxacts: 740 741; dropped stats: 2/5/16384; inval msgs: \
                 relcache 16384 catcache 17 unrecognized id -6; apply_feedback; sync; {origin}"
            ),
            "{major}"
        );
    }
    assert_eq!(
        describe(V18, &r(V18)),
        format!(
            "739: {TS_TEXT}; {rels}; subxacts: 740 741; dropped stats: 2/5/4294983680; inval msgs: \
             relcache 16384 catcache 17 relsync 99; apply_feedback; sync; {origin}"
        )
    );
}

#[test]
fn transaction_commit_without_info_and_relcache_init_file() {
    let r = main_only(1, 0x00, Le::new().i64(TS));
    assert_eq!(describe(V15, &r), TS_TEXT);
    let body = Le::new()
        .i64(TS)
        .u32(0x01 | 0x08 | (1 << 30))
        .u32(5)
        .u32(1663)
        .i32(1)
        .bytes(&inval(-1, 0, 1259));
    let r = main_only(1, 0x80, body);
    assert_eq!(
        describe(V15, &r),
        format!("{TS_TEXT}; relcache init file inval dbid 5 tsid 1663; inval msgs: catalog 1259")
    );
}

#[test]
fn transaction_abort_prints_origin_and_stats_from_15() {
    let body = |major| {
        let le = Le::new()
            .i64(TS)
            .u32(0x04 | 0x20 | 0x100)
            .i32(1)
            .rel(1663, 5, 16400);
        let le = if major >= V15 {
            le.i32(1).i32(2).u32(5).u32(16400)
        } else {
            le
        };
        le.u64(0x0100_0000).i64(TS)
    };
    let r = |m| record_origin(1, 0xA0, Body::new().main_long(&body(m).0), Some(3));
    assert_eq!(
        describe(V14, &r(V14)),
        format!("{TS_TEXT}; rels: base/5/16400")
    );
    assert_eq!(
        describe(V16, &r(V16)),
        format!(
            "{TS_TEXT}; rels: base/5/16400; origin: node 3, lsn 0/1000000, at {TS_TEXT}; \
             dropped stats: 2/5/16400"
        )
    );
}

fn prepare_body(major: PgMajor) -> Le {
    let gid = b"tx2\0";
    let le = Le::new()
        .u32(0x57F9_4534)
        .u32(0)
        .u32(750)
        .u32(5)
        .i64(TS)
        .u32(10)
        .i32(1) // nsubxacts
        .i32(0) // ncommitrels
        .i32(1); // nabortrels
    let le = if major >= V15 { le.i32(0).i32(1) } else { le };
    let le = le
        .i32(1)
        .u8(1)
        .pad(1)
        .u16(gid.len() as u16)
        .u64(0x0100_0000)
        .i64(TS);
    let le = le.bytes(gid).pad(4); // MAXALIGN(4)
    let le = le.u32(751).pad(4);
    let le = le.rel(1663, 5, 16500).pad(4);
    let le = if major >= V15 {
        if major >= V18 {
            le.i32(2).u32(5).u32(16500).u32(0)
        } else {
            le.i32(2).u32(5).u32(16500).pad(4)
        }
    } else {
        le
    };
    le.bytes(&inval(-5, 5, 2619))
}

#[test]
fn transaction_prepare_per_major() {
    let r = |m| record_origin(1, 0x10, Body::new().main_long(&prepare_body(m).0), Some(2));
    let base = format!("gid tx2: {TS_TEXT}; rels(abort): base/5/16500");
    let invals =
        "; subxacts: 751; relcache init file inval dbid 5 tsid 0; inval msgs: snapshot 2619";
    let origin = format!("; origin: node 2, lsn 0/1000000, at {TS_TEXT}");
    assert_eq!(describe(V14, &r(V14)), format!("{base}{invals}"));
    assert_eq!(
        describe(V15, &r(V15)),
        format!("{base}; abort dropped stats: 2/5/16500{invals}{origin}")
    );
    // 16 and 17 never copy the statistics counts into the parsed record.
    for major in [V16, V17] {
        assert_eq!(
            describe(major, &r(major)),
            format!("{base}{invals}{origin}")
        );
    }
    assert_eq!(
        describe(V18, &r(V18)),
        format!("{base}; abort dropped stats: 2/5/16500{invals}{origin}")
    );
}

#[test]
fn transaction_assignment_and_invalidations() {
    let r = main_only(1, 0x50, Le::new().u32(800).i32(2).u32(801).u32(802));
    assert_eq!(describe(V15, &r), "xtop 800: subxacts: 801 802");
    let r = main_only(1, 0x60, Le::new().i32(1).bytes(&inval(-4, 5, 0)));
    assert_eq!(describe(V15, &r), "; inval msgs: relmap db 5");
    let r = main_only(1, 0x60, Le::new().i32(1).bytes(&inval(-3, 5, 0)));
    assert_eq!(describe(V15, &r), "; inval msgs: smgr");
}

#[test]
fn standby_records() {
    let locks = Le::new()
        .i32(2)
        .u32(724)
        .u32(5)
        .u32(16384)
        .u32(724)
        .u32(5)
        .u32(16387);
    assert_eq!(
        describe(V15, &main_only(8, 0x00, locks)),
        "xid 724 db 5 rel 16384 xid 724 db 5 rel 16387 "
    );
    let running = || {
        Le::new()
            .i32(2)
            .i32(1)
            .u8(1)
            .pad(3)
            .u32(900)
            .u32(890)
            .u32(899)
            .u32(890)
            .u32(895)
            .u32(896)
    };
    assert_eq!(
        describe(V15, &main_only(8, 0x10, running())),
        "nextXid 900 latestCompletedXid 899 oldestRunningXid 890; 2 xacts: 890 895; subxid ovf"
    );
    assert_eq!(
        describe(V16, &main_only(8, 0x10, running())),
        "nextXid 900 latestCompletedXid 899 oldestRunningXid 890; 2 xacts: 890 895; \
         subxid overflowed; 1 subxacts: 896"
    );
    let invals = Le::new()
        .u32(5)
        .u32(1663)
        .u8(0)
        .pad(3)
        .i32(1)
        .bytes(&inval(-2, 5, 0));
    assert_eq!(
        describe(V14, &main_only(8, 0x20, invals)),
        "; inval msgs: relcache 0"
    );
}

#[test]
fn storage_database_and_tablespace_paths() {
    let create = Le::new().rel(1663, 5, 16384).i32(1);
    assert_eq!(
        describe(V15, &main_only(2, 0x10, create)),
        "base/5/16384_fsm"
    );
    let create = Le::new().rel(16390, 5, 16391).i32(0);
    assert_eq!(
        describe(V17, &main_only(2, 0x10, create)),
        "pg_tblspc/16390/PG_17_202406281/5/16391"
    );
    let trunc = Le::new().u32(3).rel(1664, 0, 1262).i32(7);
    assert_eq!(
        describe(V16, &main_only(2, 0x20, trunc)),
        "global/1262 to 3 blocks flags 7"
    );
    let copy = || Le::new().u32(16400).u32(1663).u32(1).u32(1663);
    assert_eq!(
        describe(V14, &main_only(4, 0x00, copy())),
        "copy dir 1663/1 to 1663/16400"
    );
    assert_eq!(
        describe(V15, &main_only(4, 0x00, copy())),
        "copy dir 1663/1 to 1663/16400"
    );
    let wal_log = Le::new().u32(16401).u32(1663);
    assert_eq!(
        describe(V16, &main_only(4, 0x10, wal_log)),
        "create dir 1663/16401"
    );
    let drop = || Le::new().u32(16400).i32(2).u32(1663).u32(16390);
    assert_eq!(
        describe(V14, &main_only(4, 0x10, drop())),
        "dir 1663/16400 16390/16400"
    );
    assert_eq!(
        describe(V15, &main_only(4, 0x20, drop())),
        "dir 1663/16400 16390/16400"
    );
    assert_eq!(describe(V14, &main_only(4, 0x20, drop())), "");
    let ts = Le::new().u32(16390).bytes(b"/srv/ts1\0");
    assert_eq!(describe(V15, &main_only(5, 0x00, ts)), "16390 \"/srv/ts1\"");
    assert_eq!(
        describe(V15, &main_only(5, 0x10, Le::new().u32(16390))),
        "16390"
    );
}

#[test]
fn slru_page_numbers_widened_in_17() {
    assert_eq!(
        describe(V16, &main_only(3, 0x00, Le::new().i32(-3))),
        "page -3"
    );
    assert_eq!(
        describe(V17, &main_only(3, 0x00, Le::new().i64(5_000_000_000))),
        "page 5000000000"
    );
    let t16 = Le::new().i32(12).u32(700).u32(1);
    assert_eq!(
        describe(V16, &main_only(3, 0x10, t16)),
        "page 12; oldestXact 700"
    );
    let t17 = Le::new().i64(12).u32(700).u32(1);
    assert_eq!(
        describe(V18, &main_only(3, 0x10, t17)),
        "page 12; oldestXact 700"
    );
    assert_eq!(describe(V14, &main_only(6, 0x10, Le::new().i32(4))), "4");
    assert_eq!(describe(V17, &main_only(6, 0x00, Le::new().i64(4))), "4");
    let ts16 = Le::new().i32(9).u32(800);
    assert_eq!(
        describe(V16, &main_only(18, 0x10, ts16)),
        "pageno 9, oldestXid 800"
    );
    let ts17 = Le::new().i64(9).u32(800).pad(4);
    assert_eq!(
        describe(V17, &main_only(18, 0x10, ts17)),
        "pageno 9, oldestXid 800"
    );
    assert_eq!(describe(V15, &main_only(18, 0x00, Le::new().i32(2))), "2");
}

#[test]
fn multixact_members_and_truncation() {
    let create = Le::new()
        .u32(12)
        .u32(30)
        .i32(3)
        .u32(900)
        .i32(0)
        .u32(901)
        .i32(5)
        .u32(902)
        .i32(9);
    assert_eq!(
        describe(V15, &main_only(6, 0x20, create)),
        "12 offset 30 nmembers 3: 900 (keysh) 901 (upd) 902 (unk) "
    );
    let trunc = Le::new().u32(1).u32(1).u32(5).u32(0).u32(9);
    assert_eq!(
        describe(V18, &main_only(6, 0x30, trunc)),
        "offsets [1, 5), members [0, 9)"
    );
}

#[test]
fn relmap_sequence_and_small_rmgrs() {
    let relmap = || Le::new().u32(0).u32(1664).i32(524);
    assert_eq!(
        describe(V14, &main_only(7, 0x00, relmap())),
        "database 0 tablespace 1664 size 524"
    );
    assert_eq!(
        describe(V15, &main_only(7, 0x00, Le::new().u32(5).u32(1663).i32(-1))),
        "database 5 tablespace 1663 size -1"
    );
    assert_eq!(
        describe(V14, &main_only(7, 0x00, Le::new().u32(5).u32(1663).i32(-1))),
        "database 5 tablespace 1663 size 4294967295"
    );
    assert_eq!(
        describe(
            V16,
            &main_only(15, 0x00, Le::new().rel(1663, 5, 16450).bytes(&[1; 20]))
        ),
        "rel 1663/5/16450"
    );
    let set = Le::new().u64(0x0001_0000_0200).u16(1).u8(1).pad(5);
    assert_eq!(
        describe(V15, &main_only(19, 0x00, set)),
        "set 1; lsn 1/200; force: 1"
    );
    assert_eq!(
        describe(V15, &main_only(19, 0x10, Le::new().u16(2))),
        "drop 2"
    );
    let generic = Le::new().u16(40).u16(2).bytes(&[1, 2]).u16(100).u16(0);
    assert_eq!(
        describe(V15, &main_only(20, 0x00, generic)),
        "offset 40, length 2; offset 100, length 0"
    );
    let msg = Le::new()
        .u32(5)
        .u8(0)
        .pad(3)
        .u64(4)
        .u64(3)
        .bytes(b"pfx\0")
        .bytes(&[0x00, 0xFF, 0x10]);
    assert_eq!(
        describe(V15, &main_only(21, 0x00, msg)),
        "non-transactional, prefix \"pfx\"; payload (3 bytes): 00 FF 10"
    );
    // Custom resource managers: pg_waldump's stand-in.
    assert_eq!(
        describe(V15, &main_only(130, 0x00, Le::new().u8(1))),
        "rmid: 130"
    );
}

fn heap_block(data: &[u8]) -> Body {
    Body::new().block(0, 0, Some(rel(5, 16384)), 0, None, data)
}

#[test]
fn heap_wording_changed_in_16() {
    let insert = || Le::new().u16(5).u8(0x01).pad(1);
    assert_eq!(
        describe(V15, &main_only(10, 0x00, insert())),
        "off 5 flags 0x01"
    );
    assert_eq!(
        describe(V16, &main_only(10, 0x80, insert())),
        "off: 5, flags: 0x01"
    );
    let delete = || Le::new().u32(750).u16(3).u8(0x01 | 0x10).u8(0x02);
    assert_eq!(
        describe(V14, &main_only(10, 0x10, delete())),
        "off 3 flags 0x02 IS_MULTI KEYS_UPDATED "
    );
    assert_eq!(
        describe(V17, &main_only(10, 0x10, delete())),
        "xmax: 750, off: 3, infobits: [IS_MULTI, KEYS_UPDATED], flags: 0x02"
    );
    let update = || {
        Le::new()
            .u32(751)
            .u16(4)
            .u8(0)
            .u8(0x10)
            .u32(0)
            .u16(9)
            .pad(2)
    };
    assert_eq!(
        describe(V15, &main_only(10, 0x40, update())),
        "off 4 xmax 751 flags 0x10 ; new off 9 xmax 0"
    );
    assert_eq!(
        describe(V16, &main_only(10, 0x20, update())),
        "old_xmax: 751, old_off: 4, old_infobits: [], flags: 0x10, new_xmax: 0, new_off: 9"
    );
    let trunc = || {
        Le::new()
            .u32(5)
            .u32(2)
            .u8(0x03)
            .pad(3)
            .u32(16384)
            .u32(16390)
    };
    assert_eq!(
        describe(V15, &main_only(10, 0x30, trunc())),
        "cascade restart_seqs nrelids 2 relids 16384 16390"
    );
    assert_eq!(
        describe(V16, &main_only(10, 0x30, trunc())),
        "flags: [CASCADE, RESTART_SEQS], nrelids: 2, relids: [16384, 16390]"
    );
    let lock = || Le::new().u32(752).u16(6).u8(0x02 | 0x04).u8(0x01);
    assert_eq!(
        describe(V15, &main_only(10, 0x60, lock())),
        "off 6: xid 752: flags 0x01 LOCK_ONLY EXCL_LOCK "
    );
    assert_eq!(
        describe(V16, &main_only(10, 0x60, lock())),
        "xmax: 752, off: 6, infobits: [LOCK_ONLY, EXCL_LOCK], flags: 0x01"
    );
    assert_eq!(
        describe(V15, &main_only(10, 0x50, Le::new().u16(8))),
        "off 8"
    );
    assert_eq!(
        describe(V16, &main_only(10, 0x50, Le::new().u16(8))),
        "off: 8"
    );
    let inplace = Le::new()
        .u16(8)
        .pad(2)
        .u32(5)
        .u32(1663)
        .u8(1)
        .pad(3)
        .i32(1)
        .bytes(&inval(-2, 5, 16384));
    assert_eq!(
        describe(V18, &main_only(10, 0x70, inplace)),
        "off: 8; relcache init file inval dbid 5 tsid 1663; inval msgs: relcache 16384"
    );
    assert_eq!(
        describe(V17, &main_only(10, 0x70, Le::new().u16(8))),
        "off: 8"
    );
}

fn offsets_bytes(offsets: &[u16]) -> Vec<u8> {
    offsets.iter().flat_map(|o| o.to_le_bytes()).collect()
}

#[test]
fn heap2_prune_vacuum_freeze_before_17() {
    let prune = || Le::new().u32(760).u16(1).u16(2).u8(0).pad(1);
    assert_eq!(
        describe(V15, &record_with(9, 0x10, heap_block(&[]).main(&prune().0))),
        "latestRemovedXid 760 nredirected 1 ndead 2"
    );
    let block = offsets_bytes(&[3, 4, 7, 8, 10, 11, 12]);
    let r = record_with(9, 0x10, heap_block(&block).main(&prune().0));
    assert_eq!(
        describe(V16, &r),
        "snapshotConflictHorizon: 760, nredirected: 1, ndead: 2, nunused: 3, redirected: [3->4], \
         dead: [7, 8], unused: [10, 11, 12]"
    );
    let r = record_with(
        9,
        0x20,
        heap_block(&offsets_bytes(&[5, 6])).main(&Le::new().u16(2).0),
    );
    assert_eq!(describe(V15, &r), "nunused 2");
    assert_eq!(describe(V16, &r), "nunused: 2, unused: [5, 6]");
    let r = record_with(
        9,
        0x30,
        Body::new().main(&Le::new().u32(770).u16(3).pad(2).0),
    );
    assert_eq!(describe(V15, &r), "cutoff xid 770 ntuples 3");
    // 16: two plans; their offsets follow the plans.
    let plans = Le::new()
        .u32(0)
        .u16(0x0800)
        .u16(0x0B00)
        .u8(0)
        .pad(1)
        .u16(2)
        .u32(771)
        .u16(0)
        .u16(0x0100)
        .u8(0)
        .pad(1)
        .u16(1)
        .bytes(&offsets_bytes(&[1, 2, 9]));
    let r = record_with(
        9,
        0x30,
        heap_block(&plans.0).main(&Le::new().u32(770).u16(2).u8(0).pad(1).0),
    );
    assert_eq!(
        describe(V16, &r),
        "snapshotConflictHorizon: 770, nplans: 2, plans: [{ xmax: 0, infomask: 2816, infomask2: 2048, \
         ntuples: 2, offsets: [1, 2] }, { xmax: 771, infomask: 256, infomask2: 0, ntuples: 1, \
         offsets: [9] }]"
    );
}

#[test]
fn heap2_prune_records_of_17() {
    // flags: catalog rel, conflict horizon, freeze plans, redirections, dead, unused.
    let flags: u8 = (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7);
    let main = Le::new().u8(1).u8(flags).u32(780);
    let block = Le::new()
        .u16(1) // nplans
        .pad(2)
        .u32(0)
        .u16(0x0800)
        .u16(0x0B00)
        .u8(0)
        .pad(1)
        .u16(2)
        .u16(1) // redirections
        .bytes(&offsets_bytes(&[3, 4]))
        .u16(2) // dead
        .bytes(&offsets_bytes(&[7, 8]))
        .u16(1) // unused
        .bytes(&offsets_bytes(&[10]))
        .bytes(&offsets_bytes(&[1, 2])); // the plan's offsets
    let r = record_with(9, 0x20, heap_block(&block.0).main(&main.0));
    assert_eq!(
        describe(V17, &r),
        "snapshotConflictHorizon: 780, isCatalogRel: T, nplans: 1, nredirected: 1, ndead: 2, \
         nunused: 1, plans: [{ xmax: 0, infomask: 2816, infomask2: 2048, ntuples: 2, offsets: [1, 2] }], \
         redirected: [3->4], dead: [7, 8], unused: [10]"
    );
    // Without a horizon the description starts with the separator, as the server's does.
    let r = record_with(
        9,
        0x10,
        heap_block(&Le::new().u16(1).bytes(&offsets_bytes(&[5])).0)
            .main(&Le::new().u8(0).u8(1 << 7).0),
    );
    assert_eq!(
        describe(V18, &r),
        ", isCatalogRel: F, nplans: 0, nredirected: 0, ndead: 0, nunused: 1, unused: [5]"
    );
}

#[test]
fn heap2_visible_multi_insert_lock_updated_new_cid() {
    let vis = || Le::new().u32(790).u8(0x03).pad(3);
    assert_eq!(
        describe(V14, &main_only(9, 0x40, vis())),
        "cutoff xid 790 flags 0x03"
    );
    assert_eq!(
        describe(V16, &main_only(9, 0x40, vis())),
        "snapshotConflictHorizon: 790, flags: 0x03"
    );
    let multi = || Le::new().u8(0x02).pad(1).u16(2).u16(4).u16(5);
    let r = record_with(9, 0x50, heap_block(b"tuples").main(&multi().0));
    assert_eq!(describe(V15, &r), "2 tuples flags 0x02");
    assert_eq!(
        describe(V16, &r),
        "ntuples: 2, flags: 0x02, offsets: [4, 5]"
    );
    let r = record_with(9, 0xD0, heap_block(b"tuples").main(&multi().0));
    assert_eq!(describe(V17, &r), "ntuples: 2, flags: 0x02");
    let locked = || Le::new().u32(795).u16(2).u8(0x08).u8(0);
    assert_eq!(
        describe(V15, &main_only(9, 0x60, locked())),
        "off 2: xmax 795: flags 0x00 KEYSHR_LOCK "
    );
    assert_eq!(
        describe(V16, &main_only(9, 0x60, locked())),
        "xmax: 795, off: 2, infobits: [KEYSHR_LOCK], flags: 0x00"
    );
    let cid = || {
        Le::new()
            .u32(796)
            .u32(0)
            .u32(4_294_967_295)
            .u32(0)
            .rel(1663, 5, 1259)
            .u16(1)
            .u16(2)
            .u16(3)
            .pad(2)
    };
    assert_eq!(
        describe(V15, &main_only(9, 0x70, cid())),
        "rel 1663/5/1259; tid 65538/3; cmin: 0, cmax: 4294967295, combo: 0"
    );
    assert_eq!(
        describe(V16, &main_only(9, 0x70, cid())),
        "rel: 1663/5/1259, tid: 65538/3, cmin: 0, cmax: 4294967295, combo: 0"
    );
}

#[test]
fn btree_records_per_major() {
    assert_eq!(
        describe(V15, &main_only(11, 0x00, Le::new().u16(7))),
        "off 7"
    );
    assert_eq!(
        describe(V16, &main_only(11, 0x50, Le::new().u16(7))),
        "off: 7"
    );
    let split = || Le::new().u32(1).u16(100).u16(101).u16(0).pad(2);
    assert_eq!(
        describe(V14, &main_only(11, 0x30, split())),
        "level 1, firstrightoff 100, newitemoff 101, postingoff 0"
    );
    assert_eq!(
        describe(V16, &main_only(11, 0x40, split())),
        "level: 1, firstrightoff: 100, newitemoff: 101, postingoff: 0"
    );
    assert_eq!(
        describe(V15, &main_only(11, 0x60, Le::new().u16(4))),
        "nintervals 4"
    );
    // VACUUM with block data: deleted offsets, updated offsets, xl_btree_update entries.
    let block = Le::new()
        .bytes(&offsets_bytes(&[2, 3]))
        .bytes(&offsets_bytes(&[9]))
        .u16(2)
        .bytes(&offsets_bytes(&[0, 5]));
    let r = record_with(
        11,
        0xC0,
        Body::new()
            .block(0, 0, Some(rel(5, 16390)), 1, None, &block.0)
            .main(&Le::new().u16(2).u16(1).0),
    );
    assert_eq!(describe(V15, &r), "ndeleted 2; nupdated 1");
    assert_eq!(
        describe(V16, &r),
        "ndeleted: 2, nupdated: 1, deleted: [2, 3], updated: [{ off: 9, nptids: 2, ptids: [0, 5] }]"
    );
    let delete = || Le::new().u32(800).u16(1).u16(0).u8(1).pad(1);
    let r = record_with(
        11,
        0x70,
        Body::new()
            .block(0, 0, Some(rel(5, 16390)), 1, None, &offsets_bytes(&[4]))
            .main(&delete().0),
    );
    assert_eq!(
        describe(V14, &r),
        "latestRemovedXid 800; ndeleted 1; nupdated 0"
    );
    assert_eq!(
        describe(V16, &r),
        "snapshotConflictHorizon: 800, ndeleted: 1, nupdated: 0, deleted: [4], updated: []"
    );
    assert_eq!(
        describe(V17, &r),
        "snapshotConflictHorizon: 800, ndeleted: 1, nupdated: 0, isCatalogRel: T, deleted: [4], updated: []"
    );
    let halfdead = Le::new().u16(3).pad(2).u32(10).u32(9).u32(11).u32(2);
    assert_eq!(
        describe(V15, &main_only(11, 0xB0, halfdead)),
        "topparent 2; leaf 10; left 9; right 11"
    );
    let unlink = || {
        Le::new()
            .u32(9)
            .u32(11)
            .u32(0)
            .pad(4)
            .u64((1 << 32) | 820)
            .u32(9)
            .u32(11)
            .u32(0)
    };
    assert_eq!(
        describe(V15, &main_only(11, 0x80, unlink())),
        "left 9; right 11; level 0; safexid 1:820; leafleft 9; leafright 11; leaftopparent 0"
    );
    assert_eq!(
        describe(V16, &main_only(11, 0x90, unlink())),
        "left: 9, right: 11, level: 0, safexid: 1:820, leafleft: 9, leafright: 11, leaftopparent: 0"
    );
    assert_eq!(
        describe(V15, &main_only(11, 0xA0, Le::new().u32(3).u32(2))),
        "lev 2"
    );
    assert_eq!(
        describe(V16, &main_only(11, 0xA0, Le::new().u32(3).u32(2))),
        "level: 2"
    );
    let reuse = || Le::new().rel(1663, 5, 16390).u32(7).u64(830).u8(0).pad(7);
    assert_eq!(
        describe(V15, &main_only(11, 0xD0, reuse())),
        "rel 1663/5/16390; latestRemovedXid 0:830"
    );
    assert_eq!(
        describe(V16, &main_only(11, 0xD0, reuse())),
        "rel: 1663/5/16390, snapshotConflictHorizon: 0:830"
    );
    assert_eq!(
        describe(V18, &main_only(11, 0xD0, reuse())),
        "rel: 1663/5/16390, snapshotConflictHorizon: 0:830, isCatalogRel: F"
    );
    let meta = Le::new()
        .u32(4)
        .u32(3)
        .u32(1)
        .u32(3)
        .u32(1)
        .u32(12)
        .u8(1)
        .pad(3);
    let r = record_with(
        11,
        0xE0,
        Body::new().block(0, 0, Some(rel(5, 16390)), 0, None, &meta.0),
    );
    assert_eq!(describe(V15, &r), "last_cleanup_num_delpages 12");
    assert_eq!(describe(V17, &r), "last_cleanup_num_delpages: 12");
}

#[test]
fn every_builtin_is_described() {
    assert!((0..=21).map(RmgrId).all(is_described));
    assert!(!is_described(RmgrId(130)));
}

#[test]
fn hash_records() {
    let meta = Le::new()
        .bytes(&47175f64.to_le_bytes())
        .u32(450)
        .u16(307)
        .pad(2);
    assert_eq!(
        describe(V15, &main_only(12, 0x00, meta)),
        "num_tuples 47175, fillfactor 307"
    );
    let split = Le::new().u32(9).u16(1).u16(2).u8(0x02).pad(3);
    assert_eq!(
        describe(V15, &main_only(12, 0x40, split)),
        "new_bucket 9, meta_page_masks_updated F, issplitpoint_changed T"
    );
    let squeeze = Le::new().u32(3).u32(4294967295).u16(2).u8(1).u8(0);
    assert_eq!(
        describe(V15, &main_only(12, 0x80, squeeze)),
        "prevblkno 3, nextblkno 4294967295, ntups 2, is_primary T"
    );
    let vac15 = Le::new().u32(900).i32(4);
    assert_eq!(
        describe(V15, &main_only(12, 0xC0, vac15)),
        "ntuples 4, latestRemovedXid 900"
    );
    let vac = || Le::new().u32(900).u16(4).u8(1).pad(1);
    assert_eq!(
        describe(V16, &main_only(12, 0xC0, vac())),
        "ntuples 4, snapshotConflictHorizon 900"
    );
    assert_eq!(
        describe(V17, &main_only(12, 0xC0, vac())),
        "ntuples 4, snapshotConflictHorizon 900, isCatalogRel T"
    );
    let upd = Le::new().bytes(&1234567f64.to_le_bytes());
    assert_eq!(
        describe(V14, &main_only(12, 0xB0, upd)),
        "ntuples 1.23457e+06"
    );
}

#[test]
fn gin_records() {
    // Insert on an internal data page, block 0 carrying a PostingItem.
    let item = Le::new().u16(3).u16(0).u16(7).u16(1).u16(2).u16(5);
    let main = Le::new().u16(0x01).u16(0).u16(10).u16(0).u16(11);
    let r = record_with(
        13,
        0x20,
        Body::new()
            .block(0, 0, Some(rel(5, 1)), 2, None, &item.0)
            .main(&main.0),
    );
    assert_eq!(
        describe(V15, &r),
        "isdata: T isleaf: F children: 10/11 pitem: 7-65538/5"
    );
    // Insert on a leaf data page: recompressed segments.
    let leaf = Le::new()
        .u16(3)
        .u8(0)
        .u8(4) // add items
        .u16(1)
        .pad(6)
        .u8(1)
        .u8(2) // insert: a posting list of 3 bytes (padded to 4)
        .pad(6)
        .u16(3)
        .pad(4)
        .u8(2)
        .u8(1); // delete
    let r = record_with(
        13,
        0x20,
        Body::new()
            .block(0, 0, Some(rel(5, 1)), 2, None, &leaf.0)
            .main(&Le::new().u16(0x03).0),
    );
    assert_eq!(
        describe(V16, &r),
        "isdata: T isleaf: T 3 segments: 0 (add 1 items) 1 (insert) 2 (delete)"
    );
    let entry = Le::new().u16(4).u8(1).pad(1);
    let r = record_with(
        13,
        0x20,
        Body::new()
            .block(0, 0, Some(rel(5, 1)), 2, None, &entry.0)
            .main(&Le::new().u16(0x02).0),
    );
    assert_eq!(describe(V15, &r), "isdata: F isleaf: T isdelete: T");
    let split = Le::new()
        .rel(1663, 5, 1)
        .u32(0)
        .u32(0)
        .u32(0)
        .u16(0x06)
        .pad(2);
    assert_eq!(
        describe(V15, &main_only(13, 0x30, split)),
        "isrootsplit: T isdata: F isleaf: T"
    );
    let delete_list = Le::new().pad(56).i32(3);
    assert_eq!(
        describe(V15, &main_only(13, 0x80, delete_list)),
        "ndeleted: 3"
    );
}

#[test]
fn gist_spgist_and_brin_records() {
    let reuse = || Le::new().rel(1663, 5, 1).u32(4).u64(7).u8(1).pad(7);
    assert_eq!(
        describe(V15, &main_only(14, 0x20, reuse())),
        "rel 1663/5/1; blk 4; latestRemovedXid 0:7"
    );
    assert_eq!(
        describe(V17, &main_only(14, 0x20, reuse())),
        "rel 1663/5/1; blk 4; snapshotConflictHorizon 0:7, isCatalogRel T"
    );
    let delete = || Le::new().u32(70).u16(2).u8(0).pad(1);
    assert_eq!(
        describe(V16, &main_only(14, 0x10, delete())),
        "delete: snapshotConflictHorizon 70, nitems: 2"
    );
    let split = Le::new()
        .u32(1)
        .pad(4)
        .u64(0)
        .u8(1)
        .pad(1)
        .u16(3)
        .u8(0)
        .pad(3);
    assert_eq!(
        describe(V15, &main_only(14, 0x30, split)),
        "page_split: splits to 3 pages"
    );
    let page_delete = Le::new().u64((2 << 32) | 5).u16(9).pad(6);
    assert_eq!(
        describe(V15, &main_only(14, 0x60, page_delete)),
        "deleteXid 2:5; downlink 9"
    );
    let add_leaf = Le::new().u8(1).u8(0).u16(5).u16(0).u16(7).u16(2);
    assert_eq!(
        describe(V15, &main_only(16, 0x10, add_leaf)),
        "off: 5, headoff: 0, parentoff: 7, nodeI: 2 (newpage)"
    );
    let pick = Le::new()
        .u8(1)
        .pad(1)
        .u16(2)
        .u16(3)
        .u8(0)
        .u8(0)
        .u16(4)
        .u8(0)
        .u8(1)
        .u8(1)
        .pad(1)
        .u16(6)
        .u16(0);
    assert_eq!(
        describe(V15, &main_only(16, 0x50, pick)),
        "ndelete: 2, ninsert: 3, inneroff: 4, parentoff: 6, nodeI: 0 (innerIsParent) (nulls) (isRootSplit)"
    );
    let redirect = || Le::new().u16(1).u16(8).u32(990).u8(0).pad(3);
    assert_eq!(
        describe(V15, &main_only(16, 0x80, redirect())),
        "ntoplaceholder: 1, firstplaceholder: 8, newestredirectxid: 990"
    );
    assert_eq!(
        describe(V18, &main_only(16, 0x80, redirect())),
        "ntoplaceholder: 1, firstplaceholder: 8, snapshotConflictHorizon: 990, isCatalogRel: F"
    );
    assert_eq!(
        describe(V15, &main_only(17, 0x00, Le::new().u32(128).u16(1).pad(2))),
        "v1 pagesPerRange 128"
    );
    let update = Le::new().u16(3).pad(2).u32(10).u32(128).u16(4).pad(2);
    assert_eq!(
        describe(V15, &main_only(17, 0xA0, update)),
        "heapBlk 10 pagesPerRange 128 old offnum 3, new offnum 4"
    );
}
