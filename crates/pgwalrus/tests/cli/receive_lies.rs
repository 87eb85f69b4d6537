//! `pgwalrus receive` against a server that lies or is broken: a scripted fake server
//! ([`pgwalrus_testkit::fake_server`]) streams real WAL (pgwalrus-wal's test writer: page
//! headers, records, CRCs) and then lies. Each lie stops the run with its documented exit
//! code and a message naming what and where; what was archived before the lie is byte for
//! byte what the server sent, and nothing of the lie reaches the archive. A message
//! claiming gigabytes is refused from its header, with the process's peak memory measured.

use std::path::Path;

use pgwalrus_testkit::fake_server::{
    FakeServer, Script, command_complete, copy_data, copy_done, error_response, header, message,
    ready_for_query, xlog_data,
};
use pgwalrus_testkit::{TempDir, wait_until};
use pgwalrus_wal::testutil::WalWriter;
use pgwalrus_wal::{Lsn, PgMajor, WalSegSize};

use crate::receive_support::{PATIENCE, listing, snapshot};
use crate::support::{Background, Home};

/// The fake server's segment size (`SHOW wal_segment_size` answers `1MB`).
const SEG: u64 = 1 << 20;
/// Where the stream starts: segment 1 of timeline 1 (the server's `xlogpos` is in it).
const START: u64 = SEG;
/// Bytes per XLogData message (the walsender sends at most 128 kB).
const CHUNK: usize = 32 << 10;
/// The honest part ends here: all of segment 1, and three chunks into segment 2.
const HONEST_END: u64 = START + SEG + 3 * CHUNK as u64;

/// Valid WAL from [`START`] for `len` bytes, on timeline 1 up to [`HONEST_END`] and on
/// timeline `later_tli` after it.
fn wal(len: u64, later_tli: u32) -> Vec<u8> {
    let seg = WalSegSize::new(SEG as u32).unwrap();
    let mut w = WalWriter::new(PgMajor::V16, seg, Lsn(START));
    while w.pos().0 < HONEST_END {
        w.noop(3000);
    }
    w.tli = later_tli;
    while w.pos().0 < START + len {
        w.noop(3000);
    }
    w.out.truncate(len as usize);
    w.out
}

/// XLogData messages carrying `wal[from - START .. to - START]`, [`CHUNK`] bytes each.
fn chunks(wal: &[u8], from: u64, to: u64) -> Vec<Vec<u8>> {
    let bytes = &wal[(from - START) as usize..(to - START) as usize];
    bytes
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| {
            let at = from + (i * CHUNK) as u64;
            xlog_data(at, to, c)
        })
        .collect()
}

/// A server on timeline 1 (its flush position in segment 1) that streams the honest part, then `lie`.
fn honest_then(wal: &[u8], lie: Vec<Vec<u8>>) -> Script {
    let mut stream = chunks(wal, START, HONEST_END);
    stream.extend(lie);
    Script::new(1, START).stream(stream)
}

/// One `pgwalrus receive --no-loop` against `server` into a fresh archive.
struct Run {
    _home: Home,
    dir: TempDir,
    receiver: Background,
}

fn receive(server: &FakeServer, extra: &[&str]) -> Run {
    let home = Home::new();
    let dir = TempDir::new("lies");
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    let conninfo = server.conninfo();
    let mut args = vec![
        "receive",
        "-d",
        &conninfo,
        "-D",
        archive.to_str().unwrap(),
        "--no-loop",
    ];
    args.extend(extra);
    let receiver = Background::spawn(&home, &args, &[], &dir.path().join("stderr.log"));
    Run {
        _home: home,
        dir,
        receiver,
    }
}

impl Run {
    fn archive(&self) -> std::path::PathBuf {
        self.dir.path().join("archive")
    }

    /// Waits for exit `code`; returns stderr.
    #[track_caller]
    fn expect(&mut self, code: i32) -> String {
        self.receiver.expect_exit(code, PATIENCE);
        self.receiver.stderr()
    }
}

/// The archive holds segment 1 complete and segment 2 as a `.partial` with exactly the
/// honest bytes, zeros after them: nothing of the lie was written.
#[track_caller]
fn assert_only_honest_wal(archive: &Path, wal: &[u8]) {
    let files = snapshot(archive);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "000000010000000000000001",
            "000000010000000000000002.partial"
        ],
        "{}",
        listing(&files)
    );
    let complete = &files["000000010000000000000001"];
    assert!(
        complete[..] == wal[..SEG as usize],
        "the complete segment is what the server sent"
    );
    let partial = &files["000000010000000000000002.partial"];
    assert_eq!(partial.len() as u64, SEG);
    let honest = (HONEST_END - START - SEG) as usize;
    assert!(
        partial[..honest] == wal[SEG as usize..(SEG as usize + honest)],
        "the .partial holds the honest WAL"
    );
    assert!(
        partial[honest..].iter().all(|&b| b == 0),
        "nothing of the lie reached the .partial"
    );
}

#[test]
fn wal_that_skips_ahead_is_refused_naming_both_positions() {
    let wal = wal(SEG + 8 * CHUNK as u64, 1);
    // The next chunk should start at HONEST_END; it starts a page later.
    let lie = chunks(&wal, HONEST_END + 8192, HONEST_END + 8192 + CHUNK as u64);
    let server = FakeServer::start(vec![honest_then(&wal, lie)]);
    let mut run = receive(&server, &[]);
    let err = run.expect(1);
    assert!(
        err.contains("server 127.0.0.1:")
            && err.contains("sent WAL from 0/21A000 to 0/222000, but the stream is at 0/218000")
            && err.contains("8192 bytes were skipped"),
        "{err}"
    );
    assert_only_honest_wal(&run.archive(), &wal);
}

#[test]
fn wal_that_overlaps_what_was_received_is_refused_naming_both_positions() {
    let wal = wal(SEG + 8 * CHUNK as u64, 1);
    // The same bytes again, from half a page before the end of what was sent.
    let lie = chunks(&wal, HONEST_END - 4096, HONEST_END + 4096);
    let server = FakeServer::start(vec![honest_then(&wal, lie)]);
    let mut run = receive(&server, &["--no-verify"]);
    let err = run.expect(1);
    assert!(
        err.contains("sent WAL from 0/217000 to 0/219000, but the stream is at 0/218000")
            && err.contains("goes back 4096 bytes"),
        "{err}"
    );
    assert_only_honest_wal(&run.archive(), &wal);
}

#[test]
fn wal_that_goes_back_to_an_earlier_segment_is_refused_naming_both_positions() {
    let wal = wal(SEG + 8 * CHUNK as u64, 1);
    // The stream's first chunk again, after a segment and more was received.
    let lie = chunks(&wal, START, START + CHUNK as u64);
    let server = FakeServer::start(vec![honest_then(&wal, lie)]);
    let mut run = receive(&server, &[]);
    let err = run.expect(1);
    let back = HONEST_END - START;
    assert!(
        err.contains("sent WAL from 0/100000 to 0/108000, but the stream is at 0/218000")
            && err.contains(&format!("goes back {back} bytes")),
        "{err}"
    );
    assert_only_honest_wal(&run.archive(), &wal);
}

#[test]
fn a_first_chunk_not_where_streaming_was_asked_to_start_is_refused() {
    let wal = wal(SEG + 8 * CHUNK as u64, 1);
    // START_REPLICATION asked for 0/100000; the first chunk starts a page later.
    let lie = chunks(&wal, START + 8192, START + 8192 + CHUNK as u64);
    let server = FakeServer::start(vec![Script::new(1, START).stream(lie)]);
    let mut run = receive(&server, &[]);
    let err = run.expect(1);
    assert!(
        err.contains("sent WAL from 0/102000 to 0/10A000, but the stream is at 0/100000")
            && err.contains("8192 bytes were skipped"),
        "{err}"
    );
    assert!(
        server
            .queries()
            .iter()
            .any(|q| q.starts_with("START_REPLICATION") && q.contains("0/100000")),
        "{:?}",
        server.queries()
    );
    let files = snapshot(&run.archive());
    assert!(
        files.values().all(|bytes| bytes.iter().all(|&b| b == 0)),
        "no WAL was written: {}",
        listing(&files)
    );
}

#[test]
fn a_timeline_jump_without_the_end_of_timeline_result_stops_as_corrupt_wal() {
    // Pages of timeline 2 in the stream of timeline 1, without the server ending timeline 1.
    let wal = wal(SEG + 8 * CHUNK as u64, 2);
    let lie = chunks(&wal, HONEST_END, HONEST_END + 2 * CHUNK as u64);
    let server = FakeServer::start(vec![honest_then(&wal, lie)]);
    let mut run = receive(&server, &[]);
    let err = run.expect(6);
    assert!(
        err.contains("sent WAL that fails verification at 0/21A000")
            && err.contains("timeline id 2 in page header is newer than timeline 1"),
        "{err}"
    );
    assert_only_honest_wal(&run.archive(), &wal);
}

/// Peak resident memory of `pid` so far (`VmHWM`), in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
#[allow(clippy::print_stderr, reason = "the measured peak, for the record")]
fn a_message_claiming_gigabytes_is_refused_from_its_header_with_memory_bounded() {
    let wal = wal(SEG + 8 * CHUNK as u64, 1);
    for claim in [1u32 << 30, u32::MAX] {
        let server = FakeServer::start(vec![honest_then(&wal, vec![header(b'd', claim)])]);
        let mut run = receive(&server, &[]);
        let err = run.expect(1);
        assert!(
            err.contains(&format!(
                "message of type 'd' declares length {claim}, over the limit of"
            )),
            "{err}"
        );
        assert_only_honest_wal(&run.archive(), &wal);
    }

    // In answer to IDENTIFY_SYSTEM: a whole message claiming 2 GiB, and a small DataRow
    // whose one value claims 2 GiB - 1.
    let mut small_row = 1i16.to_be_bytes().to_vec();
    small_row.extend(i32::MAX.to_be_bytes());
    small_row.extend(b"7000000000000000001");
    for (answer, expected) in [
        (
            header(b'D', 1 << 31),
            "message of type 'D' declares length 2147483648, over the limit of".to_owned(),
        ),
        (
            message(b'D', &small_row),
            format!(
                "DataRow.value: message ends early (needs {} bytes, 19 left)",
                i32::MAX
            ),
        ),
    ] {
        let server = FakeServer::start(vec![
            Script::new(1, START).answer("IDENTIFY_SYSTEM", answer),
        ]);
        let mut run = receive(&server, &[]);
        let err = run.expect(1);
        assert!(err.contains(&expected), "{err}");
    }

    // Without --no-loop the receiver waits to reconnect after the lie: its peak memory
    // (which covers the whole session that met the lie) is read while it waits.
    let server = FakeServer::start(vec![honest_then(&wal, vec![header(b'd', u32::MAX)])]);
    let home = Home::new();
    let dir = TempDir::new("lies-memory");
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    let conninfo = server.conninfo();
    let args = ["receive", "-d", &conninfo, "-D", archive.to_str().unwrap()];
    let mut receiver = Background::spawn(&home, &args, &[], &dir.path().join("stderr.log"));
    assert!(
        wait_until(PATIENCE, || receiver.stderr().contains("retrying in")),
        "{}",
        receiver.stderr()
    );
    let peak = peak_kib(receiver.pid()).expect("VmHWM of the receiver");
    assert!(receiver.is_running(), "{}", receiver.stderr());
    eprintln!("peak resident memory of pgwalrus receive after a 4 GiB claim: {peak} KiB");
    assert!(
        peak < 32 << 10,
        "peak memory {peak} KiB is over 32 MiB\n{}",
        receiver.stderr()
    );
    receiver.signal("TERM");
    receiver.expect_exit(0, PATIENCE);
    assert_only_honest_wal(&archive, &wal);
}

#[test]
fn copy_data_outside_a_copy_is_a_protocol_error() {
    // In answer to IDENTIFY_SYSTEM, before any copy began.
    let server = FakeServer::start(vec![Script::new(1, START).answer(
        "IDENTIFY_SYSTEM",
        [copy_data(b"w-not-in-a-copy"), ready_for_query()].concat(),
    )]);
    let mut run = receive(&server, &[]);
    let err = run.expect(1);
    assert!(
        err.contains("unexpected CopyData") && err.contains("127.0.0.1:"),
        "{err}"
    );
    assert_eq!(snapshot(&run.archive()).len(), 0, "nothing was archived");

    // After the server ended the copy with CopyDone.
    let wal = wal(SEG + 8 * CHUNK as u64, 1);
    let mut lie = vec![copy_done()];
    lie.extend(chunks(&wal, HONEST_END, HONEST_END + CHUNK as u64));
    let server = FakeServer::start(vec![honest_then(&wal, lie)]);
    let mut run = receive(&server, &[]);
    let err = run.expect(1);
    assert!(err.contains("unexpected CopyData"), "{err}");
    assert_only_honest_wal(&run.archive(), &wal);
}

#[test]
fn an_error_in_the_middle_of_a_copy_is_reported_with_the_servers_words() {
    let wal = wal(SEG + 8 * CHUNK as u64, 1);
    let lie = vec![error_response(
        "FATAL",
        "XX000",
        "could not read from WAL file: the fake server lies",
    )];
    let server = FakeServer::start(vec![honest_then(&wal, lie).close_after_stream()]);
    let mut run = receive(&server, &[]);
    let err = run.expect(1);
    assert!(
        err.contains("could not read from WAL file: the fake server lies"),
        "{err}"
    );
    assert_only_honest_wal(&run.archive(), &wal);

    // The same with the SQLSTATE of removed WAL: the documented exit 4, naming the position.
    let lie = vec![
        error_response(
            "ERROR",
            "58P01",
            "requested WAL segment 000000010000000000000002 has already been removed",
        ),
        ready_for_query(),
    ];
    let server = FakeServer::start(vec![honest_then(&wal, lie)]);
    let mut run = receive(&server, &[]);
    let err = run.expect(4);
    assert!(
        err.contains(
            "the server no longer has the WAL the archive needs next (timeline 1, from 0/218000)"
        ),
        "{err}"
    );
    assert_only_honest_wal(&run.archive(), &wal);
}

#[test]
fn a_copy_that_ends_without_naming_the_next_timeline_says_where_it_ended() {
    let wal = wal(SEG + 8 * CHUNK as u64, 1);
    // CopyDone, then no next-timeline result set: a plain CommandComplete.
    let lie = vec![copy_done()];
    let lie = [
        lie,
        vec![command_complete("START_STREAMING"), ready_for_query()],
    ]
    .concat();
    let server = FakeServer::start(vec![honest_then(&wal, lie)]);
    let mut run = receive(&server, &[]);
    let err = run.expect(1);
    assert!(
        err.contains("ended the replication stream of timeline 1 at 0/218000"),
        "{err}"
    );
    assert_only_honest_wal(&run.archive(), &wal);
}
