//! Simple queries and the typed replication commands, checked against what the server
//! reports through SQL.

use pgwalrus_client::Error;
use pgwalrus_testkit::{Cluster, TRUST_USER};
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};

use crate::support::{cluster, connect_ok, pg, repl};

#[tokio::test]
async fn simple_query_rows_and_errors() {
    let c = cluster();
    let mut conn = connect_ok(&format!(
        "{} dbname=postgres sslmode=disable",
        c.conninfo(TRUST_USER)
    ))
    .await;
    let results = conn
        .simple_query("SELECT 1 AS one, NULL::text AS nothing, 'x''y' AS quoted; SELECT 2")
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].columns, ["one", "nothing", "quoted"]);
    assert_eq!(
        results[0].rows,
        vec![vec![Some("1".to_owned()), None, Some("x'y".to_owned())]]
    );
    assert_eq!(results[0].command_tag.as_deref(), Some("SELECT 1"));
    assert_eq!(results[1].rows, vec![vec![Some("2".to_owned())]]);
    // A server error is typed, and the connection stays usable.
    let e = conn.simple_query("SELECT 1/0").await.unwrap_err();
    assert_eq!(e.server_error().unwrap().code().code(), "22012");
    assert!(matches!(e, Error::Server(_)));
    assert_eq!(e.to_string(), "ERROR:  division by zero");
    assert_eq!(
        conn.simple_query("SELECT 3").await.unwrap()[0].rows[0][0].as_deref(),
        Some("3")
    );
    // A SET reported back through ParameterStatus updates the connection's view.
    conn.simple_query("SET application_name = 'walrus-test'")
        .await
        .unwrap();
    assert_eq!(conn.parameter("application_name"), Some("walrus-test"));
    let empty = conn.simple_query("").await.unwrap();
    assert_eq!(empty.len(), 1);
    assert!(empty[0].rows.is_empty());
}

#[tokio::test]
async fn identify_system_matches_pg_control_system() {
    let c = cluster();
    let mut conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=disable")).await;
    let id = conn.identify_system().await.unwrap();
    assert_eq!(id.system_id, c.system_identifier());
    assert_eq!(id.timeline, TimeLineId::ONE);
    assert_eq!(id.dbname, None);
    let current: Lsn = c.current_wal_lsn().parse().unwrap();
    assert!(
        id.xlogpos <= current && id.xlogpos.is_valid(),
        "{} vs {current}",
        id.xlogpos
    );
    // Reported at startup (14+ servers report both).
    assert_eq!(conn.parameter("in_hot_standby"), Some("off"));
    assert_eq!(conn.parameter("default_transaction_read_only"), Some("off"));
    assert!(
        conn.parameter("server_version")
            .unwrap()
            .starts_with(&c.major().to_string())
    );
}

#[tokio::test]
async fn show_and_wal_segment_size() {
    let c = cluster();
    let mut conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=disable")).await;
    assert_eq!(conn.wal_segment_size().await.unwrap(), WalSegSize::DEFAULT);
    assert_eq!(conn.show("data_directory_mode").await.unwrap(), "0700");
    assert_eq!(conn.show("max_wal_senders").await.unwrap(), "10");
    let e = conn.show("no_such_setting").await.unwrap_err();
    assert_eq!(e.server_error().unwrap().code().code(), "42704", "{e}");
    // Still usable.
    assert_eq!(conn.show("wal_level").await.unwrap(), "replica");

    // A cluster with 1 MB segments.
    let small = Cluster::builder(&pg())
        .initdb_arg("--wal-segsize=1")
        .start();
    let mut conn = connect_ok(&repl(&small, TRUST_USER, "sslmode=disable")).await;
    assert_eq!(conn.wal_segment_size().await.unwrap(), WalSegSize::MIN);
}

fn slot_restart_lsn(c: &Cluster, name: &str) -> String {
    c.psql(&format!("SELECT coalesce(restart_lsn::text, 'NULL') FROM pg_replication_slots WHERE slot_name = '{name}'"))
}

#[tokio::test]
async fn slots_create_read_drop() {
    let c = cluster();
    let mut conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=disable")).await;
    let created = conn
        .create_physical_slot("walrus_slot", false, true)
        .await
        .unwrap();
    assert_eq!(created.slot_name, "walrus_slot");
    // RESERVE_WAL: the slot holds WAL from the moment it exists.
    let restart = slot_restart_lsn(&c, "walrus_slot");
    let restart: Lsn = restart
        .parse()
        .unwrap_or_else(|_| panic!("restart_lsn {restart:?}"));
    assert!(restart.is_valid());

    let read = conn.read_replication_slot("walrus_slot").await;
    if c.major() >= 15 {
        let info = read.unwrap().unwrap();
        assert_eq!(info.restart_lsn, Some(restart));
        assert_eq!(info.restart_tli, Some(TimeLineId::ONE));
        assert_eq!(
            conn.read_replication_slot("no_such_slot").await.unwrap(),
            None
        );
    } else {
        let e = read.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Unsupported {
                    command: "READ_REPLICATION_SLOT",
                    ..
                }
            ),
            "{e}"
        );
    }

    // Without RESERVE_WAL the slot has no restart position yet.
    conn.create_physical_slot("lazy_slot", false, false)
        .await
        .unwrap();
    assert_eq!(slot_restart_lsn(&c, "lazy_slot"), "NULL");
    if c.major() >= 15 {
        let info = conn
            .read_replication_slot("lazy_slot")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.restart_lsn, None);
    }

    // Duplicate, invalid names, missing slot.
    let e = conn
        .create_physical_slot("walrus_slot", false, true)
        .await
        .unwrap_err();
    assert_eq!(e.server_error().unwrap().code().code(), "42710", "{e}");
    // Quoted, so the server sees one (invalid) name and says so.
    let e = conn
        .create_physical_slot("Bad Name; DROP_REPLICATION_SLOT walrus_slot", false, true)
        .await
        .unwrap_err();
    assert!(
        e.server_error()
            .unwrap()
            .message
            .contains("invalid character"),
        "{e}"
    );
    // A double quote cannot be quoted in the replication grammar: refused before sending.
    let e = conn
        .create_physical_slot("bad\"name", false, true)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Encode { .. }), "{e}");
    assert_eq!(c.psql("SELECT count(*) FROM pg_replication_slots"), "2");

    conn.drop_slot("walrus_slot", true).await.unwrap();
    conn.drop_slot("lazy_slot", false).await.unwrap();
    assert_eq!(c.psql("SELECT count(*) FROM pg_replication_slots"), "0");
    let e = conn.drop_slot("walrus_slot", false).await.unwrap_err();
    assert_eq!(e.server_error().unwrap().code().code(), "42704", "{e}");
}

#[tokio::test]
async fn temporary_slot_goes_away_with_the_connection() {
    let c = cluster();
    let mut conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=disable")).await;
    conn.create_physical_slot("temp_slot", true, true)
        .await
        .unwrap();
    assert_eq!(
        c.psql("SELECT temporary FROM pg_replication_slots WHERE slot_name = 'temp_slot'"),
        "t"
    );
    conn.close().await.unwrap();
    assert!(pgwalrus_testkit::wait_until(
        std::time::Duration::from_secs(10),
        || c.psql("SELECT count(*) FROM pg_replication_slots") == "0"
    ));
}

#[tokio::test]
async fn timeline_history_of_timeline_one_does_not_exist() {
    let c = cluster();
    let mut conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=disable")).await;
    let e = conn.timeline_history(TimeLineId::ONE).await.unwrap_err();
    assert_eq!(e.server_error().unwrap().code().code(), "58P01", "{e}");
    // The connection survives the error.
    conn.identify_system().await.unwrap();
}
