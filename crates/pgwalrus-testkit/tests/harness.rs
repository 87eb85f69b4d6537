//! Tests of the harness itself against a real server. The major under test
//! is `$PGWALRUS_PG_BINDIR` (default: Debian's PostgreSQL 15).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use pgwalrus_testkit::{
    ALL_TEST_USERS, CERT_USER, Cluster, DEBIAN_BINDIR, MD5_USER, NOREPL_USER, PASSWORD,
    PASSWORD_USER, PgBin, SCRAM_USER, TLSONLY_USER, TRUST_USER, debian_bin, pg_bin, process_alive,
    run_psql, wait_until,
};

const WHO: &str =
    "SELECT current_user || ' ' || (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())";

fn ok(result: Result<String, String>, what: &str) -> String {
    result.unwrap_or_else(|e| panic!("{what}: expected success, got: {e}"))
}

fn err(result: Result<String, String>, what: &str, needle: &str) {
    match result {
        Ok(out) => panic!("{what}: expected failure containing {needle:?}, got success: {out}"),
        Err(e) => assert!(
            e.contains(needle),
            "{what}: expected an error containing {needle:?}, got: {e}"
        ),
    }
}

#[test]
fn starts_with_the_expected_configuration() {
    let pg = pg_bin();
    let c = Cluster::builder(&pg)
        .setting("wal_sender_timeout", "42s")
        .setting("search_path", "\"it's\", public")
        .start();
    assert_eq!(c.psql("SELECT 1"), "1");
    assert_eq!(c.major(), pg.major);
    let version_num: u32 = c
        .psql("SHOW server_version_num")
        .parse()
        .expect("server_version_num");
    assert_eq!(version_num / 10000, pg.major);
    for (name, want) in [
        ("wal_level", "replica".to_owned()),
        ("max_wal_senders", "10".to_owned()),
        ("max_replication_slots", "10".to_owned()),
        ("wal_keep_size", "256MB".to_owned()),
        ("shared_buffers", "32MB".to_owned()),
        ("max_connections", "40".to_owned()),
        ("fsync", "on".to_owned()),
        ("ssl", "on".to_owned()),
        ("logging_collector", "off".to_owned()),
        ("listen_addresses", "127.0.0.1".to_owned()),
        ("port", c.port().to_string()),
        (
            "unix_socket_directories",
            c.socket_dir().display().to_string(),
        ),
        ("wal_sender_timeout", "42s".to_owned()),
        ("search_path", "\"it's\", public".to_owned()),
    ] {
        assert_eq!(c.psql(&format!("SHOW {name}")), want, "setting {name}");
    }
    // Statements run one by one (CREATE DATABASE cannot run in a transaction block).
    assert_eq!(
        c.psql(
            "CREATE DATABASE scratch;\nSELECT count(*) FROM pg_database WHERE datname = 'scratch';"
        ),
        "1"
    );
    assert_eq!(c.psql("SELECT 1, 'a' UNION ALL SELECT 2, 'b'"), "1|a\n2|b");
    err(
        c.try_psql("SELECT no_such_column"),
        "bad SQL",
        "no_such_column",
    );
    assert!(c.pg_wal_dir().is_dir());
    assert!(c.data_dir().join("PG_VERSION").is_file());
    assert!(
        c.log()
            .contains("database system is ready to accept connections"),
        "log: {}",
        c.log()
    );
    let segment = c.switch_wal();
    assert_eq!(segment.len(), 24, "segment name {segment:?}");
    assert!(
        segment.chars().all(|ch| ch.is_ascii_hexdigit()),
        "segment name {segment:?}"
    );
    assert!(c.current_wal_lsn().contains('/'));
}

#[test]
fn every_role_authenticates_with_its_method() {
    let pg = pg_bin();
    let c = Cluster::builder(&pg).start();
    let tls = c.tls();
    let (ca, cert, key) = (
        tls.ca_cert.to_str().unwrap(),
        tls.client_cert.to_str().unwrap(),
        tls.client_key.to_str().unwrap(),
    );
    for path in [&tls.client_key, &tls.ca_key, &tls.server_key] {
        let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let no_tls = [("PGSSLMODE", "disable")];

    // Roles and their attributes.
    let roles = c.psql("SELECT rolname || ' ' || rolreplication FROM pg_roles WHERE rolname LIKE 'walrus%' ORDER BY 1");
    let mut expected: Vec<String> = ALL_TEST_USERS
        .iter()
        .map(|u| format!("{u} {}", if *u == NOREPL_USER { "false" } else { "true" }))
        .collect();
    expected.sort();
    assert_eq!(roles, expected.join("\n"));
    assert_eq!(
        c.psql(&format!(
            "SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = '{MD5_USER}'"
        )),
        "t"
    );
    assert_eq!(
        c.psql(&format!("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = '{SCRAM_USER}'")),
        "t"
    );

    // trust
    for user in [TRUST_USER, NOREPL_USER] {
        assert_eq!(
            ok(c.try_psql_as(user, &no_tls, WHO), user),
            format!("{user} false")
        );
    }

    // password methods: right password, wrong password, none.
    for (user, method) in [
        (PASSWORD_USER, "password"),
        (MD5_USER, "md5"),
        (SCRAM_USER, "scram-sha-256"),
    ] {
        let out = ok(
            c.try_psql_as(
                user,
                &[("PGSSLMODE", "disable"), ("PGPASSWORD", PASSWORD)],
                WHO,
            ),
            user,
        );
        assert_eq!(out, format!("{user} false"));
        err(
            c.try_psql_as(
                user,
                &[("PGSSLMODE", "disable"), ("PGPASSWORD", "wrong")],
                WHO,
            ),
            user,
            "password authentication failed",
        );
        err(c.try_psql_as(user, &no_tls, WHO), user, "password");
        if pg.major >= 16 {
            // system_user is "<auth method>:<authenticated identity>".
            let sys = ok(
                c.try_psql_as(
                    user,
                    &[("PGSSLMODE", "disable"), ("PGPASSWORD", PASSWORD)],
                    "SELECT system_user",
                ),
                user,
            );
            assert_eq!(sys, format!("{method}:{user}"));
        }
    }

    // scram over the unix socket, with PGPASSWORD and with a password file.
    let sock = format!("{} dbname=postgres", c.socket_conninfo(SCRAM_USER));
    assert_eq!(
        ok(
            run_psql(&sock, &[("PGPASSWORD", PASSWORD)], "SELECT current_user"),
            "socket scram"
        ),
        SCRAM_USER
    );
    err(
        run_psql(&sock, &[("PGPASSWORD", "wrong")], "SELECT 1"),
        "socket scram",
        "password authentication failed",
    );
    let pgpass = c.root_dir().join("pgpass");
    fs::write(
        &pgpass,
        format!("*:{}:*:{SCRAM_USER}:{PASSWORD}\n", c.port()),
    )
    .unwrap();
    fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o600)).unwrap();
    let out = run_psql(
        &sock,
        &[("PGPASSFILE", pgpass.to_str().unwrap())],
        "SELECT current_user",
    );
    assert_eq!(ok(out, "socket scram via pgpass"), SCRAM_USER);
    // Password roles are not allowed over the socket.
    let sock_md5 = format!("{} dbname=postgres", c.socket_conninfo(MD5_USER));
    err(
        run_psql(&sock_md5, &[("PGPASSWORD", PASSWORD)], "SELECT 1"),
        "socket md5",
        "no pg_hba.conf entry",
    );

    // TLS-only role.
    err(
        c.try_psql_as(
            TLSONLY_USER,
            &[("PGSSLMODE", "disable"), ("PGPASSWORD", PASSWORD)],
            WHO,
        ),
        "tlsonly without TLS",
        "rejects connection",
    );
    let out = c.try_psql_as(
        TLSONLY_USER,
        &[("PGSSLMODE", "require"), ("PGPASSWORD", PASSWORD)],
        WHO,
    );
    assert_eq!(ok(out, "tlsonly with TLS"), format!("{TLSONLY_USER} true"));

    // Certificate role; the server certificate names only DNS:localhost.
    let cert_env = [
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", ca),
        ("PGSSLCERT", cert),
        ("PGSSLKEY", key),
    ];
    let by_name = format!(
        "{} host=localhost hostaddr=127.0.0.1 dbname=postgres",
        c.conninfo(CERT_USER)
    );
    assert_eq!(
        ok(
            run_psql(&by_name, &cert_env, WHO),
            "cert verify-full localhost"
        ),
        format!("{CERT_USER} true")
    );
    if pg.major >= 16 {
        assert_eq!(
            ok(run_psql(&by_name, &cert_env, "SELECT system_user"), "cert"),
            format!("cert:CN={CERT_USER}")
        );
    }
    err(
        c.try_psql_as(CERT_USER, &cert_env, WHO),
        "cert verify-full 127.0.0.1",
        "does not match host name",
    );
    let other_ca = tls.other_ca_cert.to_str().unwrap();
    let wrong_ca = [
        ("PGSSLMODE", "verify-ca"),
        ("PGSSLROOTCERT", other_ca),
        ("PGSSLCERT", cert),
        ("PGSSLKEY", key),
    ];
    err(
        run_psql(&by_name, &wrong_ca, WHO),
        "cert with an unrelated CA",
        "certificate verify failed",
    );
    err(
        c.try_psql_as(CERT_USER, &[("PGSSLMODE", "require")], WHO),
        "cert without client cert",
        "certificate",
    );
    err(
        c.try_psql_as(CERT_USER, &no_tls, WHO),
        "cert without TLS",
        "no pg_hba.conf entry",
    );
    let (intruder_cert, intruder_key) = tls.issue_client_cert("intruder");
    let intruder = [
        ("PGSSLMODE", "verify-ca"),
        ("PGSSLROOTCERT", ca),
        ("PGSSLCERT", intruder_cert.to_str().unwrap()),
        ("PGSSLKEY", intruder_key.to_str().unwrap()),
    ];
    err(
        c.try_psql_as(CERT_USER, &intruder, WHO),
        "cert with another CN",
        "certificate authentication failed",
    );

    // Physical replication connections (the `replication` pseudo-database rows).
    let repl = |user: &str, envs: &[(&str, &str)]| {
        run_psql(
            &format!("{} replication=true", c.conninfo(user)),
            envs,
            "IDENTIFY_SYSTEM",
        )
    };
    let sysid = c.system_identifier().to_string();
    for (user, envs) in [
        (TRUST_USER, &no_tls[..]),
        (
            PASSWORD_USER,
            &[("PGSSLMODE", "disable"), ("PGPASSWORD", PASSWORD)][..],
        ),
        (
            MD5_USER,
            &[("PGSSLMODE", "disable"), ("PGPASSWORD", PASSWORD)][..],
        ),
        (
            SCRAM_USER,
            &[("PGSSLMODE", "disable"), ("PGPASSWORD", PASSWORD)][..],
        ),
        (
            TLSONLY_USER,
            &[("PGSSLMODE", "require"), ("PGPASSWORD", PASSWORD)][..],
        ),
        (
            CERT_USER,
            &[
                ("PGSSLMODE", "verify-ca"),
                ("PGSSLROOTCERT", ca),
                ("PGSSLCERT", cert),
                ("PGSSLKEY", key),
            ][..],
        ),
    ] {
        let out = ok(
            repl(user, envs),
            &format!("replication connection as {user}"),
        );
        assert!(
            out.starts_with(&format!("{sysid}|1|")),
            "IDENTIFY_SYSTEM as {user}: {out}"
        );
    }
    let out = repl(NOREPL_USER, &no_tls);
    assert!(
        out.is_err(),
        "replication connection as {NOREPL_USER} must fail: {out:?}"
    );
}

#[test]
fn lifecycle_stop_start_restart_reload_kill9() {
    let pg = pg_bin();
    let c = Cluster::builder(&pg).start();
    let port = c.port();
    let pid1 = c.pid();
    assert!(process_alive(pid1) && c.is_running());

    c.stop();
    assert!(!process_alive(pid1) && !c.is_running());
    assert!(c.try_psql("SELECT 1").is_err());

    c.start();
    let pid2 = c.pid();
    assert_ne!(pid1, pid2);
    assert_eq!(c.port(), port);
    assert_eq!(c.psql("SELECT 1"), "1");

    c.restart();
    assert_ne!(c.pid(), pid2);

    c.psql("ALTER SYSTEM SET work_mem = '7MB'");
    c.reload();
    assert!(wait_until(Duration::from_secs(10), || c
        .psql("SHOW work_mem")
        == "7MB"));

    c.psql("CREATE TABLE survives AS SELECT 42 AS v");
    let pid3 = c.pid();
    c.kill9();
    assert!(!process_alive(pid3) && !c.is_running());
    assert!(c.try_psql("SELECT 1").is_err());
    c.start();
    assert_eq!(c.psql("SELECT v FROM survives"), "42");
    assert!(
        c.log().contains("not properly shut down"),
        "expected crash recovery in the log:\n{}",
        c.log()
    );
}

#[test]
fn drop_stops_the_server_and_removes_its_directory() {
    let pg = pg_bin();
    let c = Cluster::builder(&pg).start();
    let (pid, root) = (c.pid(), c.root_dir().to_owned());
    c.psql("SELECT 1");
    drop(c);
    assert!(!process_alive(pid), "postmaster {pid} survived drop");
    assert!(!root.exists(), "{} survived drop", root.display());
}

#[test]
fn drop_kills_a_server_pg_ctl_cannot_stop() {
    let pg = pg_bin();
    let c = Cluster::builder(&pg).start();
    let (pid, root) = (c.pid(), c.root_dir().to_owned());
    // Without postmaster.pid, `pg_ctl stop` fails; Drop falls back to SIGKILL.
    fs::remove_file(c.data_dir().join("postmaster.pid")).unwrap();
    drop(c);
    assert!(!process_alive(pid), "postmaster {pid} survived drop");
    assert!(!root.exists());
}

#[test]
fn drop_after_stop_and_after_kill9() {
    let pg = pg_bin();
    let stopped = Cluster::builder(&pg).start();
    stopped.stop();
    let root = stopped.root_dir().to_owned();
    drop(stopped);
    assert!(!root.exists());

    let killed = Cluster::builder(&pg).start();
    killed.kill9();
    let root = killed.root_dir().to_owned();
    drop(killed);
    assert!(!root.exists());
}

#[test]
fn a_panicking_test_still_cleans_up() {
    let pg = pg_bin();
    let seen: Mutex<Option<(u32, PathBuf)>> = Mutex::new(None);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let c = Cluster::builder(&pg).start();
        *seen.lock().unwrap() = Some((c.pid(), c.root_dir().to_owned()));
        panic!("deliberate panic with a running cluster");
    }));
    assert!(result.is_err());
    let (pid, root) = seen.lock().unwrap().take().expect("cluster started");
    assert!(!process_alive(pid), "postmaster {pid} survived the panic");
    assert!(!root.exists(), "{} survived the panic", root.display());
}

#[test]
fn template_copies_share_an_identity_and_fresh_initdb_does_not() {
    let pg = pg_bin();
    let a = Cluster::builder(&pg).start();
    let b = Cluster::builder(&pg).start();
    let fresh = Cluster::builder(&pg).fresh_initdb(true).start();
    assert_ne!(a.port(), b.port());
    assert_eq!(a.system_identifier(), b.system_identifier());
    assert_ne!(a.system_identifier(), fresh.system_identifier());
    let out = fresh.try_psql_as(
        SCRAM_USER,
        &[("PGSSLMODE", "require"), ("PGPASSWORD", PASSWORD)],
        WHO,
    );
    assert_eq!(
        ok(out, "scram on a fresh cluster"),
        format!("{SCRAM_USER} true")
    );
}

#[test]
fn initdb_args_reach_initdb() {
    let pg = pg_bin();
    let c = Cluster::builder(&pg).initdb_arg("--wal-segsize=1").start();
    assert_eq!(c.psql("SHOW wal_segment_size"), "1MB");
    c.switch_wal();
}

#[test]
fn from_data_dir_starts_a_copy() {
    let pg = pg_bin();
    let a = Cluster::builder(&pg).start();
    a.psql("CREATE TABLE marker AS SELECT 42 AS v");
    a.stop();
    let b = Cluster::builder(&pg).from_data_dir(a.data_dir()).start();
    assert_eq!(b.psql("SELECT v FROM marker"), "42");
    assert_ne!(a.port(), b.port());
    a.start();
    assert_eq!(a.system_identifier(), b.system_identifier());
}

#[test]
fn standby_from_pg_basebackup() {
    // Debian's pg_basebackup 15 refuses to stream from newer servers: against 16+ the
    // test runs on a PostgreSQL 15 server instead.
    let pg = pg_bin();
    let pg = if pg.major <= 15 {
        pg
    } else {
        PgBin::new(DEBIAN_BINDIR)
    };
    let primary = Cluster::builder(&pg).start();
    let backup = primary.root_dir().join("backup");
    let out = Command::new(debian_bin("pg_basebackup"))
        .arg("-D")
        .arg(&backup)
        .args(["-R", "-X", "stream", "-c", "fast", "-d"])
        .arg(format!("{} sslmode=require", primary.conninfo(TRUST_USER)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_basebackup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let standby = Cluster::builder(&pg).from_data_dir(&backup).start();
    assert_eq!(standby.psql("SELECT pg_is_in_recovery()"), "t");
    primary.psql("CREATE TABLE replicated AS SELECT 7 AS v");
    assert!(wait_until(Duration::from_secs(30), || standby
        .try_psql("SELECT v FROM replicated")
        .as_deref()
        == Ok("7")));
}

#[test]
fn parallel_clusters_get_distinct_ports() {
    let pg = pg_bin();
    let clusters: Vec<Cluster> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| Cluster::builder(&pg).start()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ports: Vec<u16> = clusters.iter().map(Cluster::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    for c in &clusters {
        assert_eq!(c.psql("SELECT 1"), "1");
    }
}

#[test]
#[allow(clippy::disallowed_methods, reason = "measuring harness start-up time")]
#[allow(
    clippy::print_stderr,
    reason = "report start-up times with --nocapture"
)]
fn start_up_times() {
    use std::time::Instant;
    let pg = pg_bin();
    drop(Cluster::builder(&pg).start()); // warm the template and TLS caches
    let t = Instant::now();
    let c = Cluster::builder(&pg).start();
    let template = t.elapsed();
    let t = Instant::now();
    drop(c);
    let dropped = t.elapsed();
    let t = Instant::now();
    let f = Cluster::builder(&pg).fresh_initdb(true).start();
    let fresh = t.elapsed();
    drop(f);
    eprintln!(
        "PostgreSQL {}: start from template {template:?}, fresh initdb {fresh:?}, drop {dropped:?}",
        pg.major
    );
}
