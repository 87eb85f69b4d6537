//! `pgwalrus verify` and `pgwalrus dump` over archives made of a real server's WAL: a clean
//! archive passes, every flipped byte inside a record is reported at that record, a missing
//! segment is named, and `dump` prints what `pg_waldump` prints.

use std::path::{Path, PathBuf};

use pgwalrus_testkit::{Cluster, debian_bin, pg_bin};

use crate::receive_support::{Lsn, Rng, seed};
use crate::support::{Home, pgwalrus};

/// A cluster with 1 MiB segments and a few segments of varied WAL, their completed
/// segments copied into an archive directory.
struct Archive {
    _cluster: Cluster,
    dir: PathBuf,
    segments: Vec<String>,
}

impl Drop for Archive {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn archive(tag: &str) -> Archive {
    let c = Cluster::builder(&pg_bin())
        .initdb_arg("--wal-segsize=1")
        .setting("wal_keep_size", "64MB")
        .start();
    c.psql(
        "CREATE TABLE t (id int primary key, v text); \
         INSERT INTO t SELECT g, repeat('x', g % 200) FROM generate_series(1, 20000) g; \
         UPDATE t SET v = v || 'y' WHERE id % 7 = 0; DELETE FROM t WHERE id % 11 = 0; \
         CHECKPOINT; UPDATE t SET v = 'z' WHERE id % 13 = 0; VACUUM t;",
    );
    c.switch_wal();
    let dir = std::env::temp_dir().join(format!("pgwalrus-verify-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut segments: Vec<String> = std::fs::read_dir(c.pg_wal_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.len() == 24 && n.chars().all(|ch| ch.is_ascii_hexdigit()))
        .collect();
    segments.sort();
    // The newest file is the one the server writes now; keep only completed ones.
    segments.pop();
    for name in &segments {
        std::fs::copy(c.pg_wal_dir().join(name), dir.join(name)).unwrap();
    }
    assert!(
        segments.len() >= 3,
        "expected several segments, got {segments:?}"
    );
    Archive {
        _cluster: c,
        dir,
        segments,
    }
}

/// `(lsn, lsn + xl_tot_len)` of every record, from `dump --json`. (A record's end as
/// pg_waldump reports it is MAXALIGNed; the alignment padding is covered by no CRC, in
/// PostgreSQL either.)
fn records(home: &Home, dir: &Path) -> Vec<(u64, u64)> {
    let run = pgwalrus(home, &["dump", "--json", dir.to_str().unwrap()], &[]);
    run.expect_code(0);
    run.stdout
        .lines()
        .map(|l| {
            let lsn = lsn_field(l, "\"lsn\":\"");
            (lsn, lsn + number_field(l, "\"tot_len\":"))
        })
        .collect()
}

/// The `X/Y` value of `key` in a `dump --json` line, as a number.
pub(crate) fn lsn_field(line: &str, key: &str) -> u64 {
    let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
    Lsn::parse(&rest[..rest.find('"').unwrap()]).0
}

/// The numeric value of `key` in a `dump --json` line.
pub(crate) fn number_field(line: &str, key: &str) -> u64 {
    let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
    rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap()]
        .parse()
        .unwrap()
}

#[test]
fn clean_archive_passes_and_dump_matches_pg_waldump() {
    let a = archive("clean");
    let home = Home::new();
    let run = pgwalrus(&home, &["verify", a.dir.to_str().unwrap()], &[]);
    run.expect_code(0);
    assert!(run.stdout.contains("no problems"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("checked {} segment(s)", a.segments.len())),
        "{}",
        run.stdout
    );

    // pg_waldump 15 reads only WAL of 15.
    if pg_bin().major == 15 {
        for name in &a.segments {
            let path = a.dir.join(name);
            let ours = pgwalrus(&home, &["dump", path.to_str().unwrap()], &[]);
            ours.expect_code(0);
            let theirs = std::process::Command::new(debian_bin("pg_waldump"))
                .arg(&path)
                .env("TZ", "UTC")
                .output()
                .unwrap();
            let theirs = String::from_utf8_lossy(&theirs.stdout);
            assert_eq!(
                ours.stdout.lines().count(),
                theirs.lines().count(),
                "record count of {name}"
            );
            for (o, t) in ours.stdout.lines().zip(theirs.lines()) {
                assert_eq!(o, t, "first differing line in {name}");
            }
        }
    }
}

#[test]
fn every_flipped_byte_inside_a_record_is_reported_at_that_record() {
    let a = archive("flip");
    let home = Home::new();
    let recs = records(&home, &a.dir);
    let seg_size = 1u64 << 20;
    let mut rng = Rng::new(seed(0x5eed_0ff1_1b00));
    let trials = 100;
    for trial in 0..trials {
        let (lsn, end) = recs[rng.range(0, recs.len() as u64) as usize];
        let pos = lsn + rng.range(0, end - lsn);
        let segno = pos / seg_size;
        let name = format!("{:08X}{:08X}{:08X}", 1, segno >> 12, segno & 0xFFF);
        let path = a.dir.join(&name);
        let original = std::fs::read(&path).unwrap();
        let mut damaged = original.clone();
        let offset = (pos % seg_size) as usize;
        damaged[offset] ^= 1 << rng.range(0, 8);
        std::fs::write(&path, &damaged).unwrap();
        let run = pgwalrus(&home, &["verify", "--json", a.dir.to_str().unwrap()], &[]);
        std::fs::write(&path, &original).unwrap();
        assert_eq!(
            run.code, 1,
            "trial {trial}: flip at {pos:#x} in {name} not detected:\n{}",
            run.stdout
        );
        // The first problem is at the damaged record (or the page header inside it).
        let reported = lsn_field(&run.stdout, "\"lsn\":\"");
        let page = pos & !8191;
        assert!(
            reported == lsn || (reported == page && page > lsn),
            "trial {trial}: flip at {pos:#x} (record {lsn:#x}..{end:#x}) reported at {reported:#x}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn missing_segment_is_named() {
    let a = archive("gap");
    let home = Home::new();
    let middle = &a.segments[a.segments.len() / 2];
    std::fs::remove_file(a.dir.join(middle)).unwrap();
    let run = pgwalrus(&home, &["verify", a.dir.to_str().unwrap()], &[]);
    run.expect_code(1);
    assert!(
        run.stdout.contains(&format!("missing segment {middle}")),
        "{}",
        run.stdout
    );
}

/// The archive's segment names, sorted.
fn listed(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

#[test]
fn prune_keeps_exactly_what_its_rules_say_and_verify_passes_on_the_rest() {
    let a = archive("prune");
    let home = Home::new();
    let dir = a.dir.to_str().unwrap();
    let n = a.segments.len();
    assert!(n >= 4, "{:?}", a.segments);
    pgwalrus(&home, &["prune", "-D", dir], &[]).expect_code(2);
    // A dry run changes nothing.
    pgwalrus(
        &home,
        &["prune", "-D", dir, "--keep-size", "1MB", "--dry-run"],
        &[],
    )
    .expect_code(0);
    assert_eq!(listed(&a.dir), a.segments);
    // By age: the two oldest files were last written two days ago.
    for name in &a.segments[..2] {
        let status = std::process::Command::new("touch")
            .args(["-d", "2 days ago"])
            .arg(a.dir.join(name))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let run = pgwalrus(&home, &["prune", "-D", dir, "--keep-time", "1d"], &[]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("removed 2 segment(s)"),
        "{}",
        run.stderr
    );
    assert_eq!(listed(&a.dir), a.segments[2..]);
    // By size: the newest 2 MiB stay.
    pgwalrus(&home, &["prune", "-D", dir, "--keep-size", "2MB"], &[]).expect_code(0);
    assert_eq!(listed(&a.dir), a.segments[n - 2..]);
    pgwalrus(&home, &["verify", dir], &[]).expect_code(0);
}

#[test]
fn a_spool_prunes_only_what_the_bucket_already_holds() {
    let a = archive("spool");
    let n = a.segments.len();
    let keep = pgwalrus_archive::retention::Keep {
        time: None,
        size: Some(1),
    };
    // Only the first two segments are in the bucket: the size rule alone would remove all
    // but the newest, yet nothing after the shipped one goes.
    let shipped = a.segments[1].clone();
    pgwalrus::prune::prune_shipped(&a.dir, keep, false, Some(&shipped)).unwrap();
    assert_eq!(
        listed(&a.dir),
        a.segments[1..],
        "all but the newest shipped one"
    );
    // Once everything is shipped, the rule applies in full.
    let newest = a.segments[n - 1].clone();
    pgwalrus::prune::prune_shipped(&a.dir, keep, false, Some(&newest)).unwrap();
    assert_eq!(listed(&a.dir), a.segments[n - 1..]);
}
