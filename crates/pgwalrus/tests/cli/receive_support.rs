//! Helpers of the `receive` tests: a cluster with an archive directory, `pgwalrus receive`
//! in the background, WAL load, and the oracles — the server's own `pg_wal` files (byte
//! equality), segment continuity, and snapshots of the archive directory.
//!
//! WAL file names and LSNs are parsed here by hand, independently of `pgwalrus-wal`, so
//! the tests do not share a bug with the code under test.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pgwalrus_testkit::{
    Cluster, ClusterBuilder, SUPERUSER, TRUST_USER, debian_bin, pg_bin, wait_until,
};

use crate::support::{Background, Guarded, Home};

/// How long a receiver may take for things that take well under a second.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// A cluster with 1 MiB WAL segments (a fresh initdb: its own system identifier).
pub(crate) fn small_cluster() -> ClusterBuilder {
    Cluster::builder(&pg_bin()).initdb_arg("--wal-segsize=1")
}

/// A WAL position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Lsn(pub(crate) u64);

impl Lsn {
    /// Parses PostgreSQL's `X/Y` text form.
    #[track_caller]
    pub(crate) fn parse(text: &str) -> Lsn {
        let text = text.trim();
        let (hi, lo) = text
            .split_once('/')
            .unwrap_or_else(|| panic!("not an LSN: {text:?}"));
        let hi = u64::from_str_radix(hi, 16).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let lo = u64::from_str_radix(lo, 16).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        Lsn((hi << 32) | lo)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A segment file of the archive, by its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SegFile {
    pub(crate) tli: u32,
    pub(crate) segno: u64,
    pub(crate) partial: bool,
    pub(crate) name: String,
}

/// `TTTTTTTTXXXXXXXXYYYYYYYY` of segment `segno` on `tli`.
pub(crate) fn segment_name(tli: u32, segno: u64, seg_size: u64) -> String {
    let per_id = 0x1_0000_0000 / seg_size;
    format!("{tli:08X}{:08X}{:08X}", segno / per_id, segno % per_id)
}

/// Parses a segment file name (with or without `.partial`); `None` for any other name.
pub(crate) fn parse_segment(name: &str, seg_size: u64) -> Option<SegFile> {
    let (base, partial) = match name.strip_suffix(".partial") {
        Some(base) => (base, true),
        None => (name, false),
    };
    if base.len() != 24 || !base.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let tli = u32::from_str_radix(&base[..8], 16).ok()?;
    let log = u64::from_str_radix(&base[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&base[16..], 16).ok()?;
    Some(SegFile {
        tli,
        segno: log * (0x1_0000_0000 / seg_size) + seg,
        partial,
        name: name.to_owned(),
    })
}

/// Every file in `dir` (not recursing) with its content.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| {
            let e = e.expect("dir entry");
            let name = e.file_name().to_string_lossy().into_owned();
            let content = std::fs::read(e.path()).unwrap_or_default();
            (name, content)
        })
        .collect()
}

/// A short description of a snapshot (name and size per file) for assertion messages.
pub(crate) fn listing(files: &BTreeMap<String, Vec<u8>>) -> String {
    files
        .iter()
        .map(|(n, c)| format!("{n} ({} bytes)", c.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A tiny seeded PRNG (xorshift64*), so random delays and lengths are reproducible.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

/// The seed of a test's RNG: `PGWALRUS_TEST_SEED` if set, else `default`. Printed, so a
/// failure can be replayed.
pub(crate) fn seed(default: u64) -> u64 {
    let seed = std::env::var("PGWALRUS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    #[allow(clippy::print_stderr, reason = "the seed replays a failure")]
    {
        eprintln!("seed {seed} (set PGWALRUS_TEST_SEED to replay)");
    }
    seed
}

/// A cluster, a private home, an archive directory inside the cluster's directory (removed
/// with it) and the connection string `pgwalrus receive` uses.
pub(crate) struct Fixture {
    pub(crate) c: Cluster,
    pub(crate) home: Home,
    pub(crate) archive: PathBuf,
    pub(crate) conninfo: String,
    pub(crate) seg_size: u64,
}

impl Fixture {
    /// A fixture on `c`, connecting as the trust user over TCP.
    pub(crate) fn new(c: Cluster) -> Fixture {
        let archive = c.root_dir().join("archive");
        std::fs::create_dir_all(&archive).expect("create archive dir");
        let conninfo = c.conninfo(TRUST_USER);
        let seg_size: u64 = c
            .psql("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")
            .parse()
            .expect("wal_segment_size in bytes");
        Fixture {
            c,
            home: Home::new(),
            archive,
            conninfo,
            seg_size,
        }
    }

    /// A fixture on a default [`small_cluster`].
    pub(crate) fn small() -> Fixture {
        Fixture::new(small_cluster().start())
    }

    /// `receive -D ARCHIVE -d CONNINFO EXTRA…` as argument strings.
    fn receive_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "receive".to_owned(),
            "-D".to_owned(),
            self.archive.display().to_string(),
            "-d".to_owned(),
            self.conninfo.clone(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }

    /// Starts `pgwalrus receive` into the archive in the background (its own log file).
    pub(crate) fn receive(&self, extra: &[&str]) -> Background {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let log = self.c.root_dir().join(format!(
            "receive-{}.log",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let args = self.receive_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Background::spawn(&self.home, &args, &[], &log)
    }

    /// Archives a little WAL with the receiver `receive` starts — a complete segment and a
    /// `.partial` of the next — stops it cleanly, and returns the position archived.
    pub(crate) fn archive_some(&self, receive: impl FnOnce() -> Background) -> Lsn {
        let mut r = receive();
        self.load(200);
        self.switch();
        let lsn = self.load(200);
        self.wait_archived(lsn, &r);
        r.signal("TERM");
        r.expect_exit(0, PATIENCE);
        lsn
    }

    /// The server's current WAL write position.
    pub(crate) fn current_lsn(&self) -> Lsn {
        Lsn::parse(&self.c.current_wal_lsn())
    }

    /// Writes about `kib` KiB of WAL (inserts into table `load`) and returns the position
    /// after it.
    pub(crate) fn load(&self, kib: u64) -> Lsn {
        // One row is a ~540-byte WAL record.
        let rows = kib * 1024 / 540 + 1;
        self.c.psql(&format!(
            "CREATE TABLE IF NOT EXISTS load (i int, t text);\n\
             INSERT INTO load SELECT g, repeat(md5(g::text), 15) FROM generate_series(1, {rows}) g;"
        ));
        self.current_lsn()
    }

    /// Forces a segment switch (after a little WAL) and returns the position after it: the
    /// start of the next segment.
    pub(crate) fn switch(&self) -> Lsn {
        self.c.switch_wal();
        self.current_lsn()
    }

    /// `segno` of the segment holding the byte *before* `lsn`.
    pub(crate) fn segno_before(&self, lsn: Lsn) -> u64 {
        (lsn.0 - 1) / self.seg_size
    }

    /// The server's own copy of a segment, from `pg_wal` (`None` once removed or recycled).
    pub(crate) fn server_segment(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.c.pg_wal_dir().join(name)).ok()
    }

    /// The archive's segment files (complete and `.partial`), sorted by timeline, segment,
    /// partial last.
    pub(crate) fn archive_segments(&self) -> Vec<SegFile> {
        let mut segs: Vec<SegFile> = snapshot_names(&self.archive)
            .iter()
            .filter_map(|n| parse_segment(n, self.seg_size))
            .collect();
        segs.sort();
        segs
    }

    /// A segment of `tli` from `dir`: the complete file, else the `.partial` (unless
    /// `complete_only`).
    fn read_segment(
        &self,
        dir: &Path,
        tli: u32,
        segno: u64,
        complete_only: bool,
    ) -> Option<Vec<u8>> {
        let name = segment_name(tli, segno, self.seg_size);
        let complete = || std::fs::read(dir.join(&name)).ok();
        if complete_only {
            return complete();
        }
        // A receiver may rename the `.partial` between the first two reads.
        complete()
            .or_else(|| std::fs::read(dir.join(format!("{name}.partial"))).ok())
            .or_else(complete)
    }

    /// Whether the archive holds the server's WAL of timeline 1 up to `lsn`; see
    /// [`Fixture::archive_holds_on`].
    pub(crate) fn archive_holds(&self, lsn: Lsn) -> bool {
        self.archive_holds_on(1, lsn)
    }

    /// Whether the archive holds the server's WAL of timeline `tli` up to `lsn`: the bytes
    /// of the segment before `lsn`, from its start to `lsn`, equal the server's `pg_wal`
    /// file (complete or `.partial` on both sides). When `lsn` ends a segment, the archive
    /// must have completed it: after `pg_switch_wal()` the rest of a segment is zeros on
    /// the server, which a sparse or zero-filled `.partial` matches before the receiver has
    /// received it. (Earlier segments are checked by
    /// [`Fixture::assert_complete_and_identical`].)
    pub(crate) fn archive_holds_on(&self, tli: u32, lsn: Lsn) -> bool {
        let segno = self.segno_before(lsn);
        let upto = usize::try_from(lsn.0 - segno * self.seg_size).expect("offset");
        let at_end = upto as u64 == self.seg_size;
        let (Some(ours), Some(theirs)) = (
            self.read_segment(&self.archive, tli, segno, at_end),
            self.read_segment(&self.c.pg_wal_dir(), tli, segno, false),
        ) else {
            return false;
        };
        ours.len() >= upto && theirs.len() >= upto && ours[..upto] == theirs[..upto]
    }

    /// Waits until the archive holds WAL up to `lsn`; panics with `receiver`'s log if not.
    #[track_caller]
    pub(crate) fn wait_archived(&self, lsn: Lsn, receiver: &Background) {
        assert!(
            wait_until(PATIENCE, || self.archive_holds(lsn)),
            "the archive does not hold WAL up to {lsn}; archive: {}\n--- receiver stderr\n{}",
            listing(&snapshot(&self.archive)),
            receiver.stderr()
        );
    }

    /// The start of the archive's oldest segment (`None` for an empty archive).
    pub(crate) fn archive_start(&self) -> Option<Lsn> {
        self.archive_segments()
            .iter()
            .map(|s| s.segno)
            .min()
            .map(|segno| Lsn(segno * self.seg_size))
    }

    /// Waits until a walsender for `application_name` is streaming.
    #[track_caller]
    pub(crate) fn wait_streaming(&self, application_name: &str, receiver: &Background) {
        let sql = format!(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = '{application_name}' AND state = 'streaming'"
        );
        assert!(
            wait_until(PATIENCE, || self.c.psql(&sql) == "1"),
            "{application_name} is not streaming\n--- receiver stderr\n{}",
            receiver.stderr()
        );
    }

    /// The archive's invariants after any sequence of runs and crashes on one timeline:
    /// every segment from the first to the last is present (no gap), only the newest may
    /// be `.partial` (and not also complete), every complete segment is one segment long
    /// and byte-identical to the server's file when `pg_wal` still has it. Returns the
    /// number of complete segments compared with the server's; at least `min_compared`.
    #[track_caller]
    pub(crate) fn assert_complete_and_identical(&self, min_compared: usize) -> usize {
        let segs = self.archive_segments();
        let files = listing(&snapshot(&self.archive));
        assert!(!segs.is_empty(), "no segments in the archive: {files}");
        let first = segs[0].segno;
        let last = segs[segs.len() - 1].segno;
        for segno in first..=last {
            let here: Vec<&SegFile> = segs.iter().filter(|s| s.segno == segno).collect();
            assert_eq!(
                here.len(),
                1,
                "segment {segno:X}: expected exactly one file (complete or .partial): {files}"
            );
            assert_eq!(here[0].tli, 1, "unexpected timeline: {files}");
            if here[0].partial {
                assert_eq!(
                    segno, last,
                    "a .partial that is not the newest segment: {files}"
                );
            }
        }
        let mut compared = 0;
        for seg in segs.iter().filter(|s| !s.partial) {
            let path = self.archive.join(&seg.name);
            let len = std::fs::metadata(&path)
                .expect("stat archive segment")
                .len();
            assert_eq!(len, self.seg_size, "{} is not one segment long", seg.name);
            // Only segments the server still has are read: a long soak calls this after
            // every fault, on an archive of hundreds of segments.
            if let Some(theirs) = self.server_segment(&seg.name) {
                let ours = std::fs::read(&path).expect("read archive segment");
                if ours != theirs {
                    let at = ours.iter().zip(&theirs).position(|(a, b)| a != b);
                    panic!(
                        "{} differs from the server's pg_wal file (first difference at byte {at:?})",
                        seg.name
                    );
                }
                compared += 1;
            }
        }
        assert!(
            compared >= min_compared,
            "only {compared} complete segments could be compared with pg_wal (wanted {min_compared}): {files}"
        );
        compared
    }
}

/// File names in `dir`.
pub(crate) fn snapshot_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Debian's `psql` as the superuser over TCP, database `postgres`, running `sql` (fed on
/// stdin, so each statement runs on its own) in the background, for statements that block;
/// stdout and stderr are piped.
pub(crate) fn psql_background(c: &Cluster, sql: &str, application_name: &str) -> Guarded {
    let mut cmd = Command::new(debian_bin("psql"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PGPASSFILE", "/nonexistent")
        .env("PGAPPNAME", application_name)
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(format!("{} dbname=postgres", c.conninfo(SUPERUSER)))
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut psql = Guarded::spawn(&mut cmd);
    psql.feed_stdin(sql.as_bytes());
    psql
}

/// Runs `sql` with Debian's `psql` as the superuser over TCP and returns its output (as
/// [`Cluster::psql`]), panicking if it fails or takes longer than `timeout` — for
/// statements that wait on the receiver (synchronous commits), so a receiver that never
/// answers fails the test instead of hanging it.
#[track_caller]
pub(crate) fn psql_within(c: &Cluster, sql: &str, timeout: Duration) -> String {
    let mut psql = psql_background(c, sql, "walrus_test");
    match psql.wait_output(timeout) {
        Some((status, stdout, _)) if status.success() => stdout.trim_end().to_owned(),
        Some((status, _, stderr)) => panic!("psql failed ({status}): {sql}\n{stderr}"),
        None => panic!("psql did not return within {timeout:?}: {sql}"),
    }
}

/// Debian's `pgbench` against `c` ([`Cluster::pgbench`]).
pub(crate) fn pgbench_command(c: &Cluster, args: &[&str]) -> Command {
    c.pgbench(args)
}

/// Runs Debian's `pgbench` (15, which works against every major) as the superuser over TCP.
#[track_caller]
pub(crate) fn pgbench(c: &Cluster, args: &[&str]) {
    let out = pgbench_command(c, args)
        .stdin(Stdio::null())
        .output()
        .expect("run pgbench");
    assert!(
        out.status.success(),
        "pgbench {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `pgwalrus receive -D ARCHIVE -d CONNINFO EXTRA…` in the background, for tests
/// with several servers or archives; its stderr goes to a new log file beside `archive`.
pub(crate) fn receive_into(
    home: &Home,
    archive: &Path,
    conninfo: &str,
    extra: &[&str],
) -> Background {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let log = PathBuf::from(format!(
        "{}-receive-{}.log",
        archive.display(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let archive = archive.display().to_string();
    let mut args = vec!["receive", "-D", &archive, "-d", conninfo];
    args.extend_from_slice(extra);
    Background::spawn(home, &args, &[], &log)
}

/// Whether `archive` holds `server`'s WAL of timeline `tli` up to `lsn`, as
/// [`Fixture::archive_holds_on`] for any archive and server: the segment before `lsn`
/// equals the server's `pg_wal` file up to `lsn`, and is complete when `lsn` ends it.
pub(crate) fn segment_holds(
    archive: &Path,
    server: &Cluster,
    seg_size: u64,
    tli: u32,
    lsn: Lsn,
) -> bool {
    let segno = (lsn.0 - 1) / seg_size;
    let upto = usize::try_from(lsn.0 - segno * seg_size).expect("offset");
    let name = segment_name(tli, segno, seg_size);
    let read = |dir: &Path, complete_only: bool| {
        let complete = || std::fs::read(dir.join(&name)).ok();
        if complete_only {
            return complete();
        }
        complete()
            .or_else(|| std::fs::read(dir.join(format!("{name}.partial"))).ok())
            .or_else(complete)
    };
    let (Some(ours), Some(theirs)) = (
        read(archive, upto as u64 == seg_size),
        read(&server.pg_wal_dir(), false),
    ) else {
        return false;
    };
    ours.len() >= upto && theirs.len() >= upto && ours[..upto] == theirs[..upto]
}
