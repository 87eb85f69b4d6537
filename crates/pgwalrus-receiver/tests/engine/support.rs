//! What the engine tests share: clusters with 1 MiB segments, load, and the comparison of
//! an archive with the server's `pg_wal`.

use std::path::Path;
use std::process::{Command, Stdio};

use pgwalrus_testkit::{Cluster, ClusterBuilder, pg_bin};
use pgwalrus_wal::Lsn;

/// One WAL segment of [`small_cluster`].
pub(crate) const SEG: u64 = 1024 * 1024;

/// A cluster with 1 MiB WAL segments that keeps its WAL around for the comparison.
pub(crate) fn small_cluster() -> ClusterBuilder {
    Cluster::builder(&pg_bin())
        .initdb_arg("--wal-segsize=1")
        .setting("wal_keep_size", "256MB")
}

/// The server's current WAL write position.
pub(crate) fn current_lsn(c: &Cluster) -> Lsn {
    c.current_wal_lsn().parse().expect("an LSN")
}

/// A little WAL and a segment switch.
pub(crate) fn load_and_switch(c: &Cluster) {
    c.psql(
        "CREATE TABLE IF NOT EXISTS load (i int, t text);\n\
         INSERT INTO load SELECT g, repeat(md5(g::text), 15) FROM generate_series(1, 500) g;\n\
         SELECT pg_switch_wal();",
    );
}

/// Every complete segment file in `archive` equals the server's copy in `pg_wal`; returns
/// how many were compared.
#[track_caller]
pub(crate) fn assert_identical_to_pg_wal(c: &Cluster, archive: &Path) -> usize {
    let mut compared = 0;
    let mut names: Vec<String> = std::fs::read_dir(archive)
        .expect("list the archive")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names.iter().filter(|n| n.len() == 24) {
        let ours = std::fs::read(archive.join(name)).expect("read an archived segment");
        assert_eq!(ours.len() as u64, SEG, "{name} is not one segment long");
        let theirs = std::fs::read(c.pg_wal_dir().join(name))
            .unwrap_or_else(|e| panic!("{name} is gone from pg_wal ({e}): {names:?}"));
        if let Some(at) = ours.iter().zip(&theirs).position(|(a, b)| a != b) {
            panic!("{name} differs from the server's copy at byte {at}");
        }
        compared += 1;
    }
    compared
}

/// Debian's `pgbench` against `c`, without standard input.
pub(crate) fn pgbench(c: &Cluster, args: &[&str]) -> Command {
    let mut cmd = c.pgbench(args);
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `pgbench` and panics with its stderr when it fails.
#[track_caller]
pub(crate) fn run_pgbench(c: &Cluster, args: &[&str]) {
    let out = pgbench(c, args).output().expect("run pgbench");
    assert!(
        out.status.success(),
        "pgbench {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
