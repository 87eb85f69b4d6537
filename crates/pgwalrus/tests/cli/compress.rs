//! `pgwalrus receive -Z`: gzip, lz4 and zstd while streaming. The oracles are the standard
//! command-line tools (`gzip -d`, `lz4 -d`, `zstd -d`: every complete file must decompress
//! to the server's own `pg_wal` segment, byte for byte) and `pg_receivewal` 15, which must
//! resume from pgwalrus's `.gz`/`.lz4` directories and leave ones pgwalrus resumes.
//!
//! File names are parsed here by hand, independently of `pgwalrus-wal`. A `.partial` (which
//! a kill may have cut inside a compressed block, where the tools give up) is decoded with
//! pgwalrus-archive's tolerant reader and compared with the server's segment as far as it
//! goes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pgwalrus_archive::{ArchiveStream, StdFs};
use pgwalrus_testkit::{Cluster, DEBIAN_BINDIR, PgBin, debian_bin, pg_bin, wait_until};
use pgwalrus_wal::WalSegSize;
use pgwalrus_wal::names::FileName;

use crate::receive_support::{Fixture, Lsn, PATIENCE, Rng, psql_background, seed, segment_name};
use crate::support::{Background, Guarded, Home, pgwalrus};

/// The methods, with their file suffix and command-line tool.
const METHODS: [(&str, &str, &str); 3] = [
    ("gzip", ".gz", "gzip"),
    ("lz4", ".lz4", "lz4"),
    ("zstd", ".zst", "zstd"),
];

/// Kills per method in the kill -9 test.
const KILLS: usize = 10;

/// A cluster with 1 MiB segments that keeps its WAL (so `pg_wal` still holds every segment
/// the archive is compared with).
fn fixture() -> Fixture {
    Fixture::new(
        Cluster::builder(&pg_bin())
            .initdb_arg("--wal-segsize=1")
            .setting("wal_keep_size", "1GB")
            .start(),
    )
}

/// An archive directory of its own under the cluster's directory.
fn archive_dir(f: &Fixture, label: &str) -> PathBuf {
    let dir = f.c.root_dir().join(format!("archive-{label}"));
    std::fs::create_dir_all(&dir).expect("create archive dir");
    dir
}

/// `pgwalrus receive -D DIR -d CONNINFO EXTRA…` in the background.
fn receive_into(f: &Fixture, dir: &Path, extra: &[&str]) -> Background {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let log = f.c.root_dir().join(format!(
        "compress-receive-{}.log",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let dir = dir.display().to_string();
    let mut args = vec!["receive", "-D", &dir, "-d", &f.conninfo];
    args.extend_from_slice(extra);
    Background::spawn(&f.home, &args, &[], &log)
}

/// A segment file of a compressed (or mixed) archive, parsed by hand.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ArchiveFile {
    segno: u64,
    partial: bool,
    /// `""`, `".gz"`, `".lz4"` or `".zst"`.
    suffix: &'static str,
    name: String,
}

fn parse(name: &str, seg_size: u64) -> Option<ArchiveFile> {
    let (rest, partial) = match name.strip_suffix(".partial") {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    let (base, suffix) = METHODS
        .iter()
        .find_map(|(_, suffix, _)| rest.strip_suffix(suffix).map(|b| (b, *suffix)))
        .unwrap_or((rest, ""));
    if base.len() != 24 || !base.bytes().all(|b| b.is_ascii_hexdigit()) || &base[..8] != "00000001"
    {
        return None;
    }
    let log = u64::from_str_radix(&base[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&base[16..], 16).ok()?;
    Some(ArchiveFile {
        segno: log * (0x1_0000_0000 / seg_size) + seg,
        partial,
        suffix,
        name: name.to_owned(),
    })
}

fn files(dir: &Path, seg_size: u64) -> Vec<ArchiveFile> {
    let mut found: Vec<ArchiveFile> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| parse(&e.ok()?.file_name().to_string_lossy(), seg_size))
        .collect();
    found.sort();
    found
}

fn names(dir: &Path) -> String {
    let mut all: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all.join(", ")
}

/// A complete file decompressed by its standard tool (`gzip -d -c`, …); an uncompressed
/// one read as it is.
#[track_caller]
fn decompress_with_tool(dir: &Path, file: &ArchiveFile) -> Vec<u8> {
    let path = dir.join(&file.name);
    let Some((_, _, tool)) = METHODS.iter().find(|(_, s, _)| *s == file.suffix) else {
        return std::fs::read(&path).expect("read segment");
    };
    let out = Command::new(tool)
        .args(["-d", "-c"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} (scripts/test.sh installs it): {e}"));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{tool} -d {} failed ({}): {}",
        file.name,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A file decompressed by pgwalrus's own reader (tolerant of a cut-short `.partial`).
fn decompress_with_reader(dir: &Path, name: &str, seg_size: u64) -> Option<Vec<u8>> {
    let seg_size = WalSegSize::new(u32::try_from(seg_size).ok()?).ok()?;
    let parsed = FileName::parse(name, seg_size).ok()?;
    let mut stream = ArchiveStream::open(&StdFs::new(), dir, &parsed).ok()?;
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut out).ok()?;
    Some(out)
}

/// Whether `dir` holds the server's WAL (timeline 1) up to `lsn`: the file of the segment
/// before `lsn` — complete, `.partial` or still under its temporary name — decodes to the
/// server's bytes up to `lsn`.
fn holds(f: &Fixture, dir: &Path, lsn: Lsn) -> bool {
    let segno = f.segno_before(lsn);
    let upto = usize::try_from(lsn.0 - segno * f.seg_size).expect("offset");
    let base = segment_name(1, segno, f.seg_size);
    let Some(theirs) = f.server_segment(&base) else {
        return false;
    };
    let mut candidates = Vec::new();
    for (_, suffix, _) in METHODS.iter().chain(&[("none", "", "")]) {
        for tail in ["", ".partial", ".partial.tmp"] {
            candidates.push(format!("{base}{suffix}{tail}"));
        }
    }
    candidates.iter().any(|name| {
        decompress_with_reader(dir, name, f.seg_size).is_some_and(|ours| {
            ours.len() >= upto && theirs.len() >= upto && ours[..upto] == theirs[..upto]
        })
    })
}

#[track_caller]
fn wait_holds(f: &Fixture, dir: &Path, lsn: Lsn, receiver: &Background) {
    assert!(
        wait_until(PATIENCE, || holds(f, dir, lsn)),
        "{} does not hold WAL up to {lsn}: {}\n--- receiver stderr\n{}",
        dir.display(),
        names(dir),
        receiver.stderr()
    );
}

/// The archive's invariants: one file per segment from the first to the last (no gap),
/// only the newest `.partial`, every complete file decompressed by its standard tool equal
/// to the server's `pg_wal` segment, the `.partial` equal to it as far as it goes, and no
/// temporary file left. `suffixes` are the compressions that must appear. Returns the
/// number of complete files compared.
#[track_caller]
fn assert_archive(f: &Fixture, dir: &Path, suffixes: &[&str], min_complete: usize) -> usize {
    let all = files(dir, f.seg_size);
    let listing = names(dir);
    assert!(
        !all.is_empty(),
        "no segments in {}: {listing}",
        dir.display()
    );
    assert!(!listing.contains(".tmp"), "temporary files left: {listing}");
    let (first, last) = (all[0].segno, all[all.len() - 1].segno);
    for segno in first..=last {
        let here: Vec<&ArchiveFile> = all.iter().filter(|a| a.segno == segno).collect();
        assert_eq!(
            here.len(),
            1,
            "segment {segno:X}: not exactly one file: {listing}"
        );
        assert!(
            !here[0].partial || segno == last,
            "an old .partial: {listing}"
        );
    }
    for suffix in suffixes {
        assert!(
            all.iter().any(|a| a.suffix == *suffix),
            "no {suffix:?} file in {listing}"
        );
    }
    let mut compared = 0;
    for file in &all {
        let Some(theirs) = f.server_segment(&segment_name(1, file.segno, f.seg_size)) else {
            continue;
        };
        if file.partial {
            let ours = decompress_with_reader(dir, &file.name, f.seg_size)
                .unwrap_or_else(|| panic!("{} does not decode", file.name));
            assert!(
                ours.len() <= theirs.len() && ours[..] == theirs[..ours.len()],
                "{} is not a prefix of the server's segment",
                file.name
            );
            continue;
        }
        let ours = decompress_with_tool(dir, file);
        if ours != theirs {
            let at = ours.iter().zip(&theirs).position(|(a, b)| a != b);
            panic!(
                "{} ({} bytes) differs from the server's pg_wal file (first difference at {at:?})",
                file.name,
                ours.len()
            );
        }
        compared += 1;
    }
    assert!(
        compared >= min_complete,
        "only {compared} complete segments compared (wanted {min_complete}): {listing}"
    );
    compared
}

/// WAL load in the background until dropped: small transactions, ~1 MiB/s.
fn background_load(c: &Cluster) -> Guarded {
    c.psql("CREATE TABLE IF NOT EXISTS churn (i int, pad text)");
    psql_background(
        c,
        "DO $$ BEGIN
           FOR n IN 1..100000 LOOP
             INSERT INTO churn SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 40) g;
             COMMIT;
             PERFORM pg_sleep(0.005);
           END LOOP;
         END $$",
        "walrus_compress_load",
    )
}

fn stop_background_load(c: &Cluster, load: Guarded) {
    drop(load);
    c.psql(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'walrus_compress_load'",
    );
}

#[test]
fn every_method_writes_files_the_standard_tools_decompress_to_the_servers_segments() {
    let f = fixture();
    let dirs: Vec<PathBuf> = METHODS.iter().map(|(m, _, _)| archive_dir(&f, m)).collect();
    let mut receivers: Vec<Background> = METHODS
        .iter()
        .zip(&dirs)
        .map(|((method, _, _), dir)| {
            f.c.psql(&format!(
                "SELECT pg_create_physical_replication_slot('z_{method}', true)"
            ));
            let slot = format!("z_{method}");
            receive_into(&f, dir, &["-Z", method, "-S", &slot, "-s", "1"])
        })
        .collect();
    f.load(1500);
    f.load(1500);
    let end = f.switch();
    let partial_end = f.load(100);
    for (r, dir) in receivers.iter_mut().zip(&dirs) {
        wait_holds(&f, dir, partial_end, r);
        r.signal("TERM");
        r.expect_exit(0, PATIENCE);
    }
    for ((_, suffix, _), dir) in METHODS.iter().zip(&dirs) {
        assert_archive(&f, dir, &[suffix], 3);
        // The directory was empty: `verify` finds the segment size in compressed files.
        let run = pgwalrus(&f.home, &["verify", dir.to_str().unwrap()], &[]);
        run.expect_code(0);
        assert!(run.stdout.contains("no problems"), "{}", run.stdout);
        // The clean stop finished the `.partial`'s stream: its tool reads it too.
        let all = files(dir, f.seg_size);
        let partial = all.last().expect("files");
        assert!(
            partial.partial && partial.segno == end.0 / f.seg_size,
            "{all:?}"
        );
        let ours = decompress_with_tool(dir, partial);
        let theirs = f
            .server_segment(&segment_name(1, partial.segno, f.seg_size))
            .expect("pg_wal");
        assert!(ours.len() as u64 >= partial_end.0 - end.0);
        assert!(ours[..] == theirs[..ours.len()], "{}", partial.name);
        // Compression did something.
        let on_disk: u64 = all
            .iter()
            .filter(|a| !a.partial)
            .map(|a| std::fs::metadata(dir.join(&a.name)).expect("stat").len())
            .sum();
        let complete = all.iter().filter(|a| !a.partial).count() as u64;
        assert!(
            on_disk < complete * f.seg_size,
            "{suffix}: {on_disk} bytes on disk for {complete} segments"
        );
    }
}

#[test]
fn kill9_during_compressed_streaming_resumes_with_no_gap_and_identical_bytes() {
    let f = fixture();
    let mut rng = Rng::new(seed(0x7a69_7021));
    let load = background_load(&f.c);
    let start = f.current_lsn();
    let dirs: Vec<PathBuf> = METHODS.iter().map(|(m, _, _)| archive_dir(&f, m)).collect();
    for ((method, _, _), dir) in METHODS.iter().zip(&dirs) {
        let slot = format!("k_{method}");
        f.c.psql(&format!(
            "SELECT pg_create_physical_replication_slot('{slot}', true)"
        ));
        for i in 0..KILLS {
            // Plain, with the slot and a 1 s status interval, and synchronous (a sync
            // flush of the compressor after every batch).
            let args: Vec<&str> = match i % 3 {
                0 => vec!["-Z", method],
                1 => vec!["-Z", method, "-S", &slot, "-s", "1"],
                _ => vec!["-Z", method, "-S", &slot, "--synchronous"],
            };
            let mut r = receive_into(&f, dir, &args);
            std::thread::sleep(Duration::from_millis(rng.range(50, 900)));
            assert!(r.is_running(), "{method} run {i} exited:\n{}", r.stderr());
            r.kill9();
        }
    }
    assert!(
        f.current_lsn().0 - start.0 > 3 * f.seg_size,
        "the load wrote too little WAL to cross segments"
    );
    stop_background_load(&f.c, load);

    // A last run per archive resumes whatever the kills left, catches up and stops.
    let end = f.current_lsn();
    for ((method, suffix, _), dir) in METHODS.iter().zip(&dirs) {
        let slot = format!("k_{method}");
        let mut r = receive_into(&f, dir, &["-Z", method, "-S", &slot, "-s", "1"]);
        wait_holds(&f, dir, end, &r);
        r.signal("TERM");
        r.expect_exit(0, PATIENCE);
        assert_archive(&f, dir, &[suffix], 2);
    }
}

#[test]
fn a_cut_compressed_partial_resumes_correctly() {
    let f = fixture();
    let mut rng = Rng::new(seed(0x6375_7421));
    for (method, suffix, _) in METHODS {
        let dir = archive_dir(&f, method);
        let slot = format!("c_{method}");
        f.c.psql(&format!(
            "SELECT pg_create_physical_replication_slot('{slot}', true)"
        ));
        let args = ["-Z", method, "-S", &slot, "-s", "1"];
        let mut r = receive_into(&f, &dir, &args);
        f.load(1200);
        let lsn = f.load(300);
        wait_holds(&f, &dir, lsn, &r);
        r.signal("TERM");
        r.expect_exit(0, PATIENCE);

        // Cut the `.partial` anywhere, as a crash of another machine's copy might.
        let partial = files(&dir, f.seg_size)
            .into_iter()
            .rfind(|a| a.partial)
            .expect("a .partial");
        let path = dir.join(&partial.name);
        let len = std::fs::metadata(&path).expect("stat").len();
        let cut = rng.range(0, len + 1);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_len(cut).expect("truncate");
        drop(file);

        let mut r = receive_into(&f, &dir, &args);
        f.load(900);
        let end = f.switch();
        wait_holds(&f, &dir, end, &r);
        r.signal("TERM");
        r.expect_exit(0, PATIENCE);
        let compared = assert_archive(&f, &dir, &[suffix], 2);
        assert!(
            files(&dir, f.seg_size)
                .iter()
                .any(|a| a.segno == partial.segno && !a.partial),
            "{method}: the cut segment ({}, cut at {cut} of {len}) was not completed; {compared} compared",
            partial.name
        );
    }
}

#[test]
fn an_archive_moves_between_methods_and_stays_whole() {
    let f = fixture();
    let dir = archive_dir(&f, "mixed");
    f.c.psql("SELECT pg_create_physical_replication_slot('mixed', true)");
    for method in ["none", "gzip", "lz4", "zstd", "0", "zstd:level=1"] {
        // More than a segment per run, so each run completes a segment in its method.
        let mut r = receive_into(&f, &dir, &["-Z", method, "-S", "mixed", "-s", "1"]);
        f.load(1300);
        let lsn = f.load(200);
        wait_holds(&f, &dir, lsn, &r);
        r.signal("TERM");
        r.expect_exit(0, PATIENCE);
    }
    assert_archive(&f, &dir, &["", ".gz", ".lz4", ".zst"], 4);
}

/// `pg_receivewal` 15 (Debian's) on `dir`, compressing with `method`, verbose (its log
/// names where it starts).
fn pg_receivewal(f: &Fixture, dir: &Path, method: &str, log: &Path) -> Guarded {
    let log = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(debian_bin("pg_receivewal"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PGPASSFILE", "/nonexistent")
        .arg("-D")
        .arg(dir)
        .args(["-d", &f.conninfo, "--no-password", "-v", "-Z", method])
        .args(["-S", &format!("prw_{method}"), "-s", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    Guarded::spawn(&mut cmd)
}

/// Waits until pg_receivewal reports having written WAL up to `lsn` (its compressor may
/// still hold the last bytes: it flushes them when it closes the file).
#[track_caller]
fn wait_pg_receivewal_wrote(f: &Fixture, lsn: Lsn, log: &Path) {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg_receivewal' AND write_lsn >= '{lsn}'"
    );
    assert!(
        wait_until(PATIENCE, || f.c.psql(&sql) == "1"),
        "pg_receivewal did not write up to {lsn}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[track_caller]
fn stop_pg_receivewal(p: &mut Guarded, log: &Path) {
    p.signal("INT");
    let status = p.wait_timeout(PATIENCE);
    assert!(
        status.is_some_and(|s| s.success()),
        "pg_receivewal did not exit cleanly: {status:?}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn pg_receivewal_15_and_pgwalrus_continue_each_others_compressed_directories() {
    // Debian's pg_receivewal is 15 and refuses newer servers: against 16+ the interop runs
    // on a PostgreSQL 15 server instead (as receive_interop does).
    let pg = pg_bin();
    let pg = if pg.major <= 15 {
        pg
    } else {
        PgBin::new(DEBIAN_BINDIR)
    };
    let f = Fixture::new(
        Cluster::builder(&pg)
            .initdb_arg("--wal-segsize=1")
            .setting("wal_keep_size", "1GB")
            .start(),
    );
    for (method, suffix, _) in METHODS.iter().take(2) {
        f.c.psql(&format!(
            "SELECT pg_create_physical_replication_slot('prw_{method}', true)"
        ));
        let slot = format!("prw_{method}");

        // pgwalrus starts the archive; its `.partial` is kept small (pg_receivewal opens an
        // existing file without truncating it, so it must write more than is there).
        let ours = archive_dir(&f, &format!("ours-{method}"));
        let mut r = receive_into(&f, &ours, &["-Z", method, "-S", &slot, "-s", "1"]);
        f.load(1500);
        f.switch();
        let lsn = f.load(60);
        wait_holds(&f, &ours, lsn, &r);
        r.signal("TERM");
        r.expect_exit(0, PATIENCE);
        let before = files(&ours, f.seg_size);
        let partial = before.last().expect("files").clone();
        assert!(partial.partial, "{before:?}");

        // pg_receivewal continues it: from the `.partial`'s segment (so it read our complete
        // files as complete), into files pgwalrus then reads.
        let log = f.c.root_dir().join(format!("prw-{method}-1.log"));
        let mut p = pg_receivewal(&f, &ours, method, &log);
        f.load(1500);
        let lsn = f.load(100);
        wait_pg_receivewal_wrote(&f, lsn, &log);
        stop_pg_receivewal(&mut p, &log);
        assert!(
            holds(&f, &ours, lsn),
            "pg_receivewal lost WAL: {}",
            names(&ours)
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let expected = Lsn(partial.segno * f.seg_size);
        assert!(
            text.contains(&format!("starting log streaming at {expected} ")),
            "pg_receivewal did not resume at {expected} ({}):\n{text}",
            partial.name
        );
        assert_archive(&f, &ours, &[suffix], 3);

        // And pgwalrus continues pg_receivewal's directory, whose `.partial` pg_receivewal
        // wrote (and finished on SIGINT).
        let theirs = files(&ours, f.seg_size);
        let their_partial = theirs.last().expect("files").clone();
        assert!(their_partial.partial, "{theirs:?}");
        let mut r = receive_into(&f, &ours, &["-Z", method, "-S", &slot, "-s", "1"]);
        f.load(1500);
        let end = f.switch();
        wait_holds(&f, &ours, end, &r);
        r.signal("TERM");
        r.expect_exit(0, PATIENCE);
        assert!(
            r.stderr().contains(&format!(
                "starting log streaming at {}",
                Lsn(their_partial.segno * f.seg_size)
            )),
            "{}",
            r.stderr()
        );
        assert_archive(&f, &ours, &[suffix], 5);

        // pg_receivewal's own directory from scratch, continued by pgwalrus.
        let theirs_dir = archive_dir(&f, &format!("theirs-{method}"));
        let log = f.c.root_dir().join(format!("prw-{method}-2.log"));
        f.c.psql(&format!(
            "SELECT pg_drop_replication_slot('prw_{method}'); SELECT pg_create_physical_replication_slot('prw_{method}', true)"
        ));
        let mut p = pg_receivewal(&f, &theirs_dir, method, &log);
        f.load(1500);
        let lsn = f.load(300);
        wait_pg_receivewal_wrote(&f, lsn, &log);
        stop_pg_receivewal(&mut p, &log);
        assert!(
            holds(&f, &theirs_dir, lsn),
            "pg_receivewal lost WAL: {}",
            names(&theirs_dir)
        );
        let mut r = receive_into(&f, &theirs_dir, &["-Z", method, "-S", &slot, "-s", "1"]);
        f.load(1000);
        let end = f.switch();
        wait_holds(&f, &theirs_dir, end, &r);
        r.signal("TERM");
        r.expect_exit(0, PATIENCE);
        assert_archive(&f, &theirs_dir, &[suffix], 2);
    }
}

#[test]
fn bad_compress_specs_exit_2_naming_the_problem() {
    let home = Home::new();
    let dir = home.path().display().to_string();
    for (spec, says) in [
        ("brotli", "unrecognized compression algorithm: \"brotli\""),
        (
            "gzip:10",
            "\"gzip\" expects a compression level between 1 and 9",
        ),
        (
            "zstd:level=99",
            "\"zstd\" expects a compression level between",
        ),
        ("lz4:fast", "unrecognized compression option: \"fast\""),
        ("none:5", "\"none\" does not accept a compression level"),
        ("gzip:workers=4", "does not accept a worker count"),
        ("", "empty compression specification"),
    ] {
        let run = pgwalrus(&home, &["receive", "-D", &dir, "-Z", spec], &[]);
        run.expect_code(2);
        assert!(run.stderr.contains(says), "-Z {spec:?}: {}", run.stderr);
        assert!(run.stderr.contains("--compress"), "{}", run.stderr);
    }
}
