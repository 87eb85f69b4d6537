//! Shared helpers: configuration without the process environment, clusters, timeouts.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pgwalrus_client::config::{Config, ConnParams, Environment};
use pgwalrus_client::{Connection, Error, connect};
use pgwalrus_testkit::{Cluster, PgBin, pg_bin};

/// An environment with no `PG*` variables and a home directory that does not exist, so
/// no `~/.pgpass` or `~/.postgresql/*` of the machine running the tests interferes.
pub(crate) struct TestEnv;

impl Environment for TestEnv {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }

    fn home_dir(&self) -> Option<PathBuf> {
        Some(PathBuf::from("/nonexistent/pgwalrus-test-home"))
    }

    fn os_user(&self) -> Option<String> {
        Some("pgwalrus-test".to_owned())
    }
}

/// Resolves a conninfo string against [`TestEnv`].
pub(crate) fn config(conninfo: &str) -> Config {
    let params =
        ConnParams::parse(conninfo).unwrap_or_else(|e| panic!("bad conninfo {conninfo:?}: {e}"));
    Config::resolve(&params, &TestEnv)
        .unwrap_or_else(|e| panic!("cannot resolve {conninfo:?}: {e}"))
}

/// A physical replication conninfo for `user` on `cluster`, plus `extra`.
pub(crate) fn repl(cluster: &Cluster, user: &str, extra: &str) -> String {
    format!("{} replication=true {extra}", cluster.conninfo(user))
}

/// The installation under test.
pub(crate) fn pg() -> PgBin {
    pg_bin()
}

/// A default cluster.
pub(crate) fn cluster() -> Cluster {
    Cluster::builder(&pg()).start()
}

/// Connects, panicking with the error on failure.
pub(crate) async fn connect_ok(conninfo: &str) -> Connection {
    match within(connect(&config(conninfo))).await {
        Ok(c) => c,
        Err(e) => panic!("connect({conninfo:?}) failed: {e}"),
    }
}

/// Connects, panicking if it works.
pub(crate) async fn connect_err(conninfo: &str) -> Error {
    match within(connect(&config(conninfo))).await {
        Ok(c) => panic!(
            "connect({conninfo:?}) unexpectedly succeeded (auth {:?}, tls {:?})",
            c.auth_method(),
            c.tls()
        ),
        Err(e) => e,
    }
}

/// Bounds a test step so a hang fails the test instead of the CI job.
pub(crate) async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test step timed out after 60 s")
}

/// Writes a password file with `mode`; returns its path.
pub(crate) fn passfile(dir: &Path, contents: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("pgpass-{mode:o}"));
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A TCP port on 127.0.0.1 nothing listens on (bound, then released).
pub(crate) fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The full error text, sources included.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    pgwalrus_client::error_chain(e).to_string()
}
