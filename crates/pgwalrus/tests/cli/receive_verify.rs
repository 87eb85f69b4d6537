//! Streaming verification: a server that sends WAL with a damaged record (a byte flipped in a
//! completed segment of its own `pg_wal`, behind its last checkpoint so it never reads it
//! itself) makes `receive` stop with exit 6 naming the record — and the segment holding it
//! is never completed in the archive. `--no-verify` archives the same bytes as they are.
//! The archive is seeded with the intact segment before it, so streaming resumes right at
//! the damaged one.

use crate::receive_support::{Fixture, segment_name};
use crate::support::pgwalrus;
use crate::verify::{lsn_field, number_field};

/// Prepares a fixture whose `pg_wal` holds a completed segment with one flipped byte inside
/// a record, retained by slot `s` from before it. Returns (fixture, segment name, record LSN,
/// record length).
fn damaged_server() -> (Fixture, String, u64, u64) {
    let f = Fixture::small();
    f.c.psql("SELECT pg_create_physical_replication_slot('s', true)");
    f.load(1500);
    f.switch();
    f.c.psql("CHECKPOINT");
    // A completed segment in the middle of what the slot retains.
    let restart = crate::receive_support::Lsn::parse(
        &f.c.psql("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 's'"),
    );
    let segno = restart.0 / f.seg_size + 1;
    let name = segment_name(1, segno, f.seg_size);
    // The archive ends with the intact segment before it, so streaming resumes right at the
    // damaged one on every major (before 15 an empty archive would start at the server's
    // current position: there is no READ_REPLICATION_SLOT).
    let previous = segment_name(1, segno - 1, f.seg_size);
    std::fs::copy(f.c.pg_wal_dir().join(&previous), f.archive.join(&previous))
        .expect("seed the archive");
    // A record wholly inside that segment, from `dump --json` of the server's own file.
    let path = f.c.pg_wal_dir().join(&name);
    let run = pgwalrus(&f.home, &["dump", "--json", path.to_str().unwrap()], &[]);
    run.expect_code(0);
    let (lsn, tot_len) = run
        .stdout
        .lines()
        .map(|l| (lsn_field(l, "\"lsn\":\""), number_field(l, "\"tot_len\":")))
        .find(|(lsn, len)| *len > 200 && lsn % f.seg_size > 64 * 1024 && lsn % 8192 + len < 8192)
        .expect("a record inside one page");
    f.c.stop();
    let mut bytes = std::fs::read(&path).unwrap();
    let offset = (lsn % f.seg_size + tot_len / 2) as usize;
    bytes[offset] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    f.c.start();
    (f, name, lsn, tot_len)
}

#[test]
fn receive_stops_with_exit_6_at_a_damaged_record_and_never_completes_its_segment() {
    let (f, name, lsn, tot_len) = damaged_server();
    let mut receiver = f.receive(&["-S", "s", "-n"]);
    let code = receiver.wait(std::time::Duration::from_secs(60));
    let stderr = receiver.stderr();
    assert_eq!(code, 6, "{stderr}");
    let at = format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF);
    assert!(
        stderr.contains("fails verification") && stderr.contains(&at),
        "record {at}:\n{stderr}"
    );
    assert!(
        stderr.contains(&f.c.system_identifier().to_string()),
        "{stderr}"
    );
    assert!(
        !f.archive.join(&name).exists(),
        "the damaged segment must not be completed"
    );
    // Any `.partial` of it holds server bytes (or holes) before the damaged record and
    // none of the record itself: the chunk completing it was refused.
    if let Ok(bytes) = std::fs::read(f.archive.join(format!("{name}.partial"))) {
        let server = f.server_segment(&name).expect("server copy");
        let start = (lsn % f.seg_size) as usize;
        let end = start + tot_len as usize;
        assert!(
            (0..start).all(|i| bytes.get(i).is_none_or(|&b| b == 0 || b == server[i])),
            "{name}.partial holds bytes the server did not send"
        );
        assert!(
            bytes
                .get(start..end)
                .is_none_or(|r| r.iter().all(|&b| b == 0)),
            "{name}.partial holds the damaged record"
        );
    }
}

#[test]
fn receive_with_no_verify_archives_the_bytes_as_sent() {
    let (f, name, _, _) = damaged_server();
    let end = f.c.psql("SELECT pg_current_wal_lsn()");
    let run = pgwalrus(
        &f.home,
        &[
            "receive",
            "-D",
            f.archive.to_str().unwrap(),
            "-d",
            &f.conninfo,
            "-S",
            "s",
            "-n",
            "--no-verify",
            "-E",
            &end,
        ],
        &[],
    );
    run.expect_code(0);
    let archived = std::fs::read(f.archive.join(&name)).expect("segment completed");
    assert_eq!(
        Some(archived),
        f.server_segment(&name),
        "bytes as the server sent them"
    );
    // `verify` finds what streaming did not check.
    let check = pgwalrus(&f.home, &["verify", f.archive.to_str().unwrap()], &[]);
    check.expect_code(1);
}
