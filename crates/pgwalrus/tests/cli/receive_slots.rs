//! Replication slots and feedback: `--create-slot` reserves WAL at once, `--if-not-exists`,
//! `--drop-slot`; an empty archive starts where its slot restarts; the flush position is
//! reported only with a slot (or `--synchronous`), and a slot never advances past what the
//! archive holds.

use pgwalrus_testkit::wait_until;

use crate::receive_support::{Fixture, Lsn, PATIENCE, small_cluster};

fn slot_restart_lsn(f: &Fixture, slot: &str) -> Option<Lsn> {
    let text = f.c.psql(&format!(
        "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
    ));
    (!text.is_empty()).then(|| Lsn::parse(&text))
}

#[test]
fn receive_create_slot_reserves_wal_if_not_exists_streams_and_drop_slot_drops() {
    let f = Fixture::new(
        small_cluster()
            .setting("log_replication_commands", "on")
            .start(),
    );
    let mut r = f.receive(&["-S", "arch", "--create-slot"]);
    // The first time the slot is seen, it already has a restart LSN.
    let mut first = None;
    assert!(
        wait_until(PATIENCE, || {
            first = Some(f.c.psql(
                "SELECT coalesce(restart_lsn::text, 'NULL') FROM pg_replication_slots WHERE slot_name = 'arch'",
            ));
            first.as_deref() != Some("")
        }),
        "slot not created:\n{}",
        r.stderr()
    );
    assert_ne!(
        first.as_deref(),
        Some("NULL"),
        "restart_lsn was NULL at first"
    );
    let created =
        f.c.log()
            .lines()
            .find(|l| l.contains("CREATE_REPLICATION_SLOT"))
            .map(str::to_owned)
            .unwrap_or_default();
    assert!(
        created.contains("\"arch\"")
            && created.contains("PHYSICAL")
            && created.contains("RESERVE_WAL"),
        "server log: {created}"
    );
    assert!(
        r.stderr().contains("created replication slot"),
        "{}",
        r.stderr()
    );
    let lsn = f.load(300);
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);

    // --create-slot on an existing slot without --if-not-exists: a configuration error.
    let mut r = f.receive(&["-S", "arch", "--create-slot"]);
    r.expect_exit(2, PATIENCE);
    assert!(r.stderr().contains("already exists"), "{}", r.stderr());

    // With --if-not-exists it streams through the existing slot.
    let mut r = f.receive(&["-S", "arch", "--create-slot", "--if-not-exists"]);
    let lsn = f.load(300);
    f.wait_archived(lsn, &r);
    f.wait_streaming("pgwalrus", &r);
    assert_eq!(
        f.c.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'arch'"),
        "t"
    );
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    f.assert_complete_and_identical(0);

    let run = crate::support::pgwalrus(
        &f.home,
        &["receive", "-d", &f.conninfo, "-S", "arch", "--drop-slot"],
        &[],
    );
    run.expect_code(0);
    assert_eq!(slot_restart_lsn(&f, "arch"), None);
    assert_eq!(
        f.c.psql("SELECT count(*) FROM pg_replication_slots"),
        "0",
        "slot not dropped"
    );
}

#[test]
fn receive_reports_flush_only_with_a_slot_and_the_slot_never_passes_the_archive() {
    let f = Fixture::small();

    // No slot, no --synchronous: the write position is reported, flush never.
    let mut r = f.receive(&["-s", "1"]);
    let positions = |app: &str| {
        f.c.psql(&format!(
            "SELECT coalesce(write_lsn, '0/0'), coalesce(flush_lsn::text, 'NULL'), coalesce(replay_lsn::text, 'NULL') \
             FROM pg_stat_replication WHERE application_name = '{app}'"
        ))
    };
    // Every status update seen, from the first to one after the load, says nothing about
    // flush (or replay).
    let mut lsn = None;
    let mut seen = 0;
    assert!(
        wait_until(PATIENCE, || {
            let row = positions("pgwalrus");
            if row.is_empty() {
                return false;
            }
            assert!(
                row.ends_with("|NULL|NULL"),
                "flush reported without a slot: {row}"
            );
            seen += 1;
            let target = *lsn.get_or_insert_with(|| f.load(600));
            Lsn::parse(row.split('|').next().unwrap()) >= target
        }),
        "write position not reported: {}\n{}",
        positions("pgwalrus"),
        r.stderr()
    );
    assert!(seen > 1);
    f.wait_archived(lsn.unwrap(), &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);

    // With a slot: restart_lsn follows the flushed position, and the archive always holds
    // WAL up to it.
    f.c.psql("SELECT pg_create_physical_replication_slot('fb', true)");
    let mut r = f.receive(&["-S", "fb", "-s", "1"]);
    let mut target = f.current_lsn();
    let mut checks = 0;
    for round in 0..4 {
        if round < 3 {
            target = f.load(400);
        }
        assert!(
            wait_until(PATIENCE, || {
                let restart = slot_restart_lsn(&f, "fb").expect("slot");
                // Nothing before the archive's start is needed from the server.
                let start = f.archive_start().expect("segments");
                assert!(
                    restart <= start || f.archive_holds(restart),
                    "slot restart_lsn {restart} is beyond the archive\n{}",
                    r.stderr()
                );
                checks += 1;
                restart >= target
            }),
            "restart_lsn {:?} never reached {target}\n{}",
            slot_restart_lsn(&f, "fb"),
            r.stderr()
        );
    }
    assert!(checks > 3);
    let row = positions("pgwalrus");
    assert!(!row.contains("|NULL|"), "flush reported with a slot: {row}");
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    let restart = slot_restart_lsn(&f, "fb").expect("slot");
    assert!(restart >= target && f.archive_holds(restart), "{restart}");
    f.assert_complete_and_identical(0);
}

/// A slot that reserved WAL, then several segments of WAL after it: returns the fixture and
/// the start of the slot's restart segment.
fn slot_behind_the_server() -> (Fixture, Lsn) {
    let f = Fixture::small();
    f.c.psql("SELECT pg_create_physical_replication_slot('kept', true)");
    let restart = slot_restart_lsn(&f, "kept").expect("slot");
    for _ in 0..3 {
        f.load(300);
        f.switch();
    }
    let first = Lsn(restart.0 / f.seg_size * f.seg_size);
    assert!(
        f.current_lsn().0 >= first.0 + 3 * f.seg_size,
        "server at {}, slot at {restart}",
        f.current_lsn()
    );
    (f, first)
}

/// An empty archive with an existing or new slot starts at the slot's restart segment, not
/// at the server's current one, so the WAL the slot kept is archived: from
/// `READ_REPLICATION_SLOT` (15+), before 15 from `pg_replication_slots` (pg_receivewal 14
/// starts at the server's position and the slot then moves past that WAL).
#[test]
fn receive_into_an_empty_archive_starts_at_the_slots_restart_segment() {
    let (f, first) = slot_behind_the_server();
    let mut r = f.receive(&["-S", "kept"]);
    let lsn = f.load(100);
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    assert_eq!(f.archive_start(), Some(first), "{}", r.stderr());
    if f.c.major() < 15 {
        assert!(
            r.stderr().contains("pg_replication_slots"),
            "{}",
            r.stderr()
        );
    }
    assert!(f.assert_complete_and_identical(3) >= 3);

    // A slot `--create-slot` makes reserves WAL from the last checkpoint's redo point, and
    // an empty archive starts there too, on every major.
    std::fs::remove_dir_all(&f.archive).unwrap();
    std::fs::create_dir(&f.archive).unwrap();
    f.c.psql("CHECKPOINT");
    let redo = Lsn::parse(&f.c.psql("SELECT redo_lsn FROM pg_control_checkpoint()"));
    for _ in 0..2 {
        f.load(300);
        f.switch();
    }
    let mut r = f.receive(&["-S", "fresh", "--create-slot"]);
    let lsn = f.load(100);
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    assert_eq!(
        f.archive_start(),
        Some(Lsn(redo.0 / f.seg_size * f.seg_size)),
        "{}",
        r.stderr()
    );
    assert!(f.assert_complete_and_identical(2) >= 2);
}

/// When the slot's row cannot be read (here the role may not connect to database
/// `postgres`; replication connections need no database), 15+ still starts at the slot,
/// and before 15 the receiver says what it cannot know and what it skips, then starts at the
/// server's position as pg_receivewal does.
#[test]
fn receive_without_sql_access_says_what_an_empty_archive_skips_before_15() {
    let (f, first) = slot_behind_the_server();
    f.c.psql("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC");
    let server = f.current_lsn();
    let mut r = f.receive(&["-S", "kept"]);
    let lsn = f.load(100);
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    let stderr = r.stderr();
    if f.c.major() >= 15 {
        assert_eq!(f.archive_start(), Some(first), "{stderr}");
        assert!(
            !stderr.contains("could not read the restart position"),
            "{stderr}"
        );
    } else {
        let current = Lsn(server.0 / f.seg_size * f.seg_size);
        assert_eq!(f.archive_start(), Some(current), "{stderr}");
        assert!(
            stderr.contains("could not read the restart position of replication slot \"kept\"")
                && stderr.contains(&format!(
                    "starts at the server's current position {current}"
                ))
                && stderr.contains("is not archived"),
            "{stderr}"
        );
    }
    f.assert_complete_and_identical(0);
}
