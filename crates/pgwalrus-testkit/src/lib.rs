//! Test harness for pgwalrus: throwaway, real PostgreSQL clusters.
//!
//! ```no_run
//! use pgwalrus_testkit::{Cluster, pg_bin, SCRAM_USER, PASSWORD};
//!
//! let pg = pg_bin(); // $PGWALRUS_PG_BINDIR, else Debian's PostgreSQL 15
//! let cluster = Cluster::builder(&pg).setting("wal_keep_size", "1GB").start();
//! assert_eq!(cluster.psql("SELECT 1"), "1");
//! let conninfo = format!("{} password={PASSWORD} sslmode=require", cluster.conninfo(SCRAM_USER));
//! # let _ = conninfo;
//! // Dropping `cluster` stops the server and deletes its directory.
//! ```
//!
//! * [`fake_server`] is not a cluster at all: a scripted replication server on
//!   127.0.0.1 that lies (WAL out of place, absurd message lengths, CopyData
//!   outside a copy), for tests of how pgwalrus refuses it.
//! * [`TcpFaultProxy`] sits between pgwalrus and a real server and, on demand, cuts the
//!   connection at a chosen byte, stalls it, trickles it, reads it slowly or lets the
//!   server vanish without a FIN ([`TcpFault`]); [`HttpFaultProxy`] does the same kind of
//!   thing to S3 requests.
//! * [`pg_bin`] picks the server installation under test (CI runs the suite
//!   once per major, setting [`BINDIR_ENV`]); [`debian_bin`] finds the
//!   PostgreSQL 15 client tools (`psql`, `pg_receivewal`, …).
//! * [`Cluster::builder`] starts a cluster from a cached initdb template
//!   (fast) or a fresh initdb, listening on 127.0.0.1 and a private unix
//!   socket directory, with TLS on and one role per authentication method
//!   (the `*_USER` constants, password [`PASSWORD`]).
//! * When the test process is root, server binaries run as the `postgres` OS
//!   user ([`server_command`]).
//!
//! Environment variables:
//!
//! * [`BINDIR_ENV`] (`PGWALRUS_PG_BINDIR`): server bindir under test, e.g. one
//!   printed by `scripts/install-pg-majors.sh`; default [`DEBIAN_BINDIR`].
//! * [`CLUSTERS_DIR_ENV`] (`PGWALRUS_TESTKIT_DIR`): where cluster directories
//!   go; default tmpfs `/dev/shm/pgwalrus-testkit-<euid>` (see [`clusters_dir`]).
//! * [`KEEP_ENV`] (`PGWALRUS_TESTKIT_KEEP=1`): keep the directory of a cluster
//!   dropped by a panicking test.
//!
//! Files a test creates for the server to read (a restored data directory, a
//! `restore_command` script) must be handed over with
//! [`give_to_server_user`] when running as root.
//!
//! Authentication per role (rows for both the `replication` pseudo-database
//! and `all`; host rows for 127.0.0.1/32 only):
//!
//! | role | TCP | unix socket | REPLICATION |
//! |---|---|---|---|
//! | [`SUPERUSER`] `postgres` | trust | trust | superuser |
//! | [`TRUST_USER`] | trust | trust | yes |
//! | [`NOREPL_USER`] | trust | trust | **no** |
//! | [`PASSWORD_USER`] | `password` (cleartext) | rejected | yes |
//! | [`MD5_USER`] | `md5` (md5-hashed password) | rejected | yes |
//! | [`SCRAM_USER`] | `scram-sha-256` | `scram-sha-256` | yes |
//! | [`TLSONLY_USER`] | `hostssl` scram, `hostnossl` reject | rejected | yes |
//! | [`CERT_USER`] | `hostssl` `cert` (CN = role) | rejected | yes |

mod cluster;
mod config;
pub mod fake_server;
mod httpfault;
mod pgbin;
mod psql;
mod s3;
mod tcpfault;
mod tempdir;
mod template;
mod tls;
mod util;

pub use cluster::{Cluster, ClusterBuilder, KEEP_ENV};
pub use httpfault::{FaultCounts, HttpFaultProxy};
pub use pgbin::{BINDIR_ENV, DEBIAN_BINDIR, PgBin, debian_bin, pg_bin};
pub use psql::run_psql;
pub use s3::{S3_ACCESS_KEY, S3_SECRET_KEY, S3S_FS_ENV, S3Server};
pub use tcpfault::{TcpFault, TcpFaultCounts, TcpFaultProxy};
pub use tempdir::TempDir;
pub use tls::TlsFiles;
pub use util::{
    CLUSTERS_DIR_ENV, SERVER_OS_USER, cache_dir, clusters_dir, give_to_server_user, is_root,
    process_alive, server_command, wait_until,
};

/// The password of every password-authenticated role.
pub const PASSWORD: &str = "walrus-test-pw-1";

/// The bootstrap superuser; trust over the socket and TCP.
pub const SUPERUSER: &str = "postgres";

/// `trust` over TCP and the socket; LOGIN REPLICATION.
pub const TRUST_USER: &str = "walrus_trust";

/// Cleartext `password` method over TCP; LOGIN REPLICATION.
pub const PASSWORD_USER: &str = "walrus_password";

/// `md5` method over TCP, password stored as an md5 hash; LOGIN REPLICATION.
pub const MD5_USER: &str = "walrus_md5";

/// `scram-sha-256` over TCP and the socket; LOGIN REPLICATION.
pub const SCRAM_USER: &str = "walrus_scram";

/// `cert` method over `hostssl` only (client certificate
/// [`TlsFiles::client_cert`] has this CN); LOGIN REPLICATION.
pub const CERT_USER: &str = "walrus_cert";

/// `scram-sha-256` over `hostssl` only; `hostnossl` is rejected; LOGIN REPLICATION.
pub const TLSONLY_USER: &str = "walrus_tlsonly";

/// `trust`, but a login role *without* the REPLICATION attribute.
pub const NOREPL_USER: &str = "walrus_norepl";

/// Every role the harness creates besides [`SUPERUSER`].
pub const ALL_TEST_USERS: [&str; 7] = [
    TRUST_USER,
    PASSWORD_USER,
    MD5_USER,
    SCRAM_USER,
    CERT_USER,
    TLSONLY_USER,
    NOREPL_USER,
];
