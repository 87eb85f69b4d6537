//! Failover: `pgwalrus receive` follows promotions across servers and timelines.
//!
//! * Two failovers in a row (primary P → its standby S1 → S1's cascading standby S2, so
//!   timelines 1 → 2 → 3), with several hosts and `target_session_attrs=read-write` in the
//!   conninfo and `--create-slot --if-not-exists`: pgwalrus reconnects to each promoted
//!   server, creates the slot there and says where it streams from. Meanwhile a second
//!   receiver streams from the cascading standby S2 (through its upstream's promotion and
//!   its own), and a third, stopped on timeline 1, is started again against S2 on timeline
//!   3. Oracles: the servers' `pg_wal` files and history files, the two other archives, and
//!   PostgreSQL's own recovery from a base backup taken on timeline 1 with a plain `cp` as
//!   `restore_command` and only the archive's files, to the newest timeline.
//! * An archive that ran ahead of the fork on the old primary: pgwalrus pointed at the
//!   promoted standby continues on timeline 2 from the fork's segment, warns about the
//!   old timeline's files past the fork and leaves them alone; a restart before timeline 2
//!   has overtaken them resumes where timeline 2's files end; recovery follows timeline 2.
//! * A history file that disagrees with the server's (two standbys of one primary promoted
//!   to two different timelines 2) is refused with exit 3, naming both; so is an archive on
//!   a timeline outside the server's history (timeline 2 against a timeline 3 that branched
//!   off timeline 1); nothing changes.
//!
//! Standbys are copies of the cleanly stopped primary with `standby.signal` and
//! `primary_conninfo` (every major's harness has only `initdb`, `pg_ctl` and `postgres`).
//!
//! No `pg_switch_wal()` runs upstream of a standby while pgwalrus streams from that
//! standby. A cascading walsender may send the padding after a switch record before the
//! standby's walreceiver has written it: replaying the switch record moves the standby's
//! replay position, which bounds what it sends, to the end of the segment at once. The
//! archive then holds whatever the standby's (recycled) file had there — never read by
//! recovery, but not byte-identical to the standby's `pg_wal` once the walreceiver has
//! written the zeros. Seen on PostgreSQL 15: in a segment whose switch record ended at
//! offset 0x8A1E0, the bytes from 0xCA000 to the end were an old segment's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pgwalrus_testkit::{Cluster, TRUST_USER, give_to_server_user, wait_until};

use crate::receive_support::{
    Lsn, PATIENCE, listing, parse_segment, psql_background, receive_into, segment_holds,
    segment_name, small_cluster, snapshot, snapshot_names,
};
use crate::support::{Background, Guarded, Home, pgwalrus};
use crate::support::{copy_tree, touch_for_server};

const SLOT: &str = "walrus_failover";
/// Segment size of [`small_cluster`].
const SEG: u64 = 1 << 20;
/// How long a recovery of a few dozen 1 MiB segments may take.
const RECOVERY: Duration = Duration::from_secs(60);
/// What recovery must reproduce: rows and sums of the test's tables.
const STATE: &str = "SELECT (SELECT count(*) FROM marks) || ' marks, sum ' || (SELECT coalesce(sum(id), 0) FROM marks) \
     || ', ' || (SELECT count(*) FROM load) || ' load rows, ' || (SELECT md5(coalesce(string_agg(t, '' ORDER BY i, t), '')) FROM load)";

/// A primary with tables `marks` and `load` and a first row.
fn primary() -> Cluster {
    let p = small_cluster().start();
    let seg: u64 = p
        .psql("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")
        .parse()
        .unwrap();
    assert_eq!(seg, SEG);
    p.psql(
        "CREATE TABLE marks (id int PRIMARY KEY, note text);\n\
         CREATE TABLE load (i int, t text);\n\
         INSERT INTO marks VALUES (1, 'timeline 1, before the base backup');",
    );
    p
}

/// Copies of the primary, cleanly stopped for a moment: the base backup (recovery starts
/// from it) and the source of its standbys (with `standby.signal`).
struct Copies {
    base: PathBuf,
    standby: PathBuf,
    /// The base backup's checkpoint (its shutdown checkpoint).
    checkpoint: Lsn,
}

/// Stops the primary (after a segment switch, so that its shutdown checkpoint, and the
/// position a receiver started right after the restart asks for, lie in one fresh
/// segment), copies it and starts it again.
fn stop_and_copy(p: &Cluster) -> Copies {
    p.switch_wal();
    p.stop();
    let base = p.root_dir().join("base");
    copy_tree(p.data_dir(), &base);
    let standby = p.root_dir().join("standby-source");
    copy_tree(p.data_dir(), &standby);
    touch_for_server(&standby.join("standby.signal"));
    p.start();
    let checkpoint = Lsn::parse(&p.psql("SELECT checkpoint_lsn FROM pg_control_checkpoint()"));
    Copies {
        base,
        standby,
        checkpoint,
    }
}

/// The archive starts at or before the base backup's checkpoint, so recovery of the base
/// can use it alone.
#[track_caller]
fn assert_covers_base(archive: &Path, copies: &Copies) {
    let first = snapshot_names(archive)
        .iter()
        .filter_map(|n| parse_segment(n, SEG))
        .map(|s| s.segno)
        .min()
        .expect("segments");
    assert!(
        first * SEG <= copies.checkpoint.0,
        "{} starts at segment {first:X}, after the base backup's checkpoint {}",
        archive.display(),
        copies.checkpoint
    );
}

/// A standby started from `source`, streaming from `upstream` (which may be a standby).
fn standby_of(upstream: &Cluster, source: &Path, name: &str) -> Cluster {
    let c = Cluster::builder(upstream.pg())
        .from_data_dir(source)
        .setting(
            "primary_conninfo",
            format!(
                "host=127.0.0.1 port={} user={TRUST_USER} application_name={name}",
                upstream.port()
            ),
        )
        .start();
    assert_eq!(c.psql("SELECT pg_is_in_recovery()"), "t");
    c
}

/// Waits until `standby` has replayed up to `lsn`.
#[track_caller]
fn wait_replayed(standby: &Cluster, lsn: Lsn) {
    let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
    assert!(
        wait_until(PATIENCE, || standby.psql(&sql) == "t"),
        "the standby did not replay up to {lsn}\n{}",
        standby.log()
    );
}

/// Promotes `c` and waits until it writes on timeline `tli`; returns the switch point from
/// its history file.
#[track_caller]
fn promote(c: &Cluster, tli: u32) -> Lsn {
    assert_eq!(c.psql("SELECT pg_promote()"), "t", "{}", c.log());
    let name = c.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    assert!(name.starts_with(&format!("{tli:08X}")), "{name}");
    *switch_points(c, tli).last().expect("a switch point")
}

/// The switch points of `tli`'s history file in `c`'s `pg_wal`, oldest first (parsed here
/// by hand, not with pgwalrus's parser).
fn switch_points(c: &Cluster, tli: u32) -> Vec<Lsn> {
    let path = c.pg_wal_dir().join(format!("{tli:08X}.history"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(Lsn::parse)
        .collect()
}

fn lsn_of(c: &Cluster) -> Lsn {
    Lsn::parse(&c.current_wal_lsn())
}

/// Inserts `marks` rows `ids` and about `kib` KiB of `load`; returns the position after.
fn write(c: &Cluster, ids: std::ops::RangeInclusive<u32>, note: &str, kib: u64) -> Lsn {
    let rows = kib * 1024 / 540 + 1;
    c.psql(&format!(
        "INSERT INTO marks SELECT g, '{note}' FROM generate_series({}, {}) g;\n\
         INSERT INTO load SELECT g, repeat(md5(g::text || '{note}'), 15) FROM generate_series(1, {rows}) g;",
        ids.start(),
        ids.end()
    ));
    lsn_of(c)
}

/// Forces a segment switch; returns the start of the next segment.
fn switch(c: &Cluster) -> Lsn {
    c.switch_wal();
    lsn_of(c)
}

/// Single-row transactions into `marks` from `first` on, a few milliseconds apart, until
/// the server goes away or `count` are done: load while a failover happens.
fn background_load(c: &Cluster, first: u32, count: u32) -> Guarded {
    let last = first + count - 1;
    let load = psql_background(
        c,
        &format!(
            "DO $$ BEGIN FOR i IN {first}..{last} LOOP \
             INSERT INTO marks VALUES (i, 'load during a failover'); COMMIT; PERFORM pg_sleep(0.003); \
             END LOOP; END $$;"
        ),
        "walrus_load",
    );
    let sql = format!("SELECT count(*) >= 20 FROM marks WHERE id >= {first}");
    assert!(
        wait_until(PATIENCE, || c.psql(&sql) == "t"),
        "the load did not start"
    );
    load
}

#[track_caller]
fn wait_log(r: &Background, what: &str) {
    assert!(
        wait_until(PATIENCE, || r.stderr().contains(what)),
        "the receiver did not log {what:?}\n--- receiver stderr\n{}",
        r.stderr()
    );
}

/// Waits until `archive` holds `server`'s timeline `tli` up to `lsn` (a segment boundary:
/// the segment before it complete).
#[track_caller]
fn wait_holds(archive: &Path, server: &Cluster, tli: u32, lsn: Lsn, r: &Background) {
    assert!(
        wait_until(PATIENCE, || segment_holds(archive, server, SEG, tli, lsn)),
        "{} does not hold timeline {tli} up to {lsn}: {}\n--- receiver stderr\n{}",
        archive.display(),
        listing(&snapshot(archive)),
        r.stderr()
    );
}

fn stop(mut r: Background) {
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
}

fn new_archive(c: &Cluster, name: &str) -> PathBuf {
    let dir = c.root_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every complete segment of `archive` is byte-identical to the `pg_wal` file of the server
/// that wrote its timeline (`owners`: timeline → server). Returns how many were compared.
#[track_caller]
fn assert_same_as_servers(archive: &Path, owners: &[(u32, &Cluster)]) -> usize {
    let mut compared = 0;
    for name in snapshot_names(archive) {
        let Some(seg) = parse_segment(&name, SEG).filter(|s| !s.partial) else {
            continue;
        };
        let (_, owner) = owners
            .iter()
            .find(|(tli, _)| *tli == seg.tli)
            .unwrap_or_else(|| panic!("{name}: a timeline no server wrote"));
        let ours = std::fs::read(archive.join(&name)).unwrap();
        assert_eq!(ours.len() as u64, SEG, "{name} is not one segment long");
        if let Ok(theirs) = std::fs::read(owner.pg_wal_dir().join(&name)) {
            let at = ours.iter().zip(&theirs).position(|(a, b)| a != b);
            assert!(
                at.is_none(),
                "{}/{name} differs from the server's pg_wal file at byte {at:?}",
                archive.display()
            );
            compared += 1;
        }
    }
    compared
}

/// Complete segments of the same name in both archives are byte-identical. Returns how
/// many were compared.
#[track_caller]
fn assert_same_files(a: &Path, b: &Path) -> usize {
    let mut compared = 0;
    for name in snapshot_names(a) {
        if parse_segment(&name, SEG).is_none_or(|s| s.partial) {
            continue;
        }
        if let Ok(theirs) = std::fs::read(b.join(&name)) {
            assert!(
                std::fs::read(a.join(&name)).unwrap() == theirs,
                "{name} differs between {} and {}",
                a.display(),
                b.display()
            );
            compared += 1;
        }
    }
    compared
}

/// Along the newest timeline's history (`begins`: each timeline and the first segment
/// recovery reads from it, oldest first), every segment from the archive's first to its
/// last is there complete on the timeline recovery reads it from; only the last may be a
/// `.partial`. Returns the number of segments on that path.
#[track_caller]
fn assert_no_gap(archive: &Path, begins: &[(u32, u64)]) -> u64 {
    let names = snapshot_names(archive);
    let segs: Vec<_> = names.iter().filter_map(|n| parse_segment(n, SEG)).collect();
    let tli_of = |segno: u64| {
        begins
            .iter()
            .rev()
            .find(|(_, begin)| *begin <= segno)
            .map(|(tli, _)| *tli)
            .expect("a timeline")
    };
    let path: Vec<u64> = segs
        .iter()
        .filter(|s| s.tli == tli_of(s.segno))
        .map(|s| s.segno)
        .collect();
    let (first, last) = (
        *path.iter().min().expect("segments"),
        *path.iter().max().expect("segments"),
    );
    for segno in first..=last {
        let name = segment_name(tli_of(segno), segno, SEG);
        let complete = names.contains(&name);
        let partial = names.contains(&format!("{name}.partial"));
        assert!(
            complete || (segno == last && partial),
            "{} lacks {name} (first {first:X}, last {last:X}): {}",
            archive.display(),
            listing(&snapshot(archive))
        );
    }
    last - first + 1
}

/// The archive's history files are byte-identical to `server`'s.
#[track_caller]
fn assert_histories(archive: &Path, server: &Cluster, tlis: &[u32]) {
    for tli in tlis {
        let name = format!("{tli:08X}.history");
        let ours = std::fs::read(archive.join(&name))
            .unwrap_or_else(|e| panic!("{name} in {}: {e}", archive.display()));
        assert_eq!(
            ours,
            std::fs::read(server.pg_wal_dir().join(&name)).unwrap(),
            "{name} differs from the server's"
        );
    }
}

/// PostgreSQL's recovery of `base` (a copy of the stopped primary, its `pg_wal` emptied)
/// from `archive` alone, `cp` as `restore_command`, to the newest timeline; waits until it
/// has promoted and returns it.
fn recover_latest(pg_of: &Cluster, base: &Path, archive: &Path) -> Cluster {
    for entry in std::fs::read_dir(base.join("pg_wal")).unwrap().flatten() {
        if entry.file_type().unwrap().is_file() {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    touch_for_server(&base.join("recovery.signal"));
    give_to_server_user(archive);
    let c = Cluster::builder(pg_of.pg())
        .from_data_dir(base)
        .setting(
            "restore_command",
            format!("cp '{}/%f' '%p'", archive.display()),
        )
        .setting("recovery_target_timeline", "latest")
        .start();
    assert!(
        wait_until(RECOVERY, || c
            .try_psql("SELECT pg_is_in_recovery()")
            .is_ok_and(|r| r == "f")),
        "recovery did not end\n{}",
        c.log()
    );
    c
}

/// The timeline of the recovered server's latest checkpoint (after one is forced).
fn checkpoint_timeline(c: &Cluster) -> String {
    c.psql("CHECKPOINT;\nSELECT timeline_id FROM pg_control_checkpoint()")
}

#[test]
fn receive_follows_two_failovers_to_promoted_standbys_and_recovery_reaches_timeline_3() {
    let p = primary();
    let copies = stop_and_copy(&p);
    let s1 = standby_of(&p, &copies.standby, "s1");
    let s2 = standby_of(&s1, &copies.standby, "s2");
    let home = Home::new();
    let (a, b, c) = (
        new_archive(&p, "archive-a"),
        new_archive(&p, "archive-b"),
        new_archive(&p, "archive-c"),
    );
    let hosts = format!(
        "host=127.0.0.1,127.0.0.1,127.0.0.1 port={},{},{} user={TRUST_USER} target_session_attrs=read-write",
        p.port(),
        s1.port(),
        s2.port()
    );
    let slot_args = ["-S", SLOT, "--create-slot", "--if-not-exists"];
    // A: the failover receiver. B: from the cascading standby. C: stopped on timeline 1.
    let ra = receive_into(&home, &a, &hosts, &slot_args);
    let rc = receive_into(&home, &c, &p.conninfo(TRUST_USER), &[]);
    let rb = receive_into(&home, &b, &s2.conninfo(TRUST_USER), &[]);
    let (pa, s1a, s2a) = (
        format!("127.0.0.1:{}", p.port()),
        format!("127.0.0.1:{}", s1.port()),
        format!("127.0.0.1:{}", s2.port()),
    );
    wait_log(&ra, &format!("created replication slot \"{SLOT}\" on {pa}"));
    for r in [&ra, &rb, &rc] {
        wait_log(r, "starting log streaming at");
    }

    // Timeline 1 on P.
    // No segment switches upstream of S2 while B streams from it (see the module
    // documentation): positions inside segments instead.
    let end1 = write(&p, 2..=300, "timeline 1", 1500);
    wait_holds(&a, &p, 1, end1, &ra);
    wait_holds(&c, &p, 1, end1, &rc);
    assert_covers_base(&a, &copies);
    stop(rc);
    write(&p, 301..=400, "timeline 1, after C stopped", 300);

    // Failover 1: S1 is promoted while P is under load, then P stops.
    wait_replayed(&s1, lsn_of(&p));
    let load = background_load(&p, 10_000, 1000);
    let fork1 = promote(&s1, 2);
    p.stop();
    drop(load);
    wait_log(&ra, &format!("now streaming from {s1a} (was {pa})"));
    wait_log(
        &ra,
        &format!("created replication slot \"{SLOT}\" on {s1a}"),
    );
    assert_eq!(
        s1.psql(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{SLOT}'"
        )),
        "1"
    );

    // Timeline 2 on S1; S2 follows it.
    let end2 = write(&s1, 20_000..=20_200, "timeline 2", 1200);
    wait_holds(&a, &s1, 2, end2, &ra);
    wait_replayed(&s2, end2);
    wait_holds(&b, &s2, 2, end2, &rb);

    // Failover 2: S2 is promoted while S1 is under load, then S1 stops.
    let load = background_load(&s1, 30_000, 1000);
    let fork2 = promote(&s2, 3);
    s1.stop();
    drop(load);
    wait_log(&ra, &format!("now streaming from {s2a} (was {s1a})"));
    wait_log(
        &ra,
        &format!("created replication slot \"{SLOT}\" on {s2a}"),
    );
    assert_eq!(
        s2.psql(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{SLOT}'"
        )),
        "1"
    );

    // Timeline 3 on S2; C catches up from timeline 1.
    write(&s2, 40_000..=40_200, "timeline 3", 1200);
    let end3 = switch(&s2);
    wait_holds(&a, &s2, 3, end3, &ra);
    wait_holds(&b, &s2, 3, end3, &rb);
    let rc = receive_into(&home, &c, &s2.conninfo(TRUST_USER), &[]);
    wait_holds(&c, &s2, 3, end3, &rc);
    for r in [&ra, &rb, &rc] {
        assert!(
            !r.stderr().contains("ERROR") && !r.stderr().contains("panicked"),
            "{}",
            r.stderr()
        );
    }
    let (log_a, log_b, log_c) = (ra.stderr(), rb.stderr(), rc.stderr());
    stop(ra);
    stop(rb);
    stop(rc);

    // B saw each end of timeline from its cascading walsender; C walked 1 → 2 → 3.
    for (log, name) in [(&log_b, "B"), (&log_c, "C")] {
        for (tli, at) in [(2, fork1), (3, fork2)] {
            assert!(
                log.contains(&format!("switched to timeline {tli} at {at}")),
                "{name} did not log the switch to timeline {tli} at {at}\n{log}"
            );
        }
    }
    // A reached each new timeline either by the server's end of timeline or by the fork
    // rule (when it had archived WAL the old primary wrote after the promotion).
    for tli in [2, 3] {
        assert!(
            log_a.contains(&format!("switching to timeline {tli}"))
                || log_a.contains(&format!("continuing on timeline {tli}")),
            "{log_a}"
        );
    }

    let begins = [(1, 0), (2, fork1.0 / SEG), (3, fork2.0 / SEG)];
    let owners = [(1, &p), (2, &s1), (3, &s2)];
    for archive in [&a, &b, &c] {
        assert_histories(archive, &s2, &[2, 3]);
        assert!(
            assert_same_as_servers(archive, &owners) >= 3,
            "{}",
            archive.display()
        );
        assert!(
            assert_no_gap(archive, &begins) >= 4,
            "{}",
            archive.display()
        );
    }
    // The standby's stream is the primary's, byte for byte.
    assert!(assert_same_files(&a, &b) >= 3);
    assert!(assert_same_files(&a, &c) >= 5);

    // PostgreSQL recovers the base backup from archive A to timeline 3 and promotes to 4.
    let expected = s2.psql(STATE);
    let r = recover_latest(&p, &copies.base, &a);
    assert_eq!(r.psql(STATE), expected, "{}", r.log());
    assert_eq!(checkpoint_timeline(&r), "4", "{}", r.log());
    let log = r.log();
    assert!(
        log.contains("restored log file \"00000003.history\" from archive"),
        "{log}"
    );
}

#[test]
fn receive_continues_from_the_fork_when_the_archive_ran_ahead_on_the_old_primary() {
    let p = primary();
    let copies = stop_and_copy(&p);
    let s = standby_of(&p, &copies.standby, "s");
    let home = Home::new();
    let archive = new_archive(&p, "archive");
    let r = receive_into(&home, &archive, &p.conninfo(TRUST_USER), &[]);
    wait_log(&r, "starting log streaming at");
    // Timeline 1 ends in the middle of a segment: timeline 2's copy of it starts with
    // timeline 1's WAL.
    let end = write(&p, 2..=200, "timeline 1", 1500);
    wait_holds(&archive, &p, 1, end, &r);
    assert_covers_base(&archive, &copies);

    // S is promoted; P goes on writing timeline 1, and the archive keeps it.
    wait_replayed(&s, end);
    let fork = promote(&s, 2);
    assert!(
        !fork.0.is_multiple_of(SEG),
        "the fork {fork} is inside a segment"
    );
    let fork_segno = fork.0 / SEG;
    write(&p, 1000..=1100, "timeline 1 after the fork: lost", 4000);
    let ahead = switch(&p);
    wait_holds(&archive, &p, 1, ahead, &r);
    stop(r);
    p.stop();
    let past_fork: Vec<String> = snapshot_names(&archive)
        .into_iter()
        .filter(|n| parse_segment(n, SEG).is_some_and(|s| s.tli == 1 && s.segno >= fork_segno))
        .collect();
    assert!(past_fork.len() >= 4, "{past_fork:?}");
    let old_files = |names: &[String]| -> Vec<(String, Vec<u8>)> {
        names
            .iter()
            .map(|n| (n.clone(), std::fs::read(archive.join(n)).unwrap()))
            .collect()
    };
    let before = old_files(&past_fork);

    // Pointed at S: timeline 2 from the fork's segment, a warning about the old files.
    write(&s, 2000..=2100, "timeline 2", 700);
    let mid = switch(&s);
    let r = receive_into(&home, &archive, &s.conninfo(TRUST_USER), &[]);
    wait_holds(&archive, &s, 2, mid, &r);
    let fork_start = Lsn(fork_segno * SEG);
    let mut sorted = past_fork.clone();
    sorted.sort();
    let log = r.stderr();
    assert!(
        log.contains(&format!(
            "starting log streaming at {fork_start} (timeline 2)"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{} file(s) from {} to {} hold WAL written on timeline 1 after the fork",
            sorted.len(),
            sorted[0],
            sorted[sorted.len() - 1]
        )),
        "{log}"
    );
    stop(r);

    // A restart before timeline 2 has overtaken the old files resumes where timeline 2's
    // files end, not at the fork again.
    let old_end = sorted
        .iter()
        .filter_map(|n| parse_segment(n, SEG))
        .map(|s| s.segno)
        .max()
        .unwrap();
    assert!(
        mid.0 / SEG < old_end,
        "timeline 2 ({mid}) is still behind the old files (to segment {old_end:X})"
    );
    write(&s, 3000..=3100, "timeline 2, later", 700);
    let end2 = switch(&s);
    let r = receive_into(&home, &archive, &s.conninfo(TRUST_USER), &[]);
    wait_holds(&archive, &s, 2, end2, &r);
    assert!(
        r.stderr()
            .contains(&format!("starting log streaming at {mid} (timeline 2)")),
        "{}",
        r.stderr()
    );
    stop(r);

    assert_eq!(
        old_files(&past_fork),
        before,
        "the old timeline's files were changed"
    );
    assert_histories(&archive, &s, &[2]);
    assert!(assert_same_as_servers(&archive, &[(1, &p), (2, &s)]) >= 5);
    let n = assert_no_gap(&archive, &[(1, 0), (2, fork_segno)]);
    assert!(n >= 3, "{n}: {}", listing(&snapshot(&archive)));

    let expected = s.psql(STATE);
    let rec = recover_latest(&p, &copies.base, &archive);
    assert_eq!(rec.psql(STATE), expected, "{}", rec.log());
    assert_eq!(checkpoint_timeline(&rec), "3", "{}", rec.log());
    assert!(
        rec.log().contains(&format!(
            "restored log file \"{}\" from archive",
            segment_name(2, fork_segno, SEG)
        )),
        "recovery read the fork's segment from timeline 2\n{}",
        rec.log()
    );
}

#[test]
fn receive_refuses_a_history_file_or_a_timeline_the_server_does_not_share() {
    let p = primary();
    let copies = stop_and_copy(&p);
    let s = standby_of(&p, &copies.standby, "s");
    let t = standby_of(&p, &copies.standby, "t");
    let u = standby_of(&p, &copies.standby, "u");
    write(&p, 2..=100, "timeline 1", 300);
    let end = switch(&p);
    wait_replayed(&s, end);
    // S becomes timeline 2; P goes on, T follows P, then T becomes another timeline 2.
    let fork_s = promote(&s, 2);
    write(&p, 200..=300, "timeline 1 after the promotion of S", 300);
    wait_replayed(&t, lsn_of(&p));
    let fork_t = promote(&t, 2);
    assert_ne!(fork_s, fork_t);
    // U, seeing S's history file, becomes timeline 3 branched off timeline 1: its history
    // has no timeline 2.
    let s_history = s.pg_wal_dir().join("00000002.history");
    let u_history = u.pg_wal_dir().join("00000002.history");
    std::fs::copy(&s_history, &u_history).unwrap();
    give_to_server_user(&u_history);
    wait_replayed(&u, lsn_of(&p));
    let fork_u = promote(&u, 3);
    assert_eq!(
        switch_points(&u, 3),
        [fork_u],
        "timeline 3 branched off timeline 1"
    );
    // It was only there to make U choose timeline 3.
    std::fs::remove_file(&u_history).unwrap();

    let home = Home::new();
    let archive = new_archive(&p, "archive");
    let r = receive_into(&home, &archive, &s.conninfo(TRUST_USER), &[]);
    wait_log(&r, "starting log streaming at");
    write(&s, 1000..=1100, "timeline 2 of S", 300);
    let end_s = switch(&s);
    wait_holds(&archive, &s, 2, end_s, &r);
    stop(r);
    assert_histories(&archive, &s, &[2]);
    let before = snapshot(&archive);

    // One run that must refuse to stream from `server` into the archive.
    let refused = |server: &Cluster| {
        pgwalrus(
            &home,
            &[
                "receive",
                "-D",
                &archive.display().to_string(),
                "-d",
                &server.conninfo(TRUST_USER),
                "--no-loop",
            ],
            &[],
        )
    };
    let run = refused(&t);
    run.expect_code(3);
    let history = archive.join("00000002.history");
    for needle in [
        format!("timeline history file \"{}\"", history.display()),
        format!("server 127.0.0.1:{}", t.port()),
        format!(
            "entry 1: the archive's file has \"timeline 1 ended at {fork_s}\", the server's has \"timeline 1 ended at {fork_t}\""
        ),
        "nothing was changed".to_owned(),
    ] {
        assert!(run.stderr.contains(&needle), "{needle}\n{}", run.stderr);
    }
    assert!(snapshot(&archive) == before, "the archive was changed");

    // The archive's timeline 2 is not in U's history (1, 3). U has no history file of
    // timeline 2 to compare the archive's with.
    let run = refused(&u);
    run.expect_code(3);
    let needle = format!(
        "archive is on timeline 2, which is not in the history of server 127.0.0.1:{} (timelines 1, 3)",
        u.port()
    );
    assert!(run.stderr.contains(&needle), "{needle}\n{}", run.stderr);
    assert!(snapshot(&archive) == before, "the archive was changed");
}
