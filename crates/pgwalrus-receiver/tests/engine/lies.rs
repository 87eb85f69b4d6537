//! The engine against a server that lies (`pgwalrus_testkit::fake_server` over
//! [`FromStreams`]): each lie stops it with its [`StopKind`] under `no_loop`; in a loop, a
//! session that met a lie is given up and the next, honest one continues from what is
//! durable, leaving the archive byte for byte what the server meant to send. (The CLI's
//! tests check the messages and exit codes of every lie: `crates/pgwalrus/tests/cli/receive_lies.rs`.)

use std::time::Duration;

use pgwalrus_client::config::{Config, Host, HostSpec};
use pgwalrus_receiver::{
    ConnectionSource, FromStreams, ReceiveSettings, Shutdown, StopKind, StopReason, Stopped,
};
use pgwalrus_testkit::fake_server::{
    FakeServer, Script, error_response, ready_for_query, xlog_data,
};
use pgwalrus_testkit::{TempDir, wait_until};
use pgwalrus_wal::testutil::WalWriter;
use pgwalrus_wal::{Lsn, PgMajor, WalSegSize};

use crate::support::SEG;

/// The stream starts at segment 1 (the fake server's position is in it).
const START: u64 = SEG;
const CHUNK: usize = 32 << 10;
/// Where the lie comes: a segment and three chunks into the stream.
const LIE_AT: u64 = START + SEG + 3 * CHUNK as u64;

/// Valid WAL from [`START`], `len` bytes, on timeline 1 up to [`LIE_AT`] and `later_tli`
/// after it.
fn wal(len: u64, later_tli: u32) -> Vec<u8> {
    let mut w = WalWriter::new(
        PgMajor::V16,
        WalSegSize::new(SEG as u32).unwrap(),
        Lsn(START),
    );
    while w.pos().0 < LIE_AT {
        w.noop(3000);
    }
    w.tli = later_tli;
    while w.pos().0 < START + len {
        w.noop(3000);
    }
    w.out.truncate(len as usize);
    w.out
}

fn chunks(wal: &[u8], from: u64, to: u64) -> Vec<Vec<u8>> {
    wal[(from - START) as usize..(to - START) as usize]
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| xlog_data(from + (i * CHUNK) as u64, to, c))
        .collect()
}

fn honest_then(wal: &[u8], lie: Vec<Vec<u8>>) -> Script {
    let mut stream = chunks(wal, START, LIE_AT);
    stream.extend(lie);
    Script::new(1, START).stream(stream)
}

/// Connections to `server`, made by the caller ([`FromStreams`]): trust, no TLS.
fn source(server: &FakeServer) -> impl ConnectionSource + use<> {
    let config =
        Config::from_conninfo("user=walrus replication=true dbname=replication sslmode=disable")
            .expect("conninfo");
    let address = server.addr();
    let host = HostSpec {
        host: Host::Tcp("127.0.0.1".to_owned()),
        hostaddr: None,
        port: address.port(),
    };
    FromStreams::new(config, host, move || {
        tokio::net::TcpStream::connect(address)
    })
}

/// Runs the engine against `script` with `no_loop` until it stops.
fn stop_reason(script: Script) -> StopReason {
    let server = FakeServer::start(vec![script]);
    let archive = TempDir::new("engine-lies");
    let mut settings = ReceiveSettings::new(archive.path());
    settings.no_loop = true;
    let engine = pgwalrus_receiver::spawn("lies", settings, source(&server), Shutdown::never())
        .expect("spawn the engine");
    engine.join().expect_err("a lie stops the engine")
}

#[test]
fn each_lie_stops_the_engine_with_its_kind_under_no_loop() {
    let wal = wal(SEG + 8 * CHUNK as u64, 1);
    let goes_back = honest_then(&wal, chunks(&wal, START, START + CHUNK as u64));
    let reason = stop_reason(goes_back);
    assert_eq!(reason.kind, StopKind::Connection, "{reason}");
    assert!(
        reason
            .to_string()
            .contains("sent WAL from 0/100000 to 0/108000, but the stream is at 0/218000"),
        "{reason}"
    );

    let removed = honest_then(
        &wal,
        vec![
            error_response(
                "ERROR",
                "58P01",
                "requested WAL segment 000000010000000000000002 has already been removed",
            ),
            ready_for_query(),
        ],
    );
    let reason = stop_reason(removed);
    assert_eq!(reason.kind, StopKind::WalGone, "{reason}");
    assert!(
        reason.to_string().contains("(timeline 1, from 0/218000)"),
        "{reason}"
    );

    let later_tli = wal_with_tli(2);
    let jump = honest_then(
        &later_tli,
        chunks(&later_tli, LIE_AT, LIE_AT + 2 * CHUNK as u64),
    );
    let reason = stop_reason(jump);
    assert_eq!(reason.kind, StopKind::CorruptWal, "{reason}");
    assert!(
        reason
            .error
            .chain()
            .contains("timeline id 2 in page header is newer than timeline 1"),
        "{}",
        reason.error.chain()
    );
}

fn wal_with_tli(later_tli: u32) -> Vec<u8> {
    wal(SEG + 8 * CHUNK as u64, later_tli)
}

#[test]
fn after_a_lie_the_next_honest_session_continues_from_what_is_durable() {
    let wal = wal(2 * SEG + 8 * CHUNK as u64, 1);
    // Session 1 lies (a chunk skipped); session 2 streams honestly from where the archive
    // resumes, the start of the segment the lie interrupted.
    let lie = honest_then(
        &wal,
        chunks(&wal, LIE_AT + 8192, LIE_AT + 8192 + CHUNK as u64),
    );
    let resume = START + SEG;
    let end = START + 2 * SEG + 8 * CHUNK as u64;
    let honest = Script::new(1, START).stream(chunks(&wal, resume, end));
    let server = FakeServer::start(vec![lie, honest]);
    let archive = TempDir::new("engine-lies-loop");
    let mut settings = ReceiveSettings::new(archive.path());
    settings.backoff_initial = Duration::from_millis(100);
    let (stop, shutdown) = Shutdown::new();
    let engine = pgwalrus_receiver::spawn("lies-loop", settings, source(&server), shutdown)
        .expect("spawn the engine");
    let status = engine.status();
    assert!(
        wait_until(Duration::from_secs(30), || status.borrow().flushed_lsn
            >= Lsn(end)),
        "{:?}",
        status.borrow()
    );
    assert_eq!(server.accepted(), 2);
    assert!(
        status.borrow().reconnects >= 1
            && server
                .queries()
                .iter()
                .any(|q| q.contains("START_REPLICATION") && q.contains("0/200000")),
        "{:?}",
        server.queries()
    );
    stop.trigger();
    assert!(matches!(engine.join(), Ok(Stopped::Shutdown { .. })));
    for (name, from) in [
        ("000000010000000000000001", START),
        ("000000010000000000000002", START + SEG),
    ] {
        let ours = std::fs::read(archive.path().join(name)).expect("a complete segment");
        let sent = &wal[(from - START) as usize..(from - START + SEG) as usize];
        assert!(ours == sent, "{name} is not what the server sent");
    }
}
