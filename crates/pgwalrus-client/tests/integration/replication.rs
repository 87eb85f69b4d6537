//! The replication stream against real servers: byte equality with the server's own
//! `pg_wal` files, status updates seen in `pg_stat_replication`, slots, errors after
//! entering copy mode, server shutdown, and timeline switches on a promoted standby.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use pgwalrus_client::{Connection, Error, ReplicationMessage, ReplicationStream};
use pgwalrus_testkit::{Cluster, TRUST_USER, give_to_server_user, wait_until};
use pgwalrus_wal::history::TimelineHistory;
use pgwalrus_wal::names::{FileName, SegmentName};
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};

use crate::support::{cluster, connect_ok, pg, repl, within};

#[allow(
    clippy::disallowed_methods,
    reason = "tests play the application, which reads the clock"
)]
fn now() -> SystemTime {
    SystemTime::now()
}

/// Receives WAL from `start` until `end`, checking contiguity; returns the bytes.
async fn receive(stream: &mut ReplicationStream, start: Lsn, end: Lsn) -> BytesMut {
    let mut out = BytesMut::new();
    let mut pos = start;
    while pos < end {
        match within(stream.next()).await.unwrap() {
            Some(ReplicationMessage::XLogData {
                start,
                end: chunk_end,
                data,
                wal_end,
                ..
            }) => {
                assert_eq!(start, pos, "chunks must be contiguous");
                assert_eq!(chunk_end.as_u64() - start.as_u64(), data.len() as u64);
                assert!(
                    wal_end >= chunk_end || wal_end == Lsn::INVALID,
                    "{wal_end} < {chunk_end}"
                );
                out.extend_from_slice(&data);
                pos = chunk_end;
            }
            Some(ReplicationMessage::Keepalive {
                reply_requested,
                wal_end,
                ..
            }) => {
                if reply_requested {
                    stream
                        .send_status(pos, Lsn::INVALID, Lsn::INVALID, false, now())
                        .await
                        .unwrap();
                }
                assert!(wal_end >= pos || wal_end == Lsn::INVALID);
            }
            other => panic!("unexpected {other:?} before {end}"),
        }
    }
    out
}

fn segment_file(c: &Cluster, name: &str) -> Vec<u8> {
    std::fs::read(c.pg_wal_dir().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

#[tokio::test]
async fn streamed_segments_equal_the_servers_pg_wal_files() {
    let c = cluster();
    let mut conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=require")).await;
    let id = conn.identify_system().await.unwrap();
    let seg = conn.wal_segment_size().await.unwrap();
    let start = id.xlogpos.segment_start(seg);
    let mut stream = within(conn.start_physical(None, start, id.timeline))
        .await
        .unwrap();

    c.psql("CREATE TABLE filler AS SELECT g, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 30000) g");
    let completed = c.switch_wal();
    let last = FileName::parse(&completed, seg).unwrap();
    let last = last.as_segment().unwrap();
    let end = last.end_lsn().unwrap();

    let bytes = receive(&mut stream, start, end).await;
    assert_eq!(bytes.len() as u64, end.as_u64() - start.as_u64());
    // Every completed segment from `start` on, byte for byte.
    let mut seg_start = start;
    let mut compared = 0;
    while seg_start < end {
        let name = SegmentName::containing(id.timeline, seg_start, seg).to_string();
        let offset = (seg_start.as_u64() - start.as_u64()) as usize;
        let ours = &bytes[offset..offset + seg.bytes() as usize];
        assert!(
            ours == segment_file(&c, &name).as_slice(),
            "segment {name} differs from the server's file"
        );
        compared += 1;
        seg_start = seg_start.checked_add(seg.as_u64()).unwrap();
    }
    assert!(compared >= 1);

    // Ending from our side gives the connection back, ready for commands.
    let mut conn = within(stream.finish()).await.unwrap();
    assert_eq!(
        conn.identify_system().await.unwrap().system_id,
        c.system_identifier()
    );
}

#[tokio::test]
async fn status_updates_reach_pg_stat_replication() {
    let c = Cluster::builder(&pg())
        .setting("wal_sender_timeout", "2s")
        .start();
    let mut conn = connect_ok(&repl(
        &c,
        TRUST_USER,
        "sslmode=disable application_name=walrus_status",
    ))
    .await;
    let id = conn.identify_system().await.unwrap();
    let mut stream = conn
        .start_physical(None, id.xlogpos, id.timeline)
        .await
        .unwrap();
    // Idle: within half of wal_sender_timeout the server asks for a reply.
    let wal_end = loop {
        match within(stream.next()).await.unwrap().unwrap() {
            ReplicationMessage::Keepalive {
                reply_requested: true,
                wal_end,
                ..
            } => break wal_end,
            ReplicationMessage::Keepalive { .. } | ReplicationMessage::XLogData { .. } => {}
            other => panic!("{other:?}"),
        }
    };
    assert!(wal_end >= id.xlogpos);
    let stat = |c: &Cluster| {
        c.psql("SELECT coalesce(write_lsn::text, 'NULL') || ' ' || coalesce(flush_lsn::text, 'NULL') || ' ' || coalesce(replay_lsn::text, 'NULL') FROM pg_stat_replication WHERE application_name = 'walrus_status'")
    };
    // flush = 0 means "not reported": it must arrive as 0, not as the write position.
    stream
        .send_status(id.xlogpos, Lsn::INVALID, Lsn::INVALID, false, now())
        .await
        .unwrap();
    let expect = format!("{} NULL NULL", id.xlogpos);
    assert!(
        wait_until(Duration::from_secs(10), || stat(&c) == expect),
        "{} != {expect}",
        stat(&c)
    );
    stream
        .send_status(id.xlogpos, id.xlogpos, Lsn::INVALID, true, now())
        .await
        .unwrap();
    let expect = format!("{0} {0} NULL", id.xlogpos);
    assert!(
        wait_until(Duration::from_secs(10), || stat(&c) == expect),
        "{} != {expect}",
        stat(&c)
    );
    // reply_requested makes the server answer with a keepalive.
    let answered = loop {
        if let Some(ReplicationMessage::Keepalive { .. }) = within(stream.next()).await.unwrap() {
            break true;
        }
    };
    assert!(answered);
    let mut conn = within(stream.finish()).await.unwrap();
    conn.identify_system().await.unwrap();
}

#[tokio::test]
async fn streaming_through_a_slot() {
    let c = cluster();
    let mut conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=disable")).await;
    conn.create_physical_slot("archiver", false, true)
        .await
        .unwrap();
    let restart: Lsn = c
        .psql("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'archiver'")
        .parse()
        .unwrap();
    let seg = conn.wal_segment_size().await.unwrap();
    let mut stream = conn
        .start_physical(
            Some("archiver"),
            restart.segment_start(seg),
            TimeLineId::ONE,
        )
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || c.psql(
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'archiver'"
    ) == "t"));
    c.psql("SELECT pg_switch_wal()");
    let first = within(stream.next()).await.unwrap();
    assert!(
        matches!(
            first,
            Some(ReplicationMessage::XLogData { .. }) | Some(ReplicationMessage::Keepalive { .. })
        ),
        "{first:?}"
    );
    let mut conn = within(stream.finish()).await.unwrap();
    // A slot cannot be dropped while... it is ours again, and released: drop it.
    conn.drop_slot("archiver", true).await.unwrap();
}

#[tokio::test]
async fn errors_after_entering_copy_mode_are_typed_and_leave_the_connection_usable() {
    let c = cluster();
    let mut conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=disable")).await;
    let id = conn.identify_system().await.unwrap();
    let future = Lsn::new(id.xlogpos.as_u64() + (1 << 40));
    let mut stream = conn
        .start_physical(None, future, id.timeline)
        .await
        .unwrap();
    let e = within(stream.next()).await.unwrap_err();
    let server = e.server_error().unwrap_or_else(|| panic!("{e}"));
    assert!(
        server.message.contains("ahead of the WAL flush position"),
        "{e}"
    );
    assert!(matches!(e, Error::Server(_)));
    assert_eq!(within(stream.next()).await.unwrap(), None);
    let mut conn = stream.into_connection().unwrap();
    conn.identify_system().await.unwrap();

    // A slot that does not exist: refused before copy mode.
    let e = within(conn.start_physical(Some("missing"), id.xlogpos, id.timeline))
        .await
        .unwrap_err();
    assert_eq!(e.server_error().unwrap().code().code(), "42704", "{e}");
}

#[tokio::test]
async fn server_shutdown_ends_the_stream_with_a_transient_error() {
    let c = Arc::new(cluster());
    let mut conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=disable")).await;
    let id = conn.identify_system().await.unwrap();
    let mut stream = conn
        .start_physical(None, id.xlogpos, id.timeline)
        .await
        .unwrap();
    let stopper = {
        let c = Arc::clone(&c);
        tokio::task::spawn_blocking(move || c.stop())
    };
    // Acknowledge everything we get, so the walsender can finish its shutdown.
    let mut pos = id.xlogpos;
    let end = loop {
        match within(stream.next()).await {
            Ok(Some(ReplicationMessage::XLogData { end, .. })) => {
                pos = end;
                stream
                    .send_status(pos, pos, Lsn::INVALID, false, now())
                    .await
                    .ok();
            }
            Ok(Some(ReplicationMessage::Keepalive { wal_end, .. })) => {
                stream
                    .send_status(pos, pos, Lsn::INVALID, false, now())
                    .await
                    .ok();
                let _ = wal_end;
            }
            Ok(other) => break Ok(other),
            Err(e) => break Err(e),
        }
    };
    within(stopper).await.unwrap();
    match end {
        Err(e) => assert!(e.is_transient(), "{e}"),
        Ok(None) => {}
        Ok(other) => panic!("{other:?}"),
    }
}

/// Stops `primary`, starts a streaming standby from a copy of its data directory, and
/// writes on the primary until the standby has it.
fn standby_of(primary: &Cluster) -> Cluster {
    primary.psql("CREATE TABLE before_copy AS SELECT 1 AS v");
    primary.stop();
    let copy = primary.root_dir().join("standby-source");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(primary.data_dir())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(copy.join("standby.signal"), "").unwrap();
    let mut auto = std::fs::read_to_string(copy.join("postgresql.auto.conf")).unwrap_or_default();
    auto.push_str(&format!(
        "primary_conninfo = 'host=127.0.0.1 port={} user={TRUST_USER} sslmode=disable application_name=walrus_standby'\n",
        primary.port()
    ));
    std::fs::write(copy.join("postgresql.auto.conf"), auto).unwrap();
    give_to_server_user(&copy);
    primary.start();
    let standby = Cluster::builder(&pg()).from_data_dir(&copy).start();
    assert_eq!(standby.psql("SELECT pg_is_in_recovery()"), "t");
    primary.psql("CREATE TABLE after_copy AS SELECT 2 AS v");
    assert!(wait_until(Duration::from_secs(30), || standby
        .try_psql("SELECT v FROM after_copy")
        .as_deref()
        == Ok("2")));
    standby
}

fn history_file(c: &Cluster, name: &str) -> Vec<u8> {
    std::fs::read(c.pg_wal_dir().join(name)).unwrap()
}

#[tokio::test]
async fn promoted_standby_timeline_history_and_end_of_timeline() {
    let primary = cluster();
    let standby = standby_of(&primary);

    // target_session_attrs tells the two apart.
    let both = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user={TRUST_USER} dbname=replication replication=true sslmode=disable",
        primary.port(),
        standby.port()
    );
    assert_eq!(
        connect_ok(&format!("{both} target_session_attrs=standby"))
            .await
            .host()
            .port,
        standby.port()
    );
    assert_eq!(
        connect_ok(&format!("{both} target_session_attrs=primary"))
            .await
            .host()
            .port,
        primary.port()
    );
    assert_eq!(
        connect_ok(&format!("{both} target_session_attrs=prefer-standby"))
            .await
            .host()
            .port,
        standby.port()
    );
    assert_eq!(
        connect_ok(&format!("{both} target_session_attrs=read-write"))
            .await
            .host()
            .port,
        primary.port()
    );

    assert_eq!(standby.psql("SELECT pg_promote()"), "t");
    let tli2 = TimeLineId::new(2).unwrap();
    let mut conn = connect_ok(&repl(&standby, TRUST_USER, "sslmode=disable")).await;
    let id = conn.identify_system().await.unwrap();
    assert_eq!(id.timeline, tli2);

    // TIMELINE_HISTORY: the same bytes as the server's own history file.
    let history = conn.timeline_history(tli2).await.unwrap();
    assert_eq!(history.filename, "00000002.history");
    assert_eq!(
        &history.content[..],
        history_file(&standby, "00000002.history").as_slice()
    );
    let parsed = TimelineHistory::parse(tli2, &history.content).unwrap();
    let switchpoint = parsed.entries()[0].switch_point;
    assert!(switchpoint.is_valid());

    // Streaming timeline 1 on the promoted server stops at the switch point and names
    // the next timeline.
    let seg: WalSegSize = conn.wal_segment_size().await.unwrap();
    let start = switchpoint.segment_start(seg);
    let mut stream = within(conn.start_physical(None, start, TimeLineId::ONE))
        .await
        .unwrap();
    let mut pos = start;
    let eot = loop {
        match within(stream.next()).await.unwrap() {
            Some(ReplicationMessage::XLogData { start, end, .. }) => {
                assert_eq!(start, pos);
                pos = end;
            }
            Some(ReplicationMessage::Keepalive { .. }) => {}
            Some(ReplicationMessage::EndOfTimeline {
                next_tli,
                next_start,
            }) => break (next_tli, next_start),
            None => panic!("stream ended without end-of-timeline"),
        }
    };
    assert_eq!(eot, (tli2, switchpoint));
    assert_eq!(
        pos, switchpoint,
        "timeline 1 streams exactly up to the switch point"
    );
    assert_eq!(within(stream.next()).await.unwrap(), None);

    // The connection is usable again: continue on timeline 2 from the segment start.
    let conn = stream.into_connection().unwrap();
    let mut stream = within(conn.start_physical(None, start, tli2))
        .await
        .unwrap();
    match within(stream.next()).await.unwrap() {
        Some(ReplicationMessage::XLogData { start: s, .. }) => assert_eq!(s, start),
        other => panic!("{other:?}"),
    }
    let mut conn = within(stream.finish()).await.unwrap();

    // Asking for timeline 1 exactly at its end: no copy at all, just the answer.
    let _ = conn.identify_system().await.unwrap();
    let mut stream = within(conn.start_physical(None, switchpoint, TimeLineId::ONE))
        .await
        .unwrap();
    assert_eq!(
        within(stream.next()).await.unwrap(),
        Some(ReplicationMessage::EndOfTimeline {
            next_tli: tli2,
            next_start: switchpoint
        })
    );
    assert_eq!(within(stream.next()).await.unwrap(), None);
    let mut conn: Connection = stream.into_connection().unwrap();
    assert_eq!(conn.identify_system().await.unwrap().timeline, tli2);
}
