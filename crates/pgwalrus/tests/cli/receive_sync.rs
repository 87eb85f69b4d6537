//! `--synchronous`: pgwalrus as the synchronous standby. Commits complete while it runs,
//! wait while it is stopped, and every commit acknowledged to a client is in the archive
//! even when pgwalrus is killed right after the acknowledgement.

use std::time::Duration;

use pgwalrus_testkit::wait_until;

use crate::receive_support::{Fixture, Lsn, PATIENCE, psql_background, psql_within, small_cluster};
use crate::support::Background;

const APP: &str = "walrus_sync";

fn start(f: &Fixture) -> Background {
    let r = f.receive(&["-S", "sync", "--synchronous"]);
    assert!(
        wait_until(PATIENCE, || f.c.psql(&format!(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = '{APP}'"
        )) == "sync"),
        "pgwalrus never became the synchronous standby\n{}",
        r.stderr()
    );
    r
}

#[test]
fn receive_synchronous_commits_wait_for_pgwalrus_and_acknowledged_commits_survive_kill9() {
    let mut f = Fixture::new(
        small_cluster()
            .setting("synchronous_standby_names", APP)
            .start(),
    );
    f.conninfo = format!("{} application_name={APP}", f.conninfo);
    // Created without the standby's help: synchronous commit does not apply to it.
    f.c.psql("SELECT pg_create_physical_replication_slot('sync', true)");

    let mut r = start(&f);
    // A commit completes while pgwalrus runs.
    let mut insert = psql_background(&f.c, "CREATE TABLE t (i int, pad text)", "walrus_insert");
    let status = insert.wait_timeout(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "a commit did not complete within 5 s with pgwalrus running: {status:?}\n{}",
        r.stderr()
    );

    // Every acknowledged commit is archived: kill -9 right after the acknowledgement, then
    // the archive (its .partial included) must hold the WAL up to the commit.
    for i in 0..5 {
        // Before COMMIT: a position before the commit record. After the acknowledgement:
        // the flush position the server released the commit on (at least its end).
        let out = psql_within(
            &f.c,
            &format!(
                "BEGIN;\n\
             INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, {}) g;\n\
             SELECT pg_current_wal_insert_lsn();\n\
             COMMIT;\n\
             SELECT flush_lsn FROM pg_stat_replication WHERE application_name = '{APP}';",
                1 + i * 400
            ),
            Duration::from_secs(10),
        );
        r.kill9();
        let mut lines = out.lines();
        let before_commit = Lsn::parse(lines.next().expect("insert lsn"));
        let acknowledged = Lsn::parse(lines.next().expect("flush lsn"));
        assert!(
            acknowledged > before_commit,
            "the server released the commit at {acknowledged}, before its record ({before_commit})"
        );
        assert!(
            f.archive_holds(acknowledged),
            "round {i}: commit acknowledged at {acknowledged}, but after kill -9 the archive does not hold it: {:?}\n{}",
            f.archive_segments(),
            r.stderr()
        );
        r = start(&f);
    }

    // With pgwalrus stopped, a commit waits for it.
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    let mut blocked = psql_background(&f.c, "INSERT INTO t VALUES (-1, 'waits')", "walrus_blocked");
    assert!(
        wait_until(PATIENCE, || f.c.psql(
            "SELECT wait_event FROM pg_stat_activity WHERE application_name = 'walrus_blocked'"
        ) == "SyncRep"),
        "the commit is not waiting for the synchronous standby"
    );
    assert!(
        blocked.is_running(),
        "the commit returned without a standby"
    );

    // pgwalrus comes back: the waiting commit completes.
    let mut r = start(&f);
    let status = blocked.wait_timeout(PATIENCE);
    assert!(
        status.is_some_and(|s| s.success()),
        "the waiting commit did not complete: {status:?}\n{}",
        r.stderr()
    );
    assert_eq!(f.c.psql("SELECT count(*) FROM t WHERE i = -1"), "1");
    let end = f.switch();
    f.wait_archived(end, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    f.assert_complete_and_identical(1);
}
