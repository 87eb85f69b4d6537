//! `pgwalrus daemon` and `pgwalrus status` against real servers: several servers in one
//! process, one crashing while the others stream, a server parked for another cluster's
//! archive, a reload that adds, removes and keeps servers (the kept one keeps its
//! walsender), an invalid file that changes nothing, the password nowhere to be seen, a
//! fleet of three under pgbench riding out one primary's immediate stop, and every archive
//! byte-identical to its server's `pg_wal` with no gap.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use pgwalrus_testkit::{Cluster, PASSWORD, SCRAM_USER, TRUST_USER, pg_bin, wait_until};
use serde_json::Value;

use crate::support::{Background, Home, SmallFs, pgwalrus};

fn cluster() -> Cluster {
    Cluster::builder(&pg_bin())
        .initdb_arg("--wal-segsize=1")
        .setting("wal_keep_size", "256MB")
        .start()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn load_and_switch(c: &Cluster) -> String {
    c.psql(
        "CREATE TABLE IF NOT EXISTS load (i int, t text);\n\
         INSERT INTO load SELECT g, repeat(md5(g::text), 15) FROM generate_series(1, 500) g;\n\
         SELECT pg_switch_wal();",
    );
    c.current_wal_lsn()
}

fn lsn(text: &str) -> u64 {
    let (hi, lo) = text.split_once('/').expect("an LSN");
    (u64::from_str_radix(hi, 16).expect("hex") << 32) | u64::from_str_radix(lo, 16).expect("hex")
}

struct Daemon<'a> {
    home: &'a Home,
    address: String,
    process: Background,
}

impl Daemon<'_> {
    fn status(&self) -> Value {
        let run = pgwalrus(
            self.home,
            &["status", "--json", "--address", &self.address],
            &[],
        );
        run.expect_code(0);
        serde_json::from_str(&run.stdout).expect("JSON from pgwalrus status --json")
    }

    /// `null` while the daemon does not answer yet (it may still be starting).
    fn server(&self, name: &str) -> Value {
        let run = pgwalrus(
            self.home,
            &["status", "--json", "--address", &self.address],
            &[],
        );
        if run.code != 0 {
            return Value::Null;
        }
        serde_json::from_str::<Value>(&run.stdout).expect("JSON from pgwalrus status --json")["servers"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name).cloned())
            .unwrap_or(Value::Null)
    }

    #[track_caller]
    fn wait_state(&self, name: &str, state: &str) {
        assert!(
            wait_until(Duration::from_secs(30), || self.server(name)["status"]
                == state),
            "server {name} is not {state}: {}\n--- daemon log\n{}",
            self.server(name),
            self.process.stderr()
        );
    }

    #[track_caller]
    fn wait_flushed(&self, name: &str, at_least: &str) {
        let wanted = lsn(at_least);
        assert!(
            wait_until(Duration::from_secs(30), || self.server(name)["flushed_lsn"]
                .as_str()
                .is_some_and(|f| lsn(f) >= wanted)),
            "server {name} did not flush up to {at_least}: {}",
            self.server(name)
        );
    }
}

/// Every complete segment in `archive` equals the server's; returns how many.
#[track_caller]
fn assert_identical(c: &Cluster, archive: &Path) -> usize {
    let mut compared = 0;
    for entry in std::fs::read_dir(archive).expect("list the archive") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.len() != 24 {
            continue;
        }
        let ours = std::fs::read(archive.join(&name)).expect("read");
        let theirs = std::fs::read(c.pg_wal_dir().join(&name)).expect("the server's copy");
        assert!(
            ours == theirs,
            "{name} in {} differs from pg_wal",
            archive.display()
        );
        compared += 1;
    }
    compared
}

/// The body of `GET path` from the daemon's endpoint.
fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the daemon");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// Runs Debian's `promtool` (package `prometheus`; scripts/test.sh installs it) with
/// `input` on stdin, and panics with its output unless it passes.
#[track_caller]
fn promtool(args: &[&str], input: Option<&str>) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = std::process::Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is needed: scripts/test.sh installs it");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.unwrap_or_default().as_bytes())
        .expect("feed promtool");
    drop(stdin);
    let out = child.wait_with_output().expect("promtool's output");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_documented_alert_rules_pass_promtool() {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/alerts.yml");
    promtool(&["check", "rules", rules], None);
}

fn walsender(c: &Cluster, application_name: &str) -> String {
    c.psql(&format!(
        "SELECT pid || ' ' || backend_start FROM pg_stat_replication WHERE application_name = '{application_name}'"
    ))
}

#[test]
fn daemon_archives_several_servers_parks_one_reloads_by_name_and_never_shows_the_password() {
    let (a, b, c) = (cluster(), cluster(), cluster());
    let home = Home::new();
    let root = home.path().join("archive");
    std::fs::create_dir_all(&root).expect("archive root");
    // A directory holding WAL of cluster a, configured for server b: refused, parked.
    let foreign = root.join("wrong");
    std::fs::create_dir_all(&foreign).expect("dir");
    let seg = a.switch_wal();
    std::fs::copy(a.pg_wal_dir().join(&seg), foreign.join(&seg)).expect("copy a segment");

    let address = format!("127.0.0.1:{}", free_port());
    let server = |name: &str, c: &Cluster, user: &str, extra: &str| {
        format!(
            "[[server]]\nname = \"{name}\"\nconninfo = \"host=127.0.0.1 port={} user={user}{extra}\"\n",
            c.port()
        )
    };
    let head = format!(
        "listen = \"{address}\"\n\n[defaults]\nslot = \"pgwalrus\"\ncreate_slot = true\narchive = \"{}\"\nstatus_interval = 1\n\n",
        root.display()
    );
    let config = home.path().join("pgwalrus.toml");
    let first = format!(
        "{head}{}{}{}archive = \"{}\"\n",
        server("a", &a, SCRAM_USER, &format!(" password={PASSWORD}")),
        server("b", &b, TRUST_USER, ""),
        server("wrong", &b, TRUST_USER, ""),
        foreign.display()
    );
    std::fs::write(&config, &first).expect("write the configuration");
    let config_arg = config.to_string_lossy().into_owned();
    pgwalrus(&home, &["daemon", "--check", "-c", &config_arg], &[]).expect_code(0);

    let log = home.path().join("daemon.log");
    let daemon = Daemon {
        home: &home,
        address: address.clone(),
        process: Background::spawn(&home, &["daemon", "-c", &config_arg], &[], &log),
    };
    daemon.wait_state("a", "streaming");
    daemon.wait_state("b", "streaming");
    daemon.wait_state("wrong", "parked");
    assert_eq!(daemon.server("wrong")["parked_reason"], "other_cluster");

    for _ in 0..2 {
        load_and_switch(&a);
    }
    let b_end = {
        load_and_switch(&b);
        load_and_switch(&b)
    };
    daemon.wait_flushed("a", &a.current_wal_lsn());
    daemon.wait_flushed("b", &b_end);
    // At quiescence the status says what the server's pg_stat_replication says.
    let server_view = || {
        b.psql(
            "SELECT write_lsn || ' ' || flush_lsn FROM pg_stat_replication WHERE application_name = 'pgwalrus-b'",
        )
    };
    assert!(
        wait_until(Duration::from_secs(10), || {
            let s = daemon.server("b");
            let ours = format!(
                "{} {}",
                s["written_lsn"].as_str().unwrap_or(""),
                s["flushed_lsn"].as_str().unwrap_or("")
            );
            ours == server_view()
        }),
        "status {} vs pg_stat_replication {}",
        daemon.server("b"),
        server_view()
    );
    // The slot and the archive's free space, as the daemon observes them.
    assert!(
        wait_until(
            Duration::from_secs(30),
            || daemon.server("b")["slot_wal_status"] == "reserved"
        ),
        "{}",
        daemon.server("b")
    );
    assert!(
        daemon.server("b")["archive_free_bytes"]
            .as_u64()
            .is_some_and(|f| f > 0)
    );

    // Server a crashes: it reconnects in the status, b streams on.
    a.kill9();
    daemon.wait_state("a", "waiting");
    assert!(
        daemon.server("a")["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    let b_more = load_and_switch(&b);
    daemon.wait_flushed("b", &b_more);
    assert_eq!(daemon.server("b")["status"], "streaming");
    a.start();
    daemon.wait_state("a", "streaming");
    let a_end = load_and_switch(&a);
    daemon.wait_flushed("a", &a_end);

    // What an operator sees: the text display, the metrics.
    let text = pgwalrus(&home, &["status", "--address", &address], &[]);
    text.expect_code(0);
    assert!(text.stdout.contains("-[ server b ]"), "{}", text.stdout);
    assert!(text.stdout.contains("parked_reason"), "{}", text.stdout);
    let metrics = http_get(&address, "/metrics");
    assert!(
        metrics.contains("pgwalrus_flushed_lsn_bytes{server=\"b\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pgwalrus_server_parked{server=\"wrong\"} 1"),
        "{metrics}"
    );
    // WAL was archived and fsynced: the fsync histogram counted it (checked by promtool
    // below with the rest).
    assert!(
        metric(
            &metrics,
            "pgwalrus_fsync_duration_seconds_count{server=\"b\"}"
        )
        .is_some_and(|n| n > 0.0),
        "{metrics}"
    );
    assert!(http_get(&address, "/healthz").starts_with("ok"));
    promtool(&["check", "metrics"], Some(&metrics));

    // Reload: a removed, b unchanged (keeps its walsender), c added, wrong removed.
    let before = walsender(&b, "pgwalrus-b");
    assert!(!before.is_empty(), "no walsender for b");
    let second = format!(
        "{head}{}{}",
        server("b", &b, TRUST_USER, ""),
        server("c", &c, TRUST_USER, "")
    );
    std::fs::write(&config, &second).expect("write the new configuration");
    let reload = pgwalrus(&home, &["status", "--reload", "--address", &address], &[]);
    reload.expect_code(0);
    assert!(
        reload
            .stdout
            .contains("1 added, 2 removed, 0 changed, 1 unchanged"),
        "{}",
        reload.stdout
    );
    daemon.wait_state("c", "streaming");
    assert!(
        wait_until(Duration::from_secs(30), || daemon.server("a").is_null()),
        "server a is still listed after its removal"
    );
    assert_eq!(
        walsender(&b, "pgwalrus-b"),
        before,
        "b reconnected on a reload that did not change it"
    );
    let c_end = load_and_switch(&c);
    daemon.wait_flushed("c", &c_end);

    // A file that does not validate changes nothing.
    std::fs::write(&config, format!("{second}bogus_key = 1\n")).expect("write");
    let refused = pgwalrus(&home, &["status", "--reload", "--address", &address], &[]);
    refused.expect_code(1);
    assert!(refused.stderr.contains("bogus_key"), "{}", refused.stderr);
    assert_eq!(daemon.server("b")["status"], "streaming");
    assert_eq!(daemon.server("c")["status"], "streaming");
    assert_eq!(walsender(&b, "pgwalrus-b"), before);

    // The password is nowhere: log, status, JSON, metrics, command line.
    let status_json = serde_json::to_string(&daemon.status()).expect("JSON");
    let mut process = daemon.process;
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", process.pid()))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .expect("the daemon's command line");
    process.signal("TERM");
    process.expect_exit(0, Duration::from_secs(30));
    let log_text = process.stderr();
    for (what, text) in [
        ("the daemon's log", &log_text),
        ("pgwalrus status", &text.stdout),
        ("/status", &status_json),
        ("/metrics", &metrics),
        ("/proc/PID/cmdline", &cmdline),
    ] {
        assert!(!text.contains(PASSWORD), "the password shows in {what}");
    }
    assert!(log_text.contains("parked (other_cluster)"), "{log_text}");

    assert!(assert_identical(&a, &root.join("a")) >= 3);
    assert!(assert_identical(&b, &root.join("b")) >= 3);
    assert!(assert_identical(&c, &root.join("c")) >= 1);
    // The parked server touched nothing.
    assert_eq!(
        std::fs::read_dir(&foreign).expect("list").count(),
        1,
        "the refused archive was changed"
    );
}

#[test]
fn daemon_speaks_systemds_notify_protocol_and_guards_its_endpoint_with_a_token() {
    use std::os::unix::net::UnixDatagram;

    let home = Home::new();
    let socket_path = home.path().join("notify.sock");
    let notify = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let token = home.path().join("token");
    std::fs::write(&token, "s3cret-token\n").expect("token file");
    let address = format!("127.0.0.1:{}", free_port());
    let config = home.path().join("pgwalrus.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{address}\"\nhttp_token_file = \"{}\"\n",
            token.display()
        ),
    )
    .expect("configuration");
    let config_arg = config.to_string_lossy().into_owned();
    let log = home.path().join("daemon.log");
    let socket_arg = socket_path.to_string_lossy().into_owned();
    let mut daemon = Background::spawn(
        &home,
        &["daemon", "-c", &config_arg],
        &[("NOTIFY_SOCKET", &socket_arg), ("WATCHDOG_USEC", "200000")],
        &log,
    );
    let next = || {
        let mut buf = [0u8; 512];
        let n = notify.recv(&mut buf).expect("a notification within 30 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = next();
    assert!(first.starts_with("READY=1"), "{first}");
    assert!(first.contains("STATUS=archiving 0 server(s)"), "{first}");
    assert_eq!(next(), "WATCHDOG=1");

    // The endpoint wants the token, but for /healthz.
    let refused = pgwalrus(&home, &["status", "--address", &address], &[]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("bearer token"),
        "{}",
        refused.stderr
    );
    let token_arg = token.to_string_lossy().into_owned();
    pgwalrus(
        &home,
        &["status", "--address", &address, "--token-file", &token_arg],
        &[],
    )
    .expect_code(0);
    pgwalrus(&home, &["status", "-c", &config_arg], &[]).expect_code(0);
    assert!(http_get(&address, "/healthz").starts_with("ok"));

    daemon.signal("HUP");
    let mut seen = Vec::new();
    while !seen.iter().any(|m: &String| m.starts_with("READY=1")) {
        let m = next();
        if m != "WATCHDOG=1" {
            seen.push(m);
        }
    }
    assert!(
        seen[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{seen:?}"
    );
    daemon.signal("TERM");
    let mut stopping = false;
    for _ in 0..20 {
        if next().starts_with("STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "no STOPPING=1");
    daemon.expect_exit(0, Duration::from_secs(30));
    assert!(!daemon.stderr().contains("s3cret-token"));
}

#[test]
fn a_full_archive_file_system_loses_nothing_and_archiving_resumes_when_space_returns() {
    assert!(
        pgwalrus_testkit::is_root(),
        "this test mounts a small tmpfs, which needs root (CI and scripts/test.sh run as root)"
    );
    let (full, other) = (cluster(), cluster());
    let home = Home::new();
    let small = SmallFs::mount(&home.path().join("small"), "12m");
    let address = format!("127.0.0.1:{}", free_port());
    let config = home.path().join("pgwalrus.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{address}\"\n\n[defaults]\nslot = \"pgwalrus\"\ncreate_slot = true\narchive = \"{}\"\nstatus_interval = 1\n\n\
             [[server]]\nname = \"full\"\nconninfo = \"host=127.0.0.1 port={} user={TRUST_USER}\"\narchive = \"{}\"\nmin_free_space = \"3MB\"\n\n\
             [[server]]\nname = \"other\"\nconninfo = \"host=127.0.0.1 port={} user={TRUST_USER}\"\n",
            home.path().join("archive").display(),
            full.port(),
            small.path().display(),
            other.port()
        ),
    )
    .expect("configuration");
    let config_arg = config.to_string_lossy().into_owned();
    let daemon = Daemon {
        home: &home,
        address,
        process: Background::spawn(
            &home,
            &["daemon", "-c", &config_arg],
            &[],
            &home.path().join("daemon.log"),
        ),
    };
    daemon.wait_state("full", "streaming");
    daemon.wait_state("other", "streaming");
    // More WAL than 12 MiB less the 3 MiB floor.
    for _ in 0..14 {
        load_and_switch(&full);
    }
    daemon.wait_state("full", "disk_full");
    let error = daemon.server("full")["last_error"].to_string();
    assert!(error.contains("under the floor"), "{error}");
    // The other server, on another file system, streams on.
    let other_end = load_and_switch(&other);
    daemon.wait_flushed("other", &other_end);
    assert_eq!(daemon.server("other")["status"], "streaming");
    // Nothing in the full archive is damaged.
    let kept = assert_identical(&full, small.path());
    assert!(kept >= 5, "only {kept} segments before the floor");

    // The operator moves the oldest segments elsewhere; archiving resumes by itself.
    let moved = home.path().join("moved");
    std::fs::create_dir_all(&moved).expect("dir");
    let mut names: Vec<String> = std::fs::read_dir(small.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24)
        .collect();
    names.sort();
    for name in names.iter().take(6) {
        std::fs::copy(small.path().join(name), moved.join(name)).expect("copy aside");
        std::fs::remove_file(small.path().join(name)).expect("remove");
    }
    let end = full.current_wal_lsn();
    assert!(
        wait_until(Duration::from_secs(90), || {
            daemon.server("full")["flushed_lsn"]
                .as_str()
                .is_some_and(|f| lsn(f) >= lsn(&end))
        }),
        "archiving did not resume after space was freed: {}",
        daemon.server("full")
    );
    assert_eq!(daemon.server("full")["status"], "streaming");
    // No gap: the moved segments and the archive together are one run, all identical.
    let mut all: Vec<String> = names.iter().take(6).cloned().collect();
    for entry in std::fs::read_dir(small.path()).expect("list") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.len() == 24 {
            all.push(name);
        }
    }
    all.sort();
    let segno = |n: &str| u64::from_str_radix(&n[16..], 16).expect("hex");
    for pair in all.windows(2) {
        assert_eq!(
            segno(&pair[1]),
            segno(&pair[0]) + 1,
            "a gap between {} and {}",
            pair[0],
            pair[1]
        );
    }
    assert!(assert_identical(&full, small.path()) >= 1);
    assert_eq!(assert_identical(&full, &moved), 6);
    let mut process = daemon.process;
    process.signal("TERM");
    process.expect_exit(0, Duration::from_secs(30));
}

#[test]
fn daemon_ships_a_server_to_object_storage_and_shows_it_in_status_and_metrics() {
    let c = cluster();
    let s3 = pgwalrus_testkit::S3Server::start("walrus");
    let home = Home::new();
    let spool = home.path().join("spool").join("db");
    let address = format!("127.0.0.1:{}", free_port());
    let config = home.path().join("pgwalrus.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{address}\"\n\n[[server]]\nname = \"db\"\nconninfo = \"host=127.0.0.1 port={} user={TRUST_USER}\"\nslot = \"pgwalrus\"\ncreate_slot = true\nstatus_interval = 1\narchive = \"{}\"\nspool = \"{}\"\nship_partial_interval = 1\n",
            c.port(),
            s3.url("fleet/db"),
            spool.display()
        ),
    )
    .expect("write the configuration");
    let config_arg = config.to_string_lossy().into_owned();
    pgwalrus(&home, &["daemon", "--check", "-c", &config_arg], &[]).expect_code(0);
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let log = home.path().join("daemon.log");
    let mut daemon = Daemon {
        home: &home,
        address: address.clone(),
        process: Background::spawn(&home, &["daemon", "-c", &config_arg], &env, &log),
    };
    daemon.wait_state("db", "streaming");
    load_and_switch(&c);
    let end = load_and_switch(&c);
    let wanted = lsn(&end);
    assert!(
        wait_until(Duration::from_secs(30), || daemon.server("db")["shipping"]
            ["shipped_lsn"]
            .as_str()
            .is_some_and(|l| lsn(l) >= wanted)),
        "the bucket never held WAL up to {end}: {}\n{}",
        daemon.server("db"),
        daemon.process.stderr()
    );
    let row = daemon.server("db");
    assert_eq!(row["shipping"]["state"], "shipping", "{row}");
    assert_eq!(row["shipping"]["create_only_enforced"], true, "{row}");
    assert_eq!(row["shipping"]["conflicts"], 0, "{row}");
    let metrics = http_get(&address, "/metrics");
    for wanted in [
        "pgwalrus_shipped_lsn_bytes{server=\"db\"}",
        "pgwalrus_ship_lag_bytes{server=\"db\"}",
        "pgwalrus_ship_create_only_enforced{server=\"db\"} 1",
        "pgwalrus_s3_requests_total{server=\"db\",kind=\"put\"}",
    ] {
        assert!(metrics.contains(wanted), "no {wanted} in\n{metrics}");
    }
    promtool(&["check", "metrics"], Some(&metrics));
    let text = pgwalrus(&home, &["status", "--address", &address], &[]);
    assert!(
        text.stdout.contains("shipping.shipped_lsn"),
        "{}",
        text.stdout
    );

    daemon.process.signal("TERM");
    daemon.process.expect_exit(0, Duration::from_secs(30));
    // Every complete segment in the bucket equals the server's.
    let wal = s3
        .bucket_dir()
        .join("fleet/db")
        .join(c.system_identifier().to_string())
        .join("wal");
    let shipped = assert_identical(&c, &wal);
    assert!(shipped >= 2, "only {shipped} segments in the bucket");
    assert_eq!(
        assert_identical(&c, &spool),
        shipped,
        "the spool holds the same"
    );
}

/// The value of `series` (name and labels, exactly) in a `/metrics` text, if it is there.
fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

/// The complete segments of `archive`, sorted; panics unless they follow each other with no
/// gap (one timeline).
#[track_caller]
fn assert_no_gap(archive: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(archive)
        .expect("list the archive")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24)
        .collect();
    names.sort();
    let segno = |n: &str| u64::from_str_radix(&n[8..], 16).expect("hex");
    for pair in names.windows(2) {
        assert_eq!(
            segno(&pair[1]),
            segno(&pair[0]) + 1,
            "a gap in {} between {} and {}",
            archive.display(),
            pair[0],
            pair[1]
        );
    }
    names
}

/// `pgbench -n -N -c 2 -T SECONDS` in the background; output discarded. It ends early when
/// its server goes away.
fn pgbench_load(c: &Cluster, seconds: u32) -> crate::support::Guarded {
    use std::process::Stdio;
    let seconds = seconds.to_string();
    crate::support::Guarded::spawn(
        c.pgbench(&["-n", "-N", "-c", "2", "-T", &seconds])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

#[test]
fn a_fleet_under_load_rides_out_one_primarys_crash_with_no_gap_and_no_reconnect_elsewhere() {
    const LOAD_SECONDS: u32 = 15;
    let clusters = [cluster(), cluster(), cluster()];
    let names = ["a", "b", "c"];
    let home = Home::new();
    let root = home.path().join("archive");
    let address = format!("127.0.0.1:{}", free_port());
    let mut config = format!(
        "listen = \"{address}\"\n\n[defaults]\nslot = \"pgwalrus\"\ncreate_slot = true\narchive = \"{}\"\nstatus_interval = 1\n",
        root.display()
    );
    for (name, c) in names.iter().zip(&clusters) {
        config.push_str(&format!(
            "\n[[server]]\nname = \"{name}\"\nconninfo = \"host=127.0.0.1 port={} user={TRUST_USER}\"\n",
            c.port()
        ));
    }
    let config_path = home.path().join("pgwalrus.toml");
    std::fs::write(&config_path, config).expect("write the configuration");
    let config_arg = config_path.to_string_lossy().into_owned();
    let daemon = Daemon {
        home: &home,
        address: address.clone(),
        process: Background::spawn(
            &home,
            &["daemon", "-c", &config_arg],
            &[],
            &home.path().join("daemon.log"),
        ),
    };
    for name in names {
        daemon.wait_state(name, "streaming");
    }
    // pgbench's tables on all three at once (each writes more than 10 MiB of WAL).
    std::thread::scope(|s| {
        for c in &clusters {
            s.spawn(|| {
                let out = c
                    .pgbench(&["-i", "-s", "1", "-q"])
                    .output()
                    .expect("run pgbench -i");
                assert!(
                    out.status.success(),
                    "pgbench -i: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            });
        }
    });
    let a = &clusters[0];
    let mut loads: Vec<_> = clusters
        .iter()
        .map(|c| pgbench_load(c, LOAD_SECONDS))
        .collect();
    std::thread::sleep(Duration::from_secs(3));

    // Primary a crashes under load; b and c stream on.
    let a_before = a.current_wal_lsn();
    a.stop_immediate();
    daemon.wait_state("a", "waiting");
    let metrics = http_get(&address, "/metrics");
    assert_eq!(
        metric(
            &metrics,
            "pgwalrus_server_state{server=\"a\",state=\"waiting\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    for name in ["b", "c"] {
        assert_eq!(daemon.server(name)["status"], "streaming");
    }
    std::thread::sleep(Duration::from_secs(2));
    a.start();
    // The old pgbench died with its server: a new one takes over.
    loads[0] = pgbench_load(a, LOAD_SECONDS / 2);
    daemon.wait_state("a", "streaming");
    daemon.wait_flushed("a", &a_before);
    for load in &mut loads {
        // pgbench fails once its server goes away (a's first); only the end matters.
        let _ = load.wait_timeout(Duration::from_secs(u64::from(LOAD_SECONDS) + 30));
    }

    // Quiet now: each server's last segment completes, and the daemon has it all.
    for (name, c) in names.iter().zip(&clusters) {
        c.switch_wal();
        daemon.wait_flushed(name, &c.current_wal_lsn());
        assert_eq!(daemon.server(name)["status"], "streaming", "{name}");
    }
    let row_a = daemon.server("a");
    assert!(
        row_a["reconnects"].as_u64().is_some_and(|n| n > 0),
        "a reconnected by itself: {row_a}"
    );
    for name in ["b", "c"] {
        let row = daemon.server(name);
        assert_eq!(row["reconnects"], 0, "{name} never lost its stream: {row}");
    }
    let metrics = http_get(&address, "/metrics");
    assert!(
        metric(&metrics, "pgwalrus_reconnects_total{server=\"a\"}").is_some_and(|n| n > 0.0),
        "{metrics}"
    );
    for name in names {
        // Every server's archive was fsynced, and the histogram says so.
        let count = metric(
            &metrics,
            &format!("pgwalrus_fsync_duration_seconds_count{{server=\"{name}\"}}"),
        );
        assert!(count.is_some_and(|n| n > 0.0), "{name}: {metrics}");
        assert_eq!(
            metric(
                &metrics,
                &format!("pgwalrus_fsync_duration_seconds_bucket{{server=\"{name}\",le=\"+Inf\"}}"),
            ),
            count,
            "{name}"
        );
        let fsync = &daemon.server(name)["fsync"];
        assert!(fsync["count"].as_u64().is_some_and(|n| n > 0), "{fsync}");
    }
    promtool(&["check", "metrics"], Some(&metrics));

    let mut process = daemon.process;
    process.signal("TERM");
    process.expect_exit(0, Duration::from_secs(30));
    for ((name, c), at_least) in names.iter().zip(&clusters).zip([10, 10, 10]) {
        let archive = root.join(name);
        let segments = assert_no_gap(&archive);
        let compared = assert_identical(c, &archive);
        assert_eq!(compared, segments.len());
        assert!(
            compared >= at_least,
            "{name}: only {compared} segments archived"
        );
    }
}
