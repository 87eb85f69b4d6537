//! Differential test against PostgreSQL's own WAL reader: a real PostgreSQL 15 server
//! writes WAL under a varied load (pgbench, DDL, VACUUM, CREATE DATABASE with both
//! strategies, prepared and sub-transactions, multixacts, logical messages, every index
//! access method, a tablespace) with `wal_compression` off, pglz, lz4 and zstd in turn;
//! the completed segments are decoded by [`WalDecoder`] and compared with `pg_waldump`
//! line by line, and with `pg_waldump --stats` / `--stats=record`.
//!
//! The server runs as the `postgres` OS user when the test runs as root, listens only on
//! a private unix socket directory, and is stopped and removed by a drop guard even when
//! the test panics. Set `PGWALRUS_PG15_BINDIR` to use other binaries; without PostgreSQL 15
//! binaries the test fails, naming what is missing (`scripts/test.sh` installs them).

// The report of what was compared goes to stderr; it is the point of this test.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use pgwalrus_wal::dump::{WalStats, format_record};
use pgwalrus_wal::names::FileName;
use pgwalrus_wal::page::{LONG_HEADER_LEN, SHORT_HEADER_LEN, XLOG_BLCKSZ};
use pgwalrus_wal::rmgr::RmgrId;
use pgwalrus_wal::{EndReason, Expectations, Lsn, PgMajor, Record, WalDecoder, WalSegSize, desc};

const DEFAULT_BINDIR: &str = "/usr/lib/postgresql/15/bin";
const PORT: &str = "5432";

/// A throwaway cluster; dropping it stops the server and removes its directory.
struct Server {
    root: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    /// initdb, pg_ctl, postgres.
    bin: PathBuf,
    /// psql and pgbench (PostgreSQL 15's serve every major).
    client_bin: PathBuf,
    major: PgMajor,
    as_postgres: bool,
    started: bool,
}

fn output_text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(mut cmd: Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed: {}",
        output_text(&out)
    );
    out
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

impl Server {
    fn init(bin: &Path, client_bin: &Path, major: PgMajor) -> Server {
        let as_postgres = is_root();
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = base.join(format!(
            "pgwalrus-wal-diff-{}-{major}-{n}",
            std::process::id()
        ));
        // A directory left by an earlier process with the same pid is stale.
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let server = Server {
            data: root.join("data"),
            sock: root.join("sock"),
            bin: bin.to_path_buf(),
            client_bin: client_bin.to_path_buf(),
            major,
            root,
            as_postgres,
            started: false,
        };
        if as_postgres {
            run({
                let mut c = Command::new("chown");
                c.arg("postgres:postgres").arg(&server.root);
                c
            });
        }
        let mut mkdir = server.as_server_user("mkdir");
        mkdir.arg(&server.sock).arg(server.root.join("ts1"));
        run(mkdir);
        let mut initdb = server.as_server_user(bin.join("initdb"));
        initdb
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&server.data);
        run(initdb);
        let conf = "\n# pgwalrus-wal differential test\n\
            listen_addresses = ''\n\
            wal_level = logical\n\
            wal_log_hints = on\n\
            max_prepared_transactions = 5\n\
            autovacuum = off\n\
            fsync = off\n\
            wal_keep_size = '4GB'\n\
            max_wal_size = '4GB'\n\
            checkpoint_timeout = '1h'\n\
            log_min_messages = warning\n";
        let path = server.data.join("postgresql.conf");
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str(conf);
        fs::write(&path, text).unwrap();
        server
    }

    fn as_server_user(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn start(&mut self) {
        let mut c = self.as_server_user(self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.root.join("server.log"))
            .arg("-o")
            .arg(format!("-k {} -p {PORT}", self.sock.display()))
            .args(["-w", "start"]);
        self.started = true;
        run(c);
    }

    fn psql_command(&self, sql: &str) -> Command {
        let mut c = self.as_server_user(self.client_bin.join("psql"));
        c.arg("-X")
            .arg("-h")
            .arg(&self.sock)
            .args(["-p", PORT, "-U", "postgres", "-d", "postgres"])
            .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql]);
        c
    }

    fn psql(&self, sql: &str) -> String {
        String::from_utf8(run(self.psql_command(sql)).stdout)
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Runs `sql`, returning psql's output when it fails instead of panicking.
    fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = self
            .psql_command(sql)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(output_text(&out))
        }
    }

    fn pgbench(&self, args: &[&str]) {
        let mut c = self.as_server_user(self.client_bin.join("pgbench"));
        c.arg("-h")
            .arg(&self.sock)
            .args(["-p", PORT, "-U", "postgres"])
            .args(args)
            .arg("postgres");
        run(c);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.started {
            let mut c = self.as_server_user(self.bin.join("pg_ctl"));
            c.arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = c.status();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The load: every record family pgwalrus describes, plus the other access methods.
/// Returns the `wal_compression` methods the server accepted.
fn workload(server: &Server) -> Vec<&'static str> {
    let ts = server.root.join("ts1");
    let v15 = server.major >= PgMajor::V15;
    let tablespace = format!("CREATE TABLESPACE ts1 LOCATION '{}'", ts.display());
    let mut statements = vec![
        "CREATE TABLE t (a int PRIMARY KEY, b text, c int[])",
        "INSERT INTO t SELECT g, repeat('x', g % 300), ARRAY[g, g + 1] FROM generate_series(1, 20000) g",
        "UPDATE t SET b = 'y' WHERE a % 7 = 0",
        "DELETE FROM t WHERE a % 11 = 0",
        "CREATE INDEX t_b_hash ON t USING hash (b)",
        "CREATE INDEX t_c_gin ON t USING gin (c)",
        "CREATE INDEX t_a_brin ON t USING brin (a)",
        "CREATE TABLE pts (p point)",
        "INSERT INTO pts SELECT point(g, g % 100) FROM generate_series(1, 3000) g",
        "CREATE INDEX pts_gist ON pts USING gist (p)",
        "CREATE INDEX pts_spgist ON pts USING spgist (p)",
        "INSERT INTO t SELECT g, 'late', ARRAY[g] FROM generate_series(20001, 22000) g",
        "DELETE FROM pts WHERE p[0] > 2000",
        "VACUUM t",
        "VACUUM (FREEZE) pts",
        "VACUUM FULL pg_class",
        "CREATE SEQUENCE s",
        "SELECT count(nextval('s')) FROM generate_series(1, 100)",
        "BEGIN; INSERT INTO t VALUES (100001, 'p'); PREPARE TRANSACTION 'tx1'",
        "COMMIT PREPARED 'tx1'",
        "BEGIN; INSERT INTO t VALUES (100002, 'p'); CREATE TABLE tp (a int); PREPARE TRANSACTION 'tx2'",
        "ROLLBACK PREPARED 'tx2'",
        "BEGIN; SAVEPOINT a; INSERT INTO t VALUES (100003); SAVEPOINT b; INSERT INTO t VALUES (100004); \
         RELEASE b; ROLLBACK TO a; INSERT INTO t VALUES (100005); COMMIT",
        "BEGIN; SELECT a FROM t WHERE a = 1 FOR SHARE; SAVEPOINT s1; UPDATE t SET b = 'z' WHERE a = 1; COMMIT",
        "BEGIN; SELECT a FROM t WHERE a = 2 FOR KEY SHARE; SAVEPOINT s1; SELECT a FROM t WHERE a = 2 FOR UPDATE; \
         SAVEPOINT s2; DELETE FROM t WHERE a = 2; COMMIT",
        "SELECT pg_logical_emit_message(true, 'pfx', 'hello')",
        "SELECT pg_logical_emit_message(false, 'big', repeat('x', 50000))",
        "SELECT pg_logical_emit_message(false, 'other', '\\x00ff10'::bytea)",
        "SELECT pg_create_restore_point('rp1')",
        "TRUNCATE pts",
        &tablespace,
        "CREATE TABLE tt (a int) TABLESPACE ts1",
        "INSERT INTO tt SELECT generate_series(1, 100)",
        "DROP TABLE tt",
        "DROP TABLESPACE ts1",
        "CREATE DATABASE d1",
        "CLUSTER t USING t_pkey",
        "ALTER TABLE t ADD COLUMN d int DEFAULT 5",
        "BEGIN; CREATE TABLE tmp1 (a int); ROLLBACK",
        // Images kept only for consistency checking: "FPW for WAL verification".
        "SET wal_consistency_checking = 'heap'; CHECKPOINT; UPDATE t SET d = 6 WHERE a < 50",
        "CHECKPOINT",
    ];
    if v15 {
        statements.push("CREATE DATABASE d2 STRATEGY FILE_COPY");
    } else {
        statements.push("CREATE DATABASE d2");
    }
    statements.push("DROP DATABASE d2");
    for sql in statements {
        server.psql(sql);
    }
    server.pgbench(&["-i", "-s", "1", "-q"]);
    let methods: &[&'static str] = if v15 {
        &["off", "pglz", "lz4", "zstd"]
    } else {
        &["off", "on"]
    };
    let mut accepted = Vec::new();
    for &method in methods {
        if server
            .try_psql(&format!("ALTER SYSTEM SET wal_compression = '{method}'"))
            .is_err()
        {
            continue;
        }
        accepted.push(method);
        server.psql("SELECT pg_reload_conf()");
        server.psql("CHECKPOINT");
        server.pgbench(&["-n", "-c", "2", "-j", "2", "-t", "150"]);
        server.psql("UPDATE pgbench_accounts SET filler = 'f' WHERE aid % 211 = 0");
        server.psql("VACUUM pgbench_accounts");
    }
    accepted
}

struct Decoded {
    major: PgMajor,
    records: Vec<Record>,
    files: Vec<PathBuf>,
    /// The insert position read when the load stopped, just before the switch.
    stop: Lsn,
}

/// Switches WAL, copies the completed segments aside and decodes them in order, fed in
/// uneven chunks.
fn switch_and_decode(server: &Server, seg_size: WalSegSize) -> Decoded {
    let row = server.psql("SELECT pg_current_wal_insert_lsn(), pg_walfile_name(pg_switch_wal())");
    let (stop, last_file) = row.split_once('|').unwrap();
    let stop: Lsn = stop.parse().unwrap();
    let pg_wal = server.data.join("pg_wal");
    let mut names: Vec<String> = fs::read_dir(&pg_wal)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.len() == 24 && name.as_str() <= last_file)
        .collect();
    names.sort();
    let copy = server.root.join("wal-copy");
    fs::create_dir_all(&copy).unwrap();
    for name in &names {
        fs::copy(pg_wal.join(name), copy.join(name)).unwrap();
    }
    let files: Vec<PathBuf> = names.iter().map(|n| copy.join(n)).collect();

    let FileName::Segment(seg) = FileName::parse(&names[0], seg_size).unwrap() else {
        panic!("{} is not a segment", names[0]);
    };
    let mut dec = WalDecoder::new(seg.start_lsn(), seg_size, Expectations::default()).unwrap();
    let mut records = Vec::new();
    let chunks = [1 << 20, 777, 65_536, 8192, 123_457];
    let mut k = 0;
    for file in &files {
        let bytes = fs::read(file).unwrap();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let (now, later) = rest.split_at(chunks[k % chunks.len()].min(rest.len()));
            k += 1;
            rest = later;
            dec.feed(now);
            while let Some(r) = dec.next().unwrap_or_else(|e| panic!("decode error: {e}")) {
                records.push(r);
            }
        }
    }
    dec.finish();
    while let Some(r) = dec.next().unwrap() {
        records.push(r);
    }
    let end = dec.end_of_wal().unwrap();
    assert_eq!(
        end.reason,
        EndReason::InputEnded,
        "segments end after a switch"
    );
    let decoded = Decoded {
        major: dec.major().unwrap(),
        records,
        files,
        stop,
    };
    assert_eq!(decoded.major, server.major);
    check_stop_position(&decoded, seg_size);
    decoded
}

/// The record before the switch ends at the insert position read when the load stopped
/// (which names the position after the page header when that end is a page start).
fn check_stop_position(decoded: &Decoded, seg_size: WalSegSize) {
    let switch_at = decoded
        .records
        .iter()
        .rposition(|r| r.rmid() == 0 && r.info() & 0xF0 == 0x40)
        .unwrap();
    let end = decoded.records[switch_at - 1].end;
    let normalized = if end.0.is_multiple_of(u64::from(XLOG_BLCKSZ)) {
        let header = if end.is_segment_start(seg_size) {
            LONG_HEADER_LEN
        } else {
            SHORT_HEADER_LEN
        };
        Lsn(end.0 + header as u64)
    } else {
        end
    };
    assert_eq!(
        normalized, decoded.stop,
        "end of the last record before the switch"
    );
    assert_eq!(decoded.records[switch_at].lsn, normalized);
}

/// Starting at a page that begins with the continuation of a multi-page record yields
/// exactly the records that start after it.
fn check_start_inside_a_record(decoded: &Decoded, seg_size: WalSegSize) {
    let page = u64::from(XLOG_BLCKSZ);
    // A page (not a segment's first) whose continuation runs past its end: the workload's
    // 50 kB logical message makes one.
    let (file, bytes, offset) = decoded
        .files
        .iter()
        .find_map(|file| {
            let bytes = fs::read(file).unwrap();
            let offset = (1..seg_size.as_u64() / page)
                .map(|i| (i * page) as usize)
                .find(|&at| {
                    let info = u16::from_le_bytes([bytes[at + 2], bytes[at + 3]]);
                    let rem = u32::from_le_bytes(bytes[at + 16..at + 20].try_into().unwrap());
                    info & 0x0001 != 0 && u64::from(rem) > page
                })?;
            Some((file, bytes, offset))
        })
        .expect("a page inside a multi-page record");
    let name = file.file_name().unwrap().to_str().unwrap();
    let FileName::Segment(seg) = FileName::parse(name, seg_size).unwrap() else {
        panic!("{name} is not a segment");
    };
    let start = Lsn(seg.start_lsn().0 + offset as u64);
    let mut dec = WalDecoder::new(start, seg_size, Expectations::default()).unwrap();
    dec.feed(&bytes[offset..]);
    let mut records = Vec::new();
    while let Some(r) = dec.next().unwrap() {
        records.push(r);
    }
    // Only this segment was fed: the records that start after the page and end in it.
    let seg_end = Lsn(seg.start_lsn().0 + seg_size.as_u64());
    let expected: Vec<&Record> = decoded
        .records
        .iter()
        .filter(|r| r.lsn > start && r.end <= seg_end)
        .collect();
    assert!(!records.is_empty());
    assert_eq!(records.len(), expected.len(), "records after {start}");
    for (got, want) in records.iter().zip(expected) {
        assert_eq!((got.lsn, got.raw()), (want.lsn, want.raw()));
    }
}

/// Every image compression method seen, by name ("none" for uncompressed), and how many
/// images were not to be applied.
fn image_kinds(records: &[Record]) -> (BTreeMap<&'static str, usize>, usize) {
    let mut kinds = BTreeMap::new();
    let mut verification_only = 0;
    for image in records
        .iter()
        .flat_map(|r| &r.blocks)
        .filter_map(|b| b.image.as_ref())
    {
        *kinds
            .entry(image.compression.name().unwrap_or("none"))
            .or_insert(0) += 1;
        if !image.apply {
            verification_only += 1;
        }
    }
    (kinds, verification_only)
}

/// Splits a `pg_waldump` line into (header up to and including the type, description,
/// block references).
fn split_line(line: &str) -> (&str, &str, &str) {
    let desc_at = line.find("desc: ").map_or(line.len(), |i| i + 6);
    let rest = &line[desc_at..];
    // "UNKNOWN (x) " has a space inside.
    let type_len = if rest.starts_with("UNKNOWN (") {
        rest.find(") ").map_or(rest.len(), |i| i + 2)
    } else {
        rest.find(' ').map_or(rest.len(), |i| i + 1)
    };
    let type_end = desc_at + type_len;
    let blk_at = line[type_end..]
        .find(", blkref #")
        .map_or(line.len(), |i| type_end + i);
    (&line[..type_end], &line[type_end..blk_at], &line[blk_at..])
}

#[derive(Default, Debug)]
struct Tally {
    records: usize,
    header: usize,
    desc: usize,
    blkref: usize,
}

fn pg15_bindir() -> Option<PathBuf> {
    let bin = PathBuf::from(
        std::env::var("PGWALRUS_PG15_BINDIR").unwrap_or_else(|_| DEFAULT_BINDIR.to_owned()),
    );
    let complete = [
        "initdb",
        "pg_ctl",
        "postgres",
        "psql",
        "pgbench",
        "pg_waldump",
    ]
    .iter()
    .all(|p| bin.join(p).is_file());
    complete.then_some(bin)
}

#[test]
fn decoder_matches_pg_waldump_on_pg15_wal() {
    let bin = pg15_bindir().expect(
        "no PostgreSQL 15 binaries with pg_waldump (scripts/test.sh installs postgresql-15; or set PGWALRUS_PG15_BINDIR)",
    );
    let seg_size = WalSegSize::DEFAULT;
    let mut server = Server::init(&bin, &bin, PgMajor::V15);
    server.start();
    let methods = workload(&server);
    assert_eq!(methods, ["off", "pglz", "lz4", "zstd"]);
    let decoded = switch_and_decode(&server, seg_size);
    let (kinds, verification_only) = image_kinds(&decoded.records);
    for kind in ["none", "pglz", "lz4", "zstd"] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} images: {kinds:?}"
        );
    }
    assert!(verification_only > 0, "no images for consistency checking");

    check_start_inside_a_record(&decoded, seg_size);

    // pg_waldump over the same files.
    let waldump = |extra: &[&str]| -> String {
        let mut c = Command::new(bin.join("pg_waldump"));
        c.env("TZ", "UTC")
            .args(extra)
            .arg("-p")
            .arg(decoded.files[0].parent().unwrap())
            .arg(decoded.files.first().unwrap().file_name().unwrap())
            .arg(decoded.files.last().unwrap().file_name().unwrap());
        // It reports an error when it runs off the last file; stdout is complete.
        String::from_utf8(c.output().unwrap().stdout).unwrap()
    };
    let theirs_text = waldump(&[]);
    let theirs: Vec<&str> = theirs_text.lines().collect();
    let ours: Vec<String> = decoded
        .records
        .iter()
        .map(|r| format_record(decoded.major, r))
        .collect();

    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut examples: Vec<String> = Vec::new();
    for (mine, theirs) in ours.iter().zip(&theirs) {
        let (mh, md, mb) = split_line(mine);
        let (th, td, tb) = split_line(theirs);
        let rmgr = th
            .strip_prefix("rmgr: ")
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("?")
            .to_owned();
        let described = rmgr_named(&rmgr).is_some_and(desc::is_described);
        let t = tally.entry(rmgr).or_default();
        t.records += 1;
        let mut bad = false;
        if mh != th {
            t.header += 1;
            bad = true;
        }
        if md != td {
            t.desc += 1;
            bad |= described;
        }
        if mb != tb {
            t.blkref += 1;
            bad = true;
        }
        if bad && examples.len() < 20 {
            examples.push(format!("ours:   {mine}\ntheirs: {theirs}"));
        }
    }
    eprintln!(
        "pg15: compared {} records ({} from pg_waldump) in {} segments; images {kinds:?}, \
         {verification_only} for verification only",
        ours.len(),
        theirs.len(),
        decoded.files.len()
    );
    eprintln!(
        "{:<18} {:>8} {:>7} {:>7} {:>7}",
        "rmgr", "records", "header", "desc", "blkref"
    );
    for (rmgr, t) in &tally {
        eprintln!(
            "{rmgr:<18} {:>8} {:>7} {:>7} {:>7}",
            t.records, t.header, t.desc, t.blkref
        );
    }
    for e in &examples {
        eprintln!("{e}");
    }
    assert_eq!(ours.len(), theirs.len(), "record count");
    for (rmgr, t) in &tally {
        assert_eq!(t.header, 0, "{rmgr}: header or type mismatches");
        assert_eq!(t.blkref, 0, "{rmgr}: block reference mismatches");
        if rmgr_named(rmgr).is_some_and(desc::is_described) {
            assert_eq!(t.desc, 0, "{rmgr}: description mismatches");
        }
    }

    // Statistics, per resource manager and per record type.
    let mut stats = WalStats::new();
    for r in &decoded.records {
        stats.add(r);
    }
    for (flag, per_record) in [("--stats", false), ("--stats=record", true)] {
        let theirs = waldump(&[flag]);
        let ours = stats.render(decoded.major, per_record);
        assert_eq!(ours, theirs, "{flag} output");
    }
}

fn rmgr_named(name: &str) -> Option<RmgrId> {
    (0..=u8::MAX)
        .map(RmgrId)
        .find(|r| r.builtin_name() == Some(name))
}

/// Server binaries of the other majors, as `scripts/install-pg-majors.sh` caches them
/// (`PGWALRUS_PG_CACHE`, default `<repo>/.cache/pg`); they lack pg_waldump, so their WAL
/// is checked for decodability and descriptions that read within the record.
fn other_majors() -> Vec<(PgMajor, PathBuf)> {
    let cache = std::env::var("PGWALRUS_PG_CACHE").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/pg"),
        PathBuf::from,
    );
    [PgMajor::V14, PgMajor::V16, PgMajor::V17, PgMajor::V18]
        .into_iter()
        .filter_map(|m| {
            let bin = cache.join(m.number().to_string()).join("native/bin");
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|p| bin.join(p).is_file())
                .then_some((m, bin))
        })
        .collect()
}

#[test]
fn decodes_and_describes_wal_of_other_majors() {
    let client_bin = pg15_bindir().expect(
        "no PostgreSQL 15 client binaries (scripts/test.sh installs postgresql-15; or set PGWALRUS_PG15_BINDIR)",
    );
    let majors = other_majors();
    assert!(
        !majors.is_empty(),
        "no other PostgreSQL majors installed: run scripts/install-pg-majors.sh (scripts/test.sh does)"
    );
    for (major, bin) in majors {
        let mut server = Server::init(&bin, &client_bin, major);
        server.start();
        let methods = workload(&server);
        let decoded = switch_and_decode(&server, WalSegSize::DEFAULT);
        let (kinds, verification_only) = image_kinds(&decoded.records);
        let mut per_rmgr: BTreeMap<String, usize> = BTreeMap::new();
        let mut unknown = Vec::new();
        let mut short = Vec::new();
        for r in &decoded.records {
            let line = format_record(major, r);
            *per_rmgr.entry(RmgrId(r.rmid()).to_string()).or_insert(0) += 1;
            if line.contains("desc: UNKNOWN") {
                unknown.push(line.clone());
            }
            if line.contains("<data too short>") {
                short.push(line);
            }
        }
        eprintln!(
            "pg{major}: decoded {} records in {} segments (compression {methods:?}; images \
             {kinds:?}, {verification_only} for verification only); per rmgr {per_rmgr:?}",
            decoded.records.len(),
            decoded.files.len()
        );
        assert!(
            unknown.is_empty(),
            "pg{major}: unidentified records: {:?}",
            &unknown[..unknown.len().min(5)]
        );
        assert!(
            short.is_empty(),
            "pg{major}: descriptions past the data: {:?}",
            &short[..short.len().min(5)]
        );
        assert!(
            verification_only > 0,
            "pg{major}: no images for consistency checking"
        );
        drop(server);
    }
}
