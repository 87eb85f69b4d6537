//! `pgwalrus receive --archive s3://…` against a real S3 server (`s3s-fs`): every completed
//! segment reaches the bucket byte-identical to the server's `pg_wal` once decompressed,
//! history and identity objects are there, another cluster's prefix is refused, and a key
//! holding other WAL is never overwritten.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pgwalrus_archive::compress::{Compression, StreamEnd, decode};
use pgwalrus_testkit::{S3Server, wait_until};

use crate::receive_support::{Fixture, Lsn, PATIENCE, pgbench, segment_name};
use crate::support::Background;

/// `receive --archive URL EXTRA…` into the fixture's archive directory, with the server's
/// AWS environment.
fn receive_to(f: &Fixture, s3: &S3Server, prefix: &str, extra: &[&str]) -> Background {
    let log = format!("receive-s3-{}.log", prefix.replace('/', "-"));
    receive_into(f, s3, prefix, &f.archive, None, extra, &log)
}

/// `receive -D SPOOL --archive URL EXTRA…` with `s3`'s AWS environment, its endpoint replaced
/// by `endpoint` when given (a fault proxy in front of `s3`); stderr to `log` in the
/// cluster's directory.
fn receive_into(
    f: &Fixture,
    s3: &S3Server,
    prefix: &str,
    spool: &Path,
    endpoint: Option<&str>,
    extra: &[&str],
    log: &str,
) -> Background {
    let url = s3.url(prefix);
    let spool = spool.display().to_string();
    let mut args = vec![
        "receive",
        "-D",
        spool.as_str(),
        "-d",
        f.conninfo.as_str(),
        "--archive",
        url.as_str(),
    ];
    args.extend_from_slice(extra);
    let mut env = s3.env();
    if let Some(endpoint) = endpoint {
        for (k, v) in &mut env {
            if *k == "AWS_ENDPOINT_URL" {
                endpoint.clone_into(v);
            }
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Background::spawn(&f.home, &args, &env, &f.c.root_dir().join(log))
}

/// The cluster's archive root in the bucket's directory.
fn root(s3: &S3Server, prefix: &str, f: &Fixture) -> PathBuf {
    s3.bucket_dir()
        .join(prefix)
        .join(f.c.system_identifier().to_string())
}

/// The WAL an object holds, decompressed by its magic number.
fn wal_of(object: &[u8]) -> Vec<u8> {
    let method = match object {
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
        [0x1f, 0x8b, ..] => Some(Compression::Gzip),
        [0x04, 0x22, 0x4d, 0x18, ..] => Some(Compression::Lz4),
        _ => None,
    };
    let Some(method) = method else {
        return object.to_vec();
    };
    let mut out = Vec::new();
    let held = decode(method, object, u64::MAX, |b| out.extend_from_slice(b)).unwrap();
    assert_eq!(held.end, StreamEnd::Finished);
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn receive_ships_completed_segments_byte_identical_to_pg_wal() {
    let f = Fixture::small();
    let s3 = S3Server::start("walrus");
    let mut r = receive_to(&f, &s3, "fleet/db1", &["-Z", "zstd"]);
    pgbench(&f.c, &["-i", "-s", "1", "-q"]);
    pgbench(&f.c, &["-c", "2", "-t", "100"]);
    let end = f.switch();
    let last = segment_name(1, f.segno_before(end), f.seg_size);
    let wal = root(&s3, "fleet/db1", &f).join("wal");
    assert!(
        wait_until(PATIENCE, || wal.join(&last).is_file()),
        "{last} never reached the bucket: {:?}\n{}",
        names(&wal),
        r.stderr()
    );
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);

    let shipped = names(&wal);
    let local: Vec<String> = names(&f.archive)
        .into_iter()
        .filter_map(|n| n.strip_suffix(".zst").map(str::to_owned))
        .collect();
    assert_eq!(
        shipped, local,
        "every completed local segment is in the bucket"
    );
    assert!(shipped.len() >= 10, "{shipped:?}");
    let mut compared = 0;
    for name in &shipped {
        let object = std::fs::read(wal.join(name)).unwrap();
        assert_eq!(
            &object[..4],
            &[0x28, 0xb5, 0x2f, 0xfd],
            "{name} is stored as compressed"
        );
        let ours = wal_of(&object);
        assert_eq!(ours.len() as u64, f.seg_size, "{name}");
        if let Some(theirs) = f.server_segment(name) {
            assert!(ours == theirs, "{name} differs from pg_wal");
            compared += 1;
        }
    }
    assert!(compared >= 10, "only {compared} compared");
    let root = root(&s3, "fleet/db1", &f);
    let identity = std::fs::read_to_string(root.join("archive.json")).unwrap();
    assert!(
        identity.contains(&f.c.system_identifier().to_string()),
        "{identity}"
    );
    assert!(
        names(&root.join("conflicts")).is_empty(),
        "nothing in the conflicts prefix"
    );
    let state = std::fs::read_to_string(f.archive.join("pgwalrus.shipped")).unwrap();
    assert!(state.contains(shipped.last().unwrap()), "{state}");
}

#[test]
fn receive_refuses_another_clusters_bucket_prefix_and_writes_nothing_there() {
    let f = Fixture::small();
    let s3 = S3Server::start("walrus");
    let other = s3.bucket_dir().join("db/1234567890123456789/wal");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("000000010000000000000001"), b"theirs").unwrap();
    let mut r = receive_to(&f, &s3, "db", &[]);
    r.expect_exit(3, PATIENCE);
    let err = r.stderr();
    assert!(
        err.contains("another cluster") && err.contains("1234567890123456789"),
        "{err}"
    );
    assert_eq!(
        names(&s3.bucket_dir().join("db")),
        ["1234567890123456789"],
        "nothing written for this cluster"
    );
}

#[test]
fn receive_never_overwrites_a_key_holding_other_wal() {
    let f = Fixture::small();
    let s3 = S3Server::start("walrus");
    // The segment the receiver fills first holds something else in the bucket.
    let mut r = receive_to(&f, &s3, "db", &[]);
    assert!(
        wait_until(PATIENCE, || names(&f.archive)
            .iter()
            .any(|n| n.ends_with(".partial"))),
        "{}",
        r.stderr()
    );
    let partial = names(&f.archive)
        .into_iter()
        .find(|n| n.ends_with(".partial"))
        .unwrap();
    let first = partial.trim_end_matches(".partial").to_owned();
    let wal = root(&s3, "db", &f).join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    let theirs = vec![0xAB; usize::try_from(f.seg_size).unwrap()];
    std::fs::write(wal.join(&first), &theirs).unwrap();
    f.load(200);
    f.switch();
    r.expect_exit(3, Duration::from_secs(60));
    let err = r.stderr();
    assert!(
        err.contains(&first) && err.contains("already holds different WAL"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(wal.join(&first)).unwrap(),
        theirs,
        "not overwritten"
    );
    let kept = names(&root(&s3, "db", &f).join("conflicts/wal"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with(&first), "{kept:?}");
    let ours = std::fs::read(root(&s3, "db", &f).join("conflicts/wal").join(&kept[0])).unwrap();
    assert_eq!(
        Some(ours),
        std::fs::read(f.archive.join(&first)).ok(),
        "our copy is the local segment"
    );
}

/// A server recovering `base` with `pgwalrus restore` reading the bucket (AWS settings in
/// the command's environment), through `cache`, plus `settings`.
fn recover_from_bucket(
    f: &Fixture,
    s3: &S3Server,
    prefix: &str,
    base: &Path,
    cache: &Path,
    extra: &str,
    settings: &[(&str, &str)],
) -> pgwalrus_testkit::Cluster {
    std::fs::create_dir_all(cache).unwrap();
    pgwalrus_testkit::give_to_server_user(cache);
    let env: Vec<String> = s3.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
    let command = format!(
        "{} {} restore %f %p -D {} --archive {} --prefetch 4 {extra}",
        env.join(" "),
        env!("CARGO_BIN_EXE_pgwalrus"),
        cache.display(),
        s3.url(prefix)
    );
    let mut builder = pgwalrus_testkit::Cluster::builder(f.c.pg())
        .from_data_dir(base)
        .setting("restore_command", command);
    for (name, value) in settings {
        builder = builder.setting(name, value);
    }
    builder.start()
}

#[test]
fn pitr_from_the_bucket_alone_matches_the_primary_at_the_target() {
    let f = Fixture::small();
    let s3 = S3Server::start("walrus");
    f.c.psql("SELECT 1 FROM pg_create_physical_replication_slot('walrus_s3', true)");
    let args = ["-S", "walrus_s3", "-Z", "lz4"];
    let r = receive_to(&f, &s3, "pitr", &args);
    f.wait_streaming("pgwalrus", &r);
    pgbench(&f.c, &["-i", "-s", "1", "-q"]);
    f.c.psql(
        "CREATE TABLE marks (id int PRIMARY KEY, note text);\n\
         INSERT INTO marks SELECT g, 'before the backup' FROM generate_series(1, 1000) g;",
    );
    // A base backup: a copy of the cleanly stopped primary.
    let mut r = r;
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    f.c.stop();
    let base = f.c.root_dir().join("base");
    crate::support::copy_tree(f.c.data_dir(), &base);
    f.c.start();
    crate::support::touch_for_server(&base.join("recovery.signal"));
    let mut r = receive_to(&f, &s3, "pitr", &args);
    f.wait_streaming("pgwalrus", &r);

    pgbench(&f.c, &["-n", "-T", "2", "-c", "2", "-j", "2"]);
    f.c.psql(
        "UPDATE marks SET note = 'updated after the backup' WHERE id % 3 = 0;\n\
         DELETE FROM marks WHERE id % 7 = 0;",
    );
    let target = f.current_lsn();
    let at_target = f.c.psql(crate::restore::CHECKSUMS);
    f.c.psql("INSERT INTO marks SELECT g, 'after the target' FROM generate_series(1001, 2000) g;");
    let end = f.switch();
    let last = segment_name(1, f.segno_before(end), f.seg_size);
    let wal = root(&s3, "pitr", &f).join("wal");
    assert!(
        wait_until(PATIENCE, || wal.join(&last).is_file()),
        "{last} never reached the bucket\n{}",
        r.stderr()
    );
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    // The archive host is lost: only the bucket remains.
    std::fs::remove_dir_all(&f.archive).unwrap();

    let target_text = target.to_string();
    let cache = f.c.root_dir().join("restore-cache");
    let c = recover_from_bucket(
        &f,
        &s3,
        "pitr",
        &base,
        &cache,
        "",
        &[
            ("recovery_target_lsn", target_text.as_str()),
            ("recovery_target_action", "promote"),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(60), || c
            .try_psql("SELECT pg_is_in_recovery()")
            .is_ok_and(|v| v == "f")),
        "recovery did not end\n{}",
        c.log()
    );
    assert_eq!(
        c.psql(crate::restore::CHECKSUMS),
        at_target,
        "tables at {target}"
    );
    let log = c.log();
    assert!(
        log.contains("recovery stopping") && log.contains("WAL checked"),
        "{log}"
    );
    assert!(
        log.contains("was prefetched from") || log.contains("from the prefetch spool"),
        "no segment came from the prefetch workers:\n{log}"
    );
}

/// A base backup of `f`'s primary: a copy of it cleanly stopped, marked for recovery. The
/// receiver `r` is stopped around it and a new one (same arguments) returned.
fn base_backup(
    f: &Fixture,
    s3: &S3Server,
    prefix: &str,
    args: &[&str],
    mut r: Background,
) -> (PathBuf, Background) {
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    f.c.stop();
    let base = f.c.root_dir().join("base");
    crate::support::copy_tree(f.c.data_dir(), &base);
    f.c.start();
    crate::support::touch_for_server(&base.join("recovery.signal"));
    let r = receive_to(f, s3, prefix, args);
    f.wait_streaming("pgwalrus", &r);
    (base, r)
}

#[test]
fn losing_the_archive_host_loses_at_most_the_partial_interval_and_a_new_receiver_resumes_from_the_bucket()
 {
    let f = Fixture::small();
    let s3 = S3Server::start("walrus");
    f.c.psql("SELECT 1 FROM pg_create_physical_replication_slot('walrus_s3', true)");
    let args = ["-S", "walrus_s3", "--ship-partial-interval", "1"];
    let r = receive_to(&f, &s3, "lost", &args);
    f.wait_streaming("pgwalrus", &r);
    f.c.psql(
        "CREATE TABLE marks (id serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())",
    );
    let (base, mut r) = base_backup(&f, &s3, "lost", &args, r);
    // Commits every 100 ms for 4 s, each in a segment that stays open (no switch).
    for _ in 0..40 {
        f.c.psql("INSERT INTO marks DEFAULT VALUES");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The host is lost: the receiver dies, its spool with it.
    let lost_at = f.c.psql("SELECT extract(epoch FROM clock_timestamp())");
    r.kill9();
    std::fs::remove_dir_all(&f.archive).unwrap();
    std::fs::create_dir_all(&f.archive).unwrap();
    let open = segment_name(1, f.segno_before(f.current_lsn()), f.seg_size);
    let chunks = root(&s3, "lost", &f).join("partial").join(&open);
    assert!(
        !names(&chunks).is_empty(),
        "no chunks of {open}:\n{}",
        r.stderr()
    );

    // Recovery from the bucket alone, to its end (the open segment rebuilt from chunks).
    let cache = f.c.root_dir().join("restore-cache");
    let c = recover_from_bucket(&f, &s3, "lost", &base, &cache, "--partial", &[]);
    assert!(
        wait_until(Duration::from_secs(60), || c
            .try_psql("SELECT pg_is_in_recovery()")
            .is_ok_and(|v| v == "f")),
        "recovery did not end\n{}",
        c.log()
    );
    let last_commit = c.psql("SELECT extract(epoch FROM max(at)) FROM marks");
    let (lost_at, last_commit): (f64, f64) =
        (lost_at.parse().unwrap(), last_commit.parse().unwrap());
    assert!(
        lost_at - last_commit <= 1.0 + 2.0,
        "the bucket held commits only up to {:.1} s before the host was lost\n{}",
        lost_at - last_commit,
        c.log()
    );
    drop(c);

    // A new receiver with an empty spool resumes where the bucket ends, with no gap.
    let mut r2 = receive_to(&f, &s3, "lost", &args);
    assert!(
        wait_until(PATIENCE, || r2.stderr().contains("resuming from")),
        "{}",
        r2.stderr()
    );
    f.load(100);
    let end = f.switch();
    let last = segment_name(1, f.segno_before(end), f.seg_size);
    let wal = root(&s3, "lost", &f).join("wal");
    assert!(
        wait_until(PATIENCE, || wal.join(&last).is_file()),
        "{last} never reached the bucket\n{}",
        r2.stderr()
    );
    r2.signal("TERM");
    r2.expect_exit(0, PATIENCE);
    let object = std::fs::read(wal.join(&open)).expect("the segment open at the loss, complete");
    assert!(
        Some(wal_of(&object)) == f.server_segment(&open),
        "{open} in the bucket differs from pg_wal"
    );
    assert!(
        wait_until(PATIENCE, || names(&chunks).is_empty()),
        "the chunks of {open} are removed once it is complete: {:?}",
        names(&chunks)
    );
}

#[test]
fn kill_9_with_a_store_failing_one_request_in_five_loses_and_overwrites_nothing() {
    let f = Fixture::small();
    let s3 = S3Server::start("walrus");
    let mut rng = crate::receive_support::Rng::new(crate::receive_support::seed(0x6b39_5333));
    let proxy = pgwalrus_testkit::HttpFaultProxy::start(s3.port(), 5, rng.next_u64());
    f.c.psql("SELECT 1 FROM pg_create_physical_replication_slot('walrus_s3', true)");
    pgbench(&f.c, &["-i", "-s", "1", "-q"]);
    // bench/soak-bucket-kill9.sh runs this test with more kills (and a longer load).
    let kills: u64 = std::env::var("PGWALRUS_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seconds = (60 + kills * 3).to_string();
    let mut cmd = crate::receive_support::pgbench_command(&f.c, &["-n", "-c", "2", "-T", &seconds]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut load = crate::support::Guarded::spawn(&mut cmd);
    let args = ["-S", "walrus_s3", "--ship-partial-interval", "1"];
    for _ in 0..kills {
        let mut r = receive_into(
            &f,
            &s3,
            "k9",
            &f.archive,
            Some(&proxy.endpoint()),
            &args,
            "receive-via-k9.log",
        );
        std::thread::sleep(Duration::from_millis(rng.range(300, 2500)));
        f.c.switch_wal();
        std::thread::sleep(Duration::from_millis(rng.range(100, 1000)));
        r.kill9();
    }
    load.kill9();
    let mut r = receive_into(
        &f,
        &s3,
        "k9",
        &f.archive,
        Some(&proxy.endpoint()),
        &args,
        "receive-via-k9.log",
    );
    let end = f.switch();
    let last = segment_name(1, f.segno_before(end), f.seg_size);
    let wal = root(&s3, "k9", &f).join("wal");
    assert!(
        wait_until(Duration::from_secs(90), || wal.join(&last).is_file()),
        "{last} never reached the bucket: {:?}\n{}",
        names(&wal),
        r.stderr()
    );
    r.signal("TERM");
    r.expect_exit(0, Duration::from_secs(60));

    // The bucket: no gap from its first segment to the last, every segment byte-identical
    // to pg_wal (and to the spool), nothing in the conflicts prefix.
    let shipped = names(&wal);
    let segnos: Vec<u64> = shipped
        .iter()
        .map(|n| u64::from_str_radix(&n[16..], 16).unwrap())
        .collect();
    for pair in segnos.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "a gap in the bucket: {shipped:?}");
    }
    assert!(shipped.len() >= 3, "{shipped:?}");
    for name in &shipped {
        let ours = wal_of(&std::fs::read(wal.join(name)).unwrap());
        if let Some(theirs) = f.server_segment(name) {
            assert!(ours == theirs, "{name} in the bucket differs from pg_wal");
        }
        let spooled = std::fs::read(f.archive.join(name)).expect("the spool keeps it");
        assert!(
            ours == spooled,
            "{name} in the bucket differs from the spool"
        );
    }
    assert!(
        names(&root(&s3, "k9", &f).join("conflicts")).is_empty(),
        "nothing in the conflicts prefix"
    );
    f.assert_complete_and_identical(3);
    let counts = proxy.counts();
    assert!(
        counts.total() >= 5,
        "only {} faults injected in {} requests",
        counts.total(),
        counts.requests.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[test]
fn flush_after_shipped_keeps_the_slot_behind_until_the_bucket_holds_the_wal() {
    let f = Fixture::small();
    let s3 = S3Server::start("walrus");
    f.c.psql("SELECT 1 FROM pg_create_physical_replication_slot('walrus_s3', true)");
    let args = [
        "-S",
        "walrus_s3",
        "-s",
        "1",
        "--ship-partial-interval",
        "0",
        "--flush-after-shipped",
    ];
    let mut r = receive_to(&f, &s3, "held", &args);
    f.wait_streaming("pgwalrus", &r);
    let flushed = || {
        let text = f.c.psql(
            "SELECT coalesce(flush_lsn::text, '0/0') FROM pg_stat_replication WHERE application_name = 'pgwalrus'",
        );
        crate::receive_support::Lsn::parse(&text)
    };
    let written = || {
        crate::receive_support::Lsn::parse(&f.c.psql(
            "SELECT coalesce(write_lsn::text, '0/0') FROM pg_stat_replication WHERE application_name = 'pgwalrus'",
        ))
    };
    let lsn = f.load(200);
    // Written and fsynced locally, but not in the bucket: the server hears nothing newer.
    assert!(
        wait_until(PATIENCE, || written() >= lsn),
        "the write position never reached {lsn}\n{}",
        r.stderr()
    );
    std::thread::sleep(Duration::from_secs(3));
    let open_start = f.segno_before(lsn) * f.seg_size;
    assert!(
        flushed().0 <= open_start,
        "flush reported at {} although the bucket holds nothing past {}",
        flushed(),
        crate::receive_support::Lsn(open_start)
    );
    // Once the segment is complete and in the bucket, the flush position follows.
    let end = f.switch();
    let last = segment_name(1, f.segno_before(end), f.seg_size);
    let wal = root(&s3, "held", &f).join("wal");
    assert!(
        wait_until(PATIENCE, || wal.join(&last).is_file()),
        "{last} never reached the bucket\n{}",
        r.stderr()
    );
    assert!(
        wait_until(PATIENCE, || flushed() >= end),
        "flush stayed at {} after {last} was shipped\n{}",
        flushed(),
        r.stderr()
    );
    let restart = crate::receive_support::Lsn::parse(
        &f.c.psql("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'walrus_s3'"),
    );
    assert!(restart <= end, "the slot moved past what the bucket holds");
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
}

#[test]
fn verify_names_damaged_and_missing_objects_and_prune_keeps_the_newest_in_the_bucket() {
    let f = Fixture::small();
    let s3 = S3Server::start("walrus");
    let mut r = receive_to(&f, &s3, "vp", &["-Z", "zstd"]);
    pgbench(&f.c, &["-i", "-s", "1", "-q"]);
    let end = f.switch();
    let last = segment_name(1, f.segno_before(end), f.seg_size);
    let wal = root(&s3, "vp", &f).join("wal");
    assert!(
        wait_until(PATIENCE, || wal.join(&last).is_file()),
        "{last} never reached the bucket\n{}",
        r.stderr()
    );
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    let url = s3.url("vp");
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = crate::support::pgwalrus(&f.home, &["verify", &url], &env);
    run.expect_code(0);
    // dump reads the bucket the same way.
    let run = crate::support::pgwalrus(&f.home, &["dump", &url, "--stats"], &env);
    run.expect_code(0);
    assert!(run.stdout.contains("Heap"), "{}", run.stdout);

    // A flipped byte in one object, another object gone: each named.
    let shipped = names(&wal);
    assert!(shipped.len() >= 6, "{shipped:?}");
    let flipped = &shipped[2];
    let mut bytes = std::fs::read(wal.join(flipped)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(wal.join(flipped), &bytes).unwrap();
    let missing = &shipped[4];
    std::fs::remove_file(wal.join(missing)).unwrap();
    let run = crate::support::pgwalrus(&f.home, &["verify", &url], &env);
    run.expect_code(1);
    assert!(
        run.stdout.contains(&format!("wal/{flipped}: ")) && run.stdout.contains("sha256"),
        "the flipped object is not named:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(missing.as_str()),
        "the missing segment is not named:\n{}",
        run.stdout
    );

    // Retention: a dry run changes nothing; then the newest three segments (by their size
    // as stored) stay.
    let before = names(&wal);
    let newest_three: u64 = before[before.len() - 3..]
        .iter()
        .map(|n| std::fs::metadata(wal.join(n)).unwrap().len())
        .sum();
    let keep = newest_three.to_string();
    let run = crate::support::pgwalrus(
        &f.home,
        &[
            "prune",
            "--archive",
            &url,
            "--keep-size",
            &keep,
            "--dry-run",
        ],
        &env,
    );
    run.expect_code(0);
    assert_eq!(names(&wal), before, "a dry run removes nothing");
    let run = crate::support::pgwalrus(
        &f.home,
        &["prune", "--archive", &url, "--keep-size", &keep],
        &env,
    );
    run.expect_code(0);
    let after = names(&wal);
    assert_eq!(after, before[before.len() - 3..], "{before:?} -> {after:?}");
    assert!(
        root(&s3, "vp", &f).join("archive.json").is_file(),
        "only segments go"
    );
}

#[test]
fn two_archivers_on_one_slot_one_streams_the_other_takes_over_when_it_dies() {
    let f = Fixture::small();
    let s3 = S3Server::start("walrus");
    f.c.psql("SELECT 1 FROM pg_create_physical_replication_slot('walrus_s3', true)");
    let args = [
        "-S",
        "walrus_s3",
        "--ship-partial-interval",
        "1",
        "--flush-after-shipped",
    ];
    let (spool_a, spool_b) = (
        f.c.root_dir().join("spool-a"),
        f.c.root_dir().join("spool-b"),
    );
    std::fs::create_dir_all(&spool_a).unwrap();
    std::fs::create_dir_all(&spool_b).unwrap();
    let mut a = receive_into(&f, &s3, "two", &spool_a, None, &args, "a.log");
    f.wait_streaming("pgwalrus", &a);
    pgbench(&f.c, &["-i", "-s", "1", "-q"]);
    let end = f.switch();
    let first_end = segment_name(1, f.segno_before(end), f.seg_size);
    let wal = root(&s3, "two", &f).join("wal");
    assert!(
        wait_until(PATIENCE, || wal.join(&first_end).is_file()),
        "{first_end} never reached the bucket\n{}",
        a.stderr()
    );
    // B starts on a new machine: its spool is prepared from the bucket.
    let mut b = receive_into(&f, &s3, "two", &spool_b, None, &args, "b.log");
    // B waits: the slot is the lock.
    assert!(
        wait_until(PATIENCE, || b.stderr().contains("active")),
        "the second archiver does not say the slot is in use:\n{}",
        b.stderr()
    );
    assert!(
        b.is_running(),
        "the second archiver must wait, not exit:\n{}",
        b.stderr()
    );
    pgbench(&f.c, &["-n", "-c", "2", "-t", "200"]);
    // A dies; B takes over as soon as PostgreSQL releases the slot.
    a.kill9();
    pgbench(&f.c, &["-n", "-c", "2", "-t", "200"]);
    let end = f.switch();
    let last = segment_name(1, f.segno_before(end), f.seg_size);
    assert!(
        wait_until(Duration::from_secs(90), || wal.join(&last).is_file()),
        "{last} never reached the bucket after the takeover: {:?}\n--- a\n{}\n--- b\n{}",
        names(&wal),
        a.stderr(),
        b.stderr()
    );
    b.signal("TERM");
    b.expect_exit(0, PATIENCE);
    assert!(
        b.stderr().contains("the spool was empty: resuming"),
        "the second archiver did not start from what the bucket holds:\n{}",
        b.stderr()
    );
    let shipped = names(&wal);
    let segnos: Vec<u64> = shipped
        .iter()
        .map(|n| u64::from_str_radix(&n[16..], 16).unwrap())
        .collect();
    for pair in segnos.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "a gap in the bucket: {shipped:?}");
    }
    for name in &shipped {
        let ours = wal_of(&std::fs::read(wal.join(name)).unwrap());
        if let Some(theirs) = f.server_segment(name) {
            assert!(ours == theirs, "{name} in the bucket differs from pg_wal");
        }
    }
    assert!(
        names(&root(&s3, "two", &f).join("conflicts")).is_empty(),
        "nothing in the conflicts prefix"
    );
}

/// A promotion while `receive --archive` streams: the new timeline's history object is in
/// the bucket before any of the timeline's segments (watched every 10 ms from before the promotion to the end, and
/// by the objects' modification times), it holds the server's bytes, and `verify` names it
/// once it is gone.
#[test]
fn a_promotion_ships_the_history_before_the_new_timeline_and_verify_names_it_when_missing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::receive_timeline::{make_standby, promote};

    let f = Fixture::small();
    let s3 = S3Server::start("walrus");
    let mut r = receive_to(&f, &s3, "tl", &[]);
    let lsn = f.load(1500);
    f.wait_archived(lsn, &r);
    make_standby(&f);
    f.wait_streaming("pgwalrus", &r);

    let root = root(&s3, "tl", &f);
    let (wal, history) = (root.join("wal"), root.join("history/00000002.history"));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (wal, history, stop) = (wal.clone(), history.clone(), stop.clone());
        std::thread::spawn(move || {
            // Looks that found a segment of timeline 2; the last look comes after `stop`.
            let mut saw_timeline_2 = 0u64;
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                // The history is looked at after the listing: a segment seen first and the
                // history missing after it is an order violation, never a race of ours.
                let early = names(&wal).into_iter().find(|n| n.starts_with("00000002"));
                if let Some(segment) = early {
                    if !history.is_file() {
                        return Err(format!(
                            "{segment} is in the bucket before 00000002.history"
                        ));
                    }
                    saw_timeline_2 += 1;
                }
                if stopping {
                    return Ok(saw_timeline_2);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let switch = promote(&f);
    f.load(1200);
    let end = f.switch();
    let last = segment_name(2, f.segno_before(end), f.seg_size);
    let arrived = wait_until(PATIENCE, || wal.join(&last).is_file());
    stop.store(true, Ordering::Relaxed);
    let watched = watcher.join().unwrap();
    assert!(
        arrived,
        "{last} never reached the bucket: {:?}\n{}",
        names(&wal),
        r.stderr()
    );
    let saw = watched.unwrap_or_else(|e| panic!("{e}"));
    assert!(saw >= 1, "the watcher never saw a segment of timeline 2");
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);

    let ours = wal_of(&std::fs::read(&history).unwrap());
    let theirs = std::fs::read(f.c.pg_wal_dir().join("00000002.history")).unwrap();
    assert_eq!(ours, theirs, "the history object holds the server's file");
    let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let timeline_2: Vec<String> = names(&wal)
        .into_iter()
        .filter(|n| n.starts_with("00000002"))
        .collect();
    let switch_segment = segment_name(2, f.segno_before(Lsn(switch.0 + 1)), f.seg_size);
    assert_eq!(
        timeline_2.first(),
        Some(&switch_segment),
        "timeline 2 starts at the switch segment"
    );
    for name in &timeline_2 {
        assert!(
            modified(&history) <= modified(&wal.join(name)),
            "{name} was written before 00000002.history"
        );
        if let Some(server) = f.server_segment(name) {
            assert!(
                wal_of(&std::fs::read(wal.join(name)).unwrap()) == server,
                "{name} differs from pg_wal"
            );
        }
    }

    let url = s3.url("tl");
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    crate::support::pgwalrus(&f.home, &["verify", &url], &env).expect_code(0);
    std::fs::remove_file(&history).unwrap();
    let run = crate::support::pgwalrus(&f.home, &["verify", &url], &env);
    run.expect_code(1);
    assert!(
        run.stdout.contains("00000002.history"),
        "the missing history file is not named:\n{}",
        run.stdout
    );
}
