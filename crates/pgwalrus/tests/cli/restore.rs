//! `pgwalrus restore` as PostgreSQL's `restore_command`, proven by recovery: an archive
//! filled by `pgwalrus receive` (through a slot) brings a base backup back to a target LSN,
//! to the end of the archive (also compressed with the gzip, lz4 and zstd tools, and with
//! `--prefetch`), to the last byte a killed receiver fsynced (`--partial`), and across a
//! promotion to timeline 2 — with every table's checksum equal to the primary's at that
//! point. A damaged segment (bytes flipped inside a record, or a complete file cut short)
//! makes recovery stop with pgwalrus's message in the server log instead of ending early,
//! and so does an empty timeline history file.
//!
//! Base backups: `pg_basebackup -X none` on PostgreSQL 15 (the only client tools at hand
//! are 15's), so recovery needs the archive even to become consistent; a copy of the
//! cleanly stopped primary on every other major, and wherever a test needs a base that is
//! consistent by itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pgwalrus_testkit::{
    Cluster, SUPERUSER, debian_bin, give_to_server_user, server_command, wait_until,
};

use crate::receive_support::{
    Fixture, Lsn, PATIENCE, parse_segment, pgbench, segment_name, small_cluster,
};
use crate::support::{Background, Guarded, pgwalrus};
use crate::support::{copy_tree, touch_for_server};

const BIN: &str = env!("CARGO_BIN_EXE_pgwalrus");
const SLOT: &str = "walrus_restore";
/// How long a recovery of a few dozen 1 MiB segments may take.
const RECOVERY: Duration = Duration::from_secs(60);

/// The checksum of every table the tests write, as one line.
pub(crate) const CHECKSUMS: &str = "SELECT string_agg(name || '=' || sum, ' ' ORDER BY name) FROM (\
     SELECT 'accounts' AS name, md5(string_agg(a::text, ',' ORDER BY a.aid)) AS sum FROM pgbench_accounts a \
     UNION ALL SELECT 'branches', md5(string_agg(b::text, ',' ORDER BY b.bid)) FROM pgbench_branches b \
     UNION ALL SELECT 'tellers', md5(string_agg(t::text, ',' ORDER BY t.tid)) FROM pgbench_tellers t \
     UNION ALL SELECT 'history', md5(coalesce(string_agg(h::text, ',' ORDER BY h::text), '')) FROM pgbench_history h \
     UNION ALL SELECT 'marks', md5(coalesce(string_agg(m::text, ',' ORDER BY m.id), '')) FROM marks m) s";

/// The checksum of table `marks` alone.
const MARKS: &str = "SELECT count(*) || ' rows, ' || md5(coalesce(string_agg(m::text, ',' ORDER BY m.id), '')) FROM marks m";

fn next_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn create_slot(f: &Fixture) {
    f.c.psql(&format!(
        "SELECT 1 FROM pg_create_physical_replication_slot('{SLOT}', true)"
    ));
}

/// `pgwalrus receive -S SLOT`, streaming.
fn archiving(f: &Fixture) -> Background {
    let r = f.receive(&["-S", SLOT]);
    f.wait_streaming("pgwalrus", &r);
    r
}

fn stop_receiver(mut r: Background) {
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
}

/// A base backup: a copy of the cleanly stopped primary (the receiver, if any, is stopped
/// around it and started again), marked for archive recovery.
fn stopped_copy(f: &Fixture, receiver: Option<Background>) -> (PathBuf, Option<Background>) {
    let had_receiver = receiver.is_some();
    if let Some(r) = receiver {
        stop_receiver(r);
    }
    f.c.stop();
    let base = f.c.root_dir().join(format!("base-{}", next_id()));
    copy_tree(f.c.data_dir(), &base);
    f.c.start();
    touch_for_server(&base.join("recovery.signal"));
    (base, had_receiver.then(|| archiving(f)))
}

/// A base backup taken online with `pg_basebackup -X none` (PostgreSQL 15 only): without
/// the archive it cannot even become consistent.
fn online_backup(f: &Fixture) -> PathBuf {
    let base = f.c.root_dir().join(format!("base-{}", next_id()));
    let out = Command::new(debian_bin("pg_basebackup"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PGPASSFILE", "/nonexistent")
        .arg("-D")
        .arg(&base)
        .args(["-X", "none", "-c", "fast", "--no-sync", "-h", "127.0.0.1"])
        .args(["-p", &f.c.port().to_string(), "-U", SUPERUSER])
        .stdin(Stdio::null())
        .output()
        .expect("run pg_basebackup");
    assert!(
        out.status.success(),
        "pg_basebackup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    touch_for_server(&base.join("recovery.signal"));
    base
}

/// Debian's `pgbench` in the background.
fn pgbench_background(c: &Cluster, args: &[&str]) -> Guarded {
    let mut cmd = crate::receive_support::pgbench_command(c, args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Guarded::spawn(&mut cmd)
}

fn restore_command(archive: &Path, extra: &str) -> String {
    format!("{BIN} restore %f %p -D {} {extra}", archive.display())
}

/// A server recovering `base` with `pgwalrus restore … -D archive EXTRA` and `settings`.
fn recover(
    f: &Fixture,
    base: &Path,
    archive: &Path,
    extra: &str,
    settings: &[(&str, &str)],
) -> Cluster {
    give_to_server_user(archive);
    let mut builder = Cluster::builder(f.c.pg())
        .from_data_dir(base)
        .setting("restore_command", restore_command(archive, extra));
    for (name, value) in settings {
        builder = builder.setting(name, value);
    }
    builder.start()
}

/// Waits until recovery has ended and the server accepts writes.
#[track_caller]
fn wait_promoted(c: &Cluster) {
    assert!(
        wait_until(RECOVERY, || c
            .try_psql("SELECT pg_is_in_recovery()")
            .is_ok_and(|r| r == "f")),
        "recovery did not end\n{}",
        c.log()
    );
}

/// Waits until the archive holds a complete segment ending at `end` (on `tli`).
#[track_caller]
fn wait_complete(f: &Fixture, tli: u32, end: Lsn, receiver: &Background) {
    assert!(
        wait_until(PATIENCE, || f.archive_holds_on(tli, end)),
        "the archive does not hold timeline {tli} up to {end}: {:?}\n{}",
        f.archive_segments(),
        receiver.stderr()
    );
}

/// A copy of `archive` with its complete segments compressed in turn with `gzip`, `lz4`
/// and `zstd` (every fourth left plain) and its history files gzipped (as pg_receivewal
/// `-Z gzip` writes them), by the tools themselves.
fn compressed_copy(archive: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(archive)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for (i, name) in names.iter().enumerate() {
        let from = archive.join(name);
        let complete = name.len() == 24;
        let (tool, suffix): (&[&str], &str) = match i % 4 {
            _ if name.ends_with(".history") => (&["gzip", "-c"], ".gz"),
            _ if !complete => (&[], ""),
            0 => (&["gzip", "-c"], ".gz"),
            1 => (&["lz4", "-q", "-c"], ".lz4"),
            2 => (&["zstd", "-q", "-c"], ".zst"),
            _ => (&[], ""),
        };
        let to = dest.join(format!("{name}{suffix}"));
        if tool.is_empty() {
            std::fs::copy(&from, &to).unwrap();
            continue;
        }
        let out = Command::new(tool[0])
            .args(&tool[1..])
            .arg(&from)
            .output()
            .expect("run a compression tool");
        assert!(out.status.success(), "{tool:?} {name}");
        std::fs::write(&to, out.stdout).unwrap();
    }
}

#[test]
fn restore_recovers_a_base_backup_to_a_target_lsn_and_to_the_end_of_the_archive() {
    let f = Fixture::new(small_cluster().start());
    create_slot(&f);
    let mut receiver = Some(archiving(&f));
    pgbench(&f.c, &["-i", "-s", "1", "-q"]);
    f.c.psql(
        "CREATE TABLE marks (id int PRIMARY KEY, note text);\n\
         INSERT INTO marks SELECT g, 'before the backup' FROM generate_series(1, 1000) g;",
    );
    let base = if f.c.major() == 15 {
        // Online, under load.
        let mut load = pgbench_background(&f.c, &["-n", "-T", "3", "-c", "2", "-j", "2"]);
        let base = online_backup(&f);
        assert!(
            load.wait_timeout(PATIENCE).is_some_and(|s| s.success()),
            "pgbench under the backup failed"
        );
        base
    } else {
        let (base, r) = stopped_copy(&f, receiver.take());
        receiver = r;
        base
    };
    pgbench(&f.c, &["-n", "-T", "2", "-c", "2", "-j", "2"]);
    f.c.psql(
        "UPDATE marks SET note = 'updated after the backup' WHERE id % 3 = 0;\n\
         DELETE FROM marks WHERE id % 7 = 0;",
    );
    // Nothing writes between the position and the checksums.
    let target = f.current_lsn();
    let at_target = f.c.psql(CHECKSUMS);
    pgbench(&f.c, &["-n", "-T", "1", "-c", "2", "-j", "2"]);
    f.c.psql(
        "INSERT INTO marks SELECT g, 'after the target' FROM generate_series(1001, 2000) g;\n\
         DELETE FROM marks WHERE id < 100;",
    );
    let at_end = f.c.psql(CHECKSUMS);
    let end = f.switch();
    let receiver = receiver.expect("receiver");
    wait_complete(&f, 1, end, &receiver);
    stop_receiver(receiver);

    // To the target LSN, from the archive as received.
    let target_text = target.to_string();
    let c = recover(
        &f,
        &base,
        &f.archive,
        "",
        &[
            ("recovery_target_lsn", target_text.as_str()),
            ("recovery_target_action", "promote"),
        ],
    );
    wait_promoted(&c);
    assert_eq!(c.psql(CHECKSUMS), at_target, "tables at {target}");
    let log = c.log();
    assert!(
        log.contains("recovery stopping") && log.contains("WAL checked"),
        "{log}"
    );
    drop(c);

    // To the end of the archive, from a copy compressed by gzip, lz4 and zstd, prefetching.
    let compressed = f.c.root_dir().join("compressed");
    compressed_copy(&f.archive, &compressed);
    let c = recover(&f, &base, &compressed, "--prefetch 4", &[]);
    wait_promoted(&c);
    assert_eq!(
        c.psql(CHECKSUMS),
        at_end,
        "tables at the end of the archive"
    );
    let log = c.log();
    let names: Vec<String> = std::fs::read_dir(&compressed)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for suffix in [".gz", ".lz4", ".zst"] {
        assert!(
            names.iter().any(|n| n.ends_with(suffix)),
            "no {suffix} file in {names:?}"
        );
    }
    assert!(
        log.contains("from the prefetch spool"),
        "nothing was served from the prefetch spool\n{log}"
    );
    // PostgreSQL's routine probes for files the archive does not have (the segment after
    // its end, the next timeline's history file) are answered without `error:`.
    assert!(
        log.contains("is not in the archive") && !log.contains("pgwalrus: error:"),
        "{log}"
    );
}

#[test]
fn restore_partial_reaches_the_last_byte_a_killed_synchronous_receiver_fsynced() {
    const APP: &str = "walrus_partial";
    let mut f = Fixture::new(
        small_cluster()
            .setting("synchronous_standby_names", APP)
            .start(),
    );
    f.conninfo = format!("{} application_name={APP}", f.conninfo);
    create_slot(&f);
    // Before the synchronous receiver runs (commits would wait for it while it is down).
    let (base, _) = stopped_copy(&f, None);
    let mut r = f.receive(&["-S", SLOT, "--synchronous"]);
    assert!(
        wait_until(PATIENCE, || f.c.psql(&format!(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = '{APP}'"
        )) == "sync"),
        "pgwalrus never became the synchronous standby\n{}",
        r.stderr()
    );
    f.c.psql("CREATE TABLE marks (id int PRIMARY KEY, note text)");
    f.load(2500);
    // The last commit, acknowledged (so fsynced by the receiver), then kill -9.
    let out = f.c.psql(&format!(
        "INSERT INTO marks VALUES (42, 'acknowledged, then the receiver was killed');\n\
         SELECT pg_current_wal_lsn();\n\
         SELECT flush_lsn FROM pg_stat_replication WHERE application_name = '{APP}';"
    ));
    r.kill9();
    let mut lines = out.lines();
    let after_commit = Lsn::parse(lines.next().expect("lsn"));
    let acknowledged = Lsn::parse(lines.next().expect("flush lsn"));
    assert!(
        acknowledged >= after_commit,
        "{acknowledged} < {after_commit}"
    );
    let newest = f.archive_segments().pop().expect("segments");
    assert!(
        newest.partial,
        "the newest segment is a .partial: {:?}",
        f.archive_segments()
    );
    assert_eq!(
        f.segno_before(after_commit),
        newest.segno,
        "the commit ends in the .partial segment"
    );

    // Without --partial recovery ends at the last complete segment.
    let c = recover(&f, &base, &f.archive, "", &[]);
    wait_promoted(&c);
    assert_eq!(
        c.psql("SELECT count(*) FROM marks WHERE id = 42"),
        "0",
        "the commit is only in {}",
        newest.name
    );
    assert!(
        c.log().contains("--partial is not set"),
        "restore says why the .partial was not served\n{}",
        c.log()
    );
    drop(c);

    // With --partial it reaches the commit.
    let c = recover(&f, &base, &f.archive, "--partial", &[]);
    wait_promoted(&c);
    assert_eq!(
        c.psql("SELECT note FROM marks WHERE id = 42"),
        "acknowledged, then the receiver was killed",
        "{}",
        c.log()
    );
    assert!(
        c.log().contains("partial segment: WAL ends at"),
        "{}",
        c.log()
    );
}

/// Starts archive recovery of `base` from `archive`, which has `damaged` damaged, and
/// returns the server log of that run: recovery must stop there (FATAL) with pgwalrus's
/// message, never finish and promote.
///
/// The harness starts a cluster only if it comes up, so the base is first started as a
/// standby with an empty archive (consistent from its own `pg_wal`: a clean copy), then
/// stopped, switched to archive recovery with the damaged archive, and started with
/// `pg_ctl` directly.
fn recovery_stops_at(f: &Fixture, base: &Path, archive: &Path, damaged: &str) -> String {
    let staging = f.c.root_dir().join(format!("staging-{}", next_id()));
    std::fs::create_dir_all(&staging).unwrap();
    let standby_base = f.c.root_dir().join(format!("base-{}", next_id()));
    copy_tree(base, &standby_base);
    std::fs::remove_file(standby_base.join("recovery.signal")).unwrap();
    touch_for_server(&standby_base.join("standby.signal"));
    let c = recover(f, &standby_base, &staging, "", &[]);
    c.stop();
    std::fs::remove_file(c.data_dir().join("standby.signal")).unwrap();
    touch_for_server(&c.data_dir().join("recovery.signal"));
    for entry in std::fs::read_dir(archive).unwrap().flatten() {
        copy_tree(&entry.path(), &staging.join(entry.file_name()));
    }
    give_to_server_user(&staging);

    let before = c.log().len();
    let _ = server_command(c.pg().tool("pg_ctl"))
        .arg("-D")
        .arg(c.data_dir())
        .arg("-l")
        .arg(c.log_path())
        .args(["-w", "-t", "60", "start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let run = || c.log().get(before..).unwrap_or_default().to_owned();
    assert!(
        wait_until(RECOVERY, || run().contains("database system is shut down")),
        "the server did not stop\n{}",
        run()
    );
    let log = run();
    assert!(
        log.contains(&format!(
            "pgwalrus: error: {damaged} in the archive is damaged"
        )),
        "pgwalrus's message is in the server log\n{log}"
    );
    assert!(
        log.contains(&format!(
            "could not restore file \"{damaged}\" from archive"
        )) && log.contains("FATAL"),
        "recovery stopped with FATAL\n{log}"
    );
    for promoted in [
        "archive recovery complete",
        "selected new timeline ID",
        "database system is ready to accept connections",
    ] {
        assert!(
            !log.contains(promoted),
            "recovery ended early: {promoted}\n{log}"
        );
    }
    log
}

/// An empty `00000002.history` in the archive: PostgreSQL probes for it at the start of
/// recovery (`recovery_target_timeline = 'latest'`). Served, it would be read as "timeline 2
/// has no parents" and recovery would fail naming no file; refused (255), recovery stops
/// with FATAL at once and pgwalrus's line naming the file is in the server's log.
#[test]
fn restore_stops_recovery_at_an_empty_history_file_naming_it() {
    let f = Fixture::new(small_cluster().start());
    create_slot(&f);
    let r = archiving(&f);
    let (base, r) = stopped_copy(&f, Some(r));
    let r = r.expect("receiver");
    f.c.psql("CREATE TABLE marks (id int PRIMARY KEY, note text)");
    let end = f.switch();
    wait_complete(&f, 1, end, &r);
    stop_receiver(r);
    std::fs::write(f.archive.join("00000002.history"), b"").unwrap();
    give_to_server_user(&f.archive);
    let log = recovery_stops_at(&f, &base, &f.archive, "00000002.history");
    assert!(log.contains("has no entries"), "{log}");
}

#[test]
fn restore_stops_recovery_at_a_damaged_segment_and_tells_missing_from_damaged() {
    let f = Fixture::new(small_cluster().start());
    create_slot(&f);
    let r = archiving(&f);
    f.c.psql("CREATE TABLE marks (id int PRIMARY KEY, note text)");
    let (base, r) = stopped_copy(&f, Some(r));
    let r = r.expect("receiver");
    let start = f.current_lsn();
    f.c.psql(
        "INSERT INTO marks SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 25000) g",
    );
    let end = f.switch();
    wait_complete(&f, 1, end, &r);
    stop_receiver(r);
    give_to_server_user(&f.archive);

    // A segment in the middle of the WAL recovery needs, full of records.
    let segno = f.segno_before(start) + 3;
    assert!(
        segno + 2 < f.segno_before(end),
        "enough WAL: {start}..{end}"
    );
    let name = segment_name(1, segno, f.seg_size);
    let original = std::fs::read(f.archive.join(&name)).unwrap();

    // The command itself: served, missing, damaged, a hole, not a name.
    let out = f.c.root_dir().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let target = out.join("RECOVERYXLOG");
    let target_text = target.display().to_string();
    let archive_text = f.archive.display().to_string();
    let restore = |file: &str| {
        pgwalrus(
            &f.home,
            &["restore", file, &target_text, "-D", &archive_text],
            &[],
        )
    };
    restore(&name).expect_code(0);
    assert_eq!(std::fs::read(&target).unwrap(), original);
    let run = restore("00000002.history");
    run.expect_code(1);
    assert!(run.stderr.contains("not in the archive"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("error:"),
        "a routine probe: {}",
        run.stderr
    );
    restore(&segment_name(1, f.segno_before(end) + 5, f.seg_size)).expect_code(1);
    let run = pgwalrus(&f.home, &["restore", &name, "-D", &archive_text], &[]);
    run.expect_code(255);

    let damaged = |label: &str, damage: &dyn Fn(&Path)| -> PathBuf {
        let dir = f.c.root_dir().join(label);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&f.archive).unwrap().flatten() {
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
            }
        }
        damage(&dir.join(&name));
        dir
    };

    // Missing between segments the archive has: a hole, not the end of the archive.
    let holed = damaged("holed", &|p| std::fs::remove_file(p).unwrap());
    let run = pgwalrus(
        &f.home,
        &[
            "restore",
            &name,
            &target_text,
            "-D",
            &holed.display().to_string(),
        ],
        &[],
    );
    run.expect_code(255);
    assert!(
        run.stderr.contains("missing from the archive"),
        "{}",
        run.stderr
    );

    // Bytes flipped in the middle of a page full of records.
    let offset = (f.seg_size / 2 + 4000) as usize;
    assert!(
        original[offset..offset + 8].iter().any(|&b| b != 0),
        "the flipped bytes are WAL"
    );
    let flipped = damaged("flipped", &|p| {
        let mut bytes = std::fs::read(p).unwrap();
        for b in &mut bytes[offset..offset + 8] {
            *b ^= 0x5A;
        }
        std::fs::write(p, bytes).unwrap();
    });
    let run = pgwalrus(
        &f.home,
        &[
            "restore",
            &name,
            &target_text,
            "-D",
            &flipped.display().to_string(),
        ],
        &[],
    );
    run.expect_code(255);
    assert!(run.stderr.contains("is damaged"), "{}", run.stderr);
    recovery_stops_at(&f, &base, &flipped, &name);

    // A complete segment cut short.
    let cut = damaged("cut", &|p| {
        let file = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        file.set_len(f.seg_size / 3).unwrap();
    });
    let log = recovery_stops_at(&f, &base, &cut, &name);
    assert!(log.contains("it was cut short"), "{log}");
}

/// Restarts the primary as a standby with no upstream: it serves what it has on timeline 1.
fn make_standby(f: &Fixture) {
    f.c.stop();
    touch_for_server(&f.c.data_dir().join("standby.signal"));
    f.c.start();
    assert_eq!(f.c.psql("SELECT pg_is_in_recovery()"), "t");
}

#[test]
fn restore_follows_a_promotion_to_timeline_2_using_only_the_archive() {
    let f = Fixture::new(small_cluster().start());
    create_slot(&f);
    let r = archiving(&f);
    f.c.psql(
        "CREATE TABLE marks (id int PRIMARY KEY, note text);\n\
         INSERT INTO marks SELECT g, 'timeline 1, before the backup' FROM generate_series(1, 500) g;",
    );
    let (base, r) = stopped_copy(&f, Some(r));
    let r = r.expect("receiver");
    f.c.psql(
        "INSERT INTO marks SELECT g, 'timeline 1, after the backup' FROM generate_series(501, 1000) g",
    );
    let lsn = f.load(1200);
    f.wait_archived(lsn, &r);

    // The primary becomes a standby (the receiver follows it) and is promoted.
    make_standby(&f);
    f.wait_streaming("pgwalrus", &r);
    assert_eq!(f.c.psql("SELECT pg_promote()"), "t");
    f.c.psql(
        "INSERT INTO marks SELECT g, 'timeline 2' FROM generate_series(1001, 1500) g;\n\
         UPDATE marks SET note = note || ', updated on timeline 2' WHERE id % 10 = 0;",
    );
    let at_end = f.c.psql(MARKS);
    let end = f.switch();
    wait_complete(&f, 2, end, &r);
    stop_receiver(r);
    assert!(
        f.archive.join("00000002.history").exists(),
        "{:?}",
        f.archive_segments()
    );
    let tl2 = f
        .archive_segments()
        .into_iter()
        .filter(|s| s.tli == 2 && !s.partial)
        .count();
    assert!(tl2 >= 1, "{:?}", f.archive_segments());

    let c = recover(
        &f,
        &base,
        &f.archive,
        "",
        &[("recovery_target_timeline", "latest")],
    );
    wait_promoted(&c);
    assert_eq!(c.psql(MARKS), at_end, "marks after timeline 2\n{}", c.log());
    let log = c.log();
    assert!(
        log.contains("restored log file \"00000002.history\" from archive")
            && log.contains("selected new timeline ID: 3"),
        "{log}"
    );
    // Every segment of timeline 2 the archive has was read from it.
    for seg in f.archive_segments() {
        let Some(parsed) = parse_segment(&seg.name, f.seg_size) else {
            continue;
        };
        if parsed.tli == 2 && !parsed.partial {
            assert!(
                log.contains(&format!("restored log file \"{}\"", seg.name)),
                "{} not restored\n{log}",
                seg.name
            );
        }
    }
    drop(c);

    // The same from a copy with a gzipped history file and compressed segments.
    let compressed = f.c.root_dir().join("compressed");
    compressed_copy(&f.archive, &compressed);
    assert!(compressed.join("00000002.history.gz").exists());
    let c = recover(
        &f,
        &base,
        &compressed,
        "",
        &[("recovery_target_timeline", "latest")],
    );
    wait_promoted(&c);
    assert_eq!(c.psql(MARKS), at_end, "marks after timeline 2\n{}", c.log());
    assert!(
        c.log().contains("restored 00000002.history from"),
        "{}",
        c.log()
    );
}

/// `pgwalrus receive -Z METHOD` into its own directory through its own slot, reporting
/// its flush position at once (`--synchronous`, though not a synchronous standby).
fn receive_compressed(f: &Fixture, method: &str) -> (Background, PathBuf) {
    let dir = f.c.root_dir().join(format!("archive-{method}"));
    std::fs::create_dir_all(&dir).unwrap();
    let slot = format!("walrus_{method}");
    let conninfo = format!("{} application_name={slot}", f.conninfo);
    let dir_text = dir.display().to_string();
    let log = f.c.root_dir().join(format!("receive-{method}.log"));
    let r = Background::spawn(
        &f.home,
        &[
            "receive",
            "-D",
            &dir_text,
            "-d",
            &conninfo,
            "-S",
            &slot,
            "-Z",
            method,
            "--synchronous",
        ],
        &[],
        &log,
    );
    (r, dir)
}

#[test]
fn restore_recovers_to_a_target_in_the_compressed_partial_of_receive_z_archives() {
    const METHODS: [&str; 3] = ["gzip", "lz4", "zstd"];
    let f = Fixture::new(small_cluster().start());
    for method in METHODS {
        f.c.psql(&format!(
            "SELECT 1 FROM pg_create_physical_replication_slot('walrus_{method}', true)"
        ));
    }
    f.c.psql("CREATE TABLE marks (id int PRIMARY KEY, note text)");
    let (base, _) = stopped_copy(&f, None);
    let mut receivers: Vec<(Background, PathBuf)> =
        METHODS.iter().map(|m| receive_compressed(&f, m)).collect();
    f.c.psql(
        "INSERT INTO marks SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 12000) g;\n\
         UPDATE marks SET note = 'updated' WHERE id % 5 = 0;",
    );
    let target = f.current_lsn();
    let at_target = f.c.psql(MARKS);
    f.c.psql("INSERT INTO marks VALUES (-1, 'after the target')");
    let after = f.current_lsn();
    assert_eq!(
        f.segno_before(Lsn(target.0 + 1)),
        f.segno_before(after),
        "the target is in the segment the receivers are writing"
    );
    for method in METHODS {
        assert!(
            wait_until(PATIENCE, || {
                f.c.psql(&format!(
                "SELECT flush_lsn >= '{after}' FROM pg_stat_replication WHERE application_name = 'walrus_{method}'"
            )) == "t"
            }),
            "receive -Z {method} did not flush up to {after}"
        );
    }
    // Killed mid-segment: each archive ends with a compressed .partial.
    for (r, _) in &mut receivers {
        r.kill9();
    }
    for (method, (_, dir)) in METHODS.iter().zip(&receivers) {
        let suffix = match *method {
            "gzip" => ".gz",
            "lz4" => ".lz4",
            _ => ".zst",
        };
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let partial = segment_name(1, f.segno_before(after), f.seg_size);
        assert!(
            names.contains(&format!("{partial}{suffix}.partial")),
            "{method}: {names:?}"
        );
        let target_text = target.to_string();
        let c = recover(
            &f,
            &base,
            dir,
            "--partial --prefetch 2",
            &[
                ("recovery_target_lsn", target_text.as_str()),
                ("recovery_target_action", "promote"),
            ],
        );
        wait_promoted(&c);
        assert_eq!(c.psql(MARKS), at_target, "{method}\n{}", c.log());
        assert!(
            c.log().contains(&format!("{suffix}.partial\" ({method}, "))
                && c.log().contains("partial segment: WAL ends at"),
            "{method}: the target was reached in the compressed .partial\n{}",
            c.log()
        );
    }
}
