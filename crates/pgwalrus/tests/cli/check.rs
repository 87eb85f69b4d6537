//! `pgwalrus check`: what it reports, and the exit code and message for each way streaming
//! would fail.

use std::os::unix::fs::PermissionsExt;

use pgwalrus_testkit::{Cluster, MD5_USER, NOREPL_USER, PASSWORD, SCRAM_USER, TRUST_USER, pg_bin};

use crate::support::{Home, pgwalrus};

fn cluster() -> Cluster {
    Cluster::builder(&pg_bin()).start()
}

fn field<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{stdout}"))
}

#[test]
fn reports_identity_position_and_segment_size() {
    let c = cluster();
    let home = Home::new();
    let run = pgwalrus(&home, &["check", "-d", &c.conninfo(TRUST_USER)], &[]);
    run.expect_code(0);
    assert_eq!(
        field(&run.stdout, "system identifier"),
        c.system_identifier().to_string()
    );
    assert_eq!(field(&run.stdout, "timeline"), "1");
    assert_eq!(field(&run.stdout, "WAL segment size"), "16MB");
    let pos = field(&run.stdout, "current WAL position");
    let lsn = pos.split_whitespace().next().unwrap();
    let server_now: String = c.psql("SELECT pg_current_wal_lsn()");
    assert!(
        c.psql(&format!("SELECT '{lsn}'::pg_lsn <= '{server_now}'::pg_lsn")) == "t",
        "reported {lsn}, server already at {server_now}"
    );
    let walfile = c.psql(&format!("SELECT pg_walfile_name('{lsn}')"));
    // pg_walfile_name names the segment holding the byte *before* a position; both agree
    // unless the position sits exactly on a segment boundary.
    if !lsn.ends_with("000000") {
        assert!(pos.contains(&walfile), "{pos} vs {walfile}");
    }
    assert!(
        run.stdout.contains("ok: streaming would work"),
        "{}",
        run.stdout
    );
    assert_eq!(field(&run.stdout, "authentication"), "none");
    assert!(
        run.stdout
            .contains(&format!("PostgreSQL {}", c.psql("SHOW server_version")))
    );
}

#[test]
fn reports_tls_and_scram_with_channel_binding() {
    let c = cluster();
    let home = Home::new();
    let conninfo = format!(
        "{} password={PASSWORD} sslmode=verify-full host=localhost hostaddr=127.0.0.1 sslrootcert={} channel_binding=require",
        c.conninfo(SCRAM_USER),
        c.tls().ca_cert.display()
    );
    let run = pgwalrus(&home, &["check", "-d", &conninfo], &[]);
    run.expect_code(0);
    assert!(
        field(&run.stdout, "TLS").starts_with("TLSv1_"),
        "{}",
        run.stdout
    );
    assert_eq!(field(&run.stdout, "authentication"), "scram-sha-256-plus");
}

#[test]
fn slot_created_with_reserved_wal_is_reported_with_its_restart_lsn() {
    let c = cluster();
    c.psql("SELECT pg_create_physical_replication_slot('arch', true)");
    let restart = c.psql("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'arch'");
    let home = Home::new();
    let run = pgwalrus(
        &home,
        &["check", "-d", &c.conninfo(TRUST_USER), "--slot", "arch"],
        &[],
    );
    run.expect_code(0);
    let slot = field(&run.stdout, "slot \"arch\"");
    assert!(slot.starts_with("exists, physical, inactive"), "{slot}");
    assert!(
        slot.contains(&format!("restart LSN {restart}")),
        "{slot} vs {restart}"
    );
    assert!(slot.contains("wal_status reserved"), "{slot}");
}

#[test]
fn missing_slot_is_a_configuration_error() {
    let c = cluster();
    let home = Home::new();
    let run = pgwalrus(
        &home,
        &["check", "-d", &c.conninfo(TRUST_USER), "-S", "nope"],
        &[],
    );
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("replication slot \"nope\" does not exist"),
        "{}",
        run.stderr
    );
}

#[test]
fn wrong_password_gives_the_servers_message_and_exit_2() {
    let c = cluster();
    let home = Home::new();
    let conninfo = format!("{} password=wrong sslmode=disable", c.conninfo(MD5_USER));
    let run = pgwalrus(&home, &["check", "-d", &conninfo], &[]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&format!(
            "password authentication failed for user \"{MD5_USER}\""
        )),
        "{}",
        run.stderr
    );
    // One attempt, not a retry storm: the server logged exactly one failure.
    let failures = c.log().matches("password authentication failed").count();
    assert_eq!(failures, 1, "server log:\n{}", c.log());
}

#[test]
fn password_from_the_environment_and_from_pgpass() {
    let c = cluster();
    let home = Home::new();
    let conninfo = c.conninfo(SCRAM_USER);
    pgwalrus(
        &home,
        &["check", "-d", &conninfo],
        &[("PGPASSWORD", PASSWORD)],
    )
    .expect_code(0);

    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "127.0.0.1:{}:replication:{SCRAM_USER}:{PASSWORD}\n",
            c.port()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    pgwalrus(&home, &["check", "-d", &conninfo], &[]).expect_code(0);

    // Group/world-readable: libpq warns and ignores the file, so authentication fails.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = pgwalrus(&home, &["check", "-d", &conninfo], &[]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("has group or world access"),
        "{}",
        run.stderr
    );
}

#[test]
fn unreachable_server_names_host_and_port_and_exits_1() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let home = Home::new();
    let run = pgwalrus(
        &home,
        &[
            "check",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "x",
        ],
        &[],
    );
    run.expect_code(1);
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
}

#[test]
fn malformed_conninfo_names_keyword_and_position() {
    let home = Home::new();
    let run = pgwalrus(&home, &["check", "-d", "host=localhost bogus=1"], &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("bogus"), "{}", run.stderr);
    assert!(
        run.stderr.contains("15"),
        "position of the keyword: {}",
        run.stderr
    );
    let run = pgwalrus(&home, &["check", "-d", "postgresql://host:notaport/"], &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("port"), "{}", run.stderr);
}

#[test]
fn role_without_replication_gets_the_servers_permission_error() {
    let c = cluster();
    let home = Home::new();
    let run = pgwalrus(&home, &["check", "-d", &c.conninfo(NOREPL_USER)], &[]);
    run.expect_code(2);
    // 14/15: "must be superuser or replication role to start walsender"; 16+: "permission
    // denied to start WAL sender" with a detail naming the REPLICATION attribute.
    let err = run.stderr.to_lowercase();
    assert!(
        err.contains("permission denied") || err.contains("must be"),
        "{}",
        run.stderr
    );
    assert!(err.contains("replication"), "{}", run.stderr);
}

#[test]
fn certificate_name_mismatch_is_named() {
    let c = cluster();
    let home = Home::new();
    let conninfo = format!(
        "{} sslmode=verify-full sslrootcert={}",
        c.conninfo(TRUST_USER),
        c.tls().ca_cert.display()
    );
    let run = pgwalrus(&home, &["check", "-d", &conninfo], &[]);
    run.expect_code(2);
    let err = run.stderr.to_lowercase();
    assert!(
        err.contains("certificate") && err.contains("127.0.0.1"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2_and_help_lists_exit_codes() {
    let home = Home::new();
    pgwalrus(&home, &["check", "--no-such-flag"], &[]).expect_code(2);
    let run = pgwalrus(&home, &["check", "-?"], &[]);
    run.expect_code(0);
    assert!(run.stdout.contains("Exit status:"), "{}", run.stdout);
    assert!(run.stdout.contains("-h, --host"), "{}", run.stdout);
}
