//! The crate's examples, run as a user would run them: each streams a few segments from a
//! real server into an empty archive over connections it makes itself and stops at an end
//! position; the segments must be byte-identical to the server's.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use pgwalrus_testkit::{TRUST_USER, TempDir, wait_until};
use pgwalrus_wal::Lsn;

use crate::support::{
    SEG, assert_identical_to_pg_wal, current_lsn, load_and_switch, small_cluster,
};

/// An example's binary, built beside this test by `cargo test` (which builds examples).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples; with a test filter run `cargo build -p pgwalrus-receiver --examples` first",
        path.display()
    );
    path
}

fn streams_three_segments(name: &str) {
    let c = small_cluster().start();
    let archive = TempDir::new(&format!("example-{name}"));
    let start = current_lsn(&c).segment_start(pgwalrus_wal::WalSegSize::MIN);
    let end = Lsn::new(start.as_u64() + 3 * SEG);
    let mut child = Command::new(example(name))
        .args(["127.0.0.1", &c.port().to_string(), TRUST_USER])
        .arg(archive.path())
        .arg(end.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    // Streaming first (from the segment computed above), then WAL until the example has
    // what it waits for (at most about 60 s).
    let sql = format!("SELECT count(*) FROM pg_stat_replication WHERE application_name = '{name}'");
    assert!(
        wait_until(Duration::from_secs(30), || c.psql(&sql) == "1"),
        "{name} did not start streaming"
    );
    let mut tries = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the example") {
            break status;
        }
        tries += 1;
        if tries > 600 {
            let _ = child.kill();
            panic!("{name} did not reach {end} within about 60 s");
        }
        load_and_switch(&c);
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("the example's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success(),
        "{name} failed ({status}): {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("EndPosition"), "{stdout}");
    let compared = assert_identical_to_pg_wal(&c, archive.path());
    assert!(
        compared >= 3,
        "only {compared} segment(s) archived: {stdout}"
    );
}

#[test]
fn example_with_its_own_tcp_streams_archives_byte_identical_segments() {
    streams_three_segments("own_stream");
}

#[test]
fn example_that_authenticates_itself_hands_over_and_archives_byte_identical_segments() {
    streams_three_segments("authenticated");
}
