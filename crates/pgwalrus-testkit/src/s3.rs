//! A real S3 server for tests: `s3s-fs` (a Rust S3 server over a directory, which enforces
//! create-only writes) on 127.0.0.1, one per test, stopped by pid when dropped.
//!
//! The binary is `$PGWALRUS_S3S_FS`, else `.cache/s3s-fs/bin/s3s-fs` in the workspace, where
//! `scripts/test.sh` installs it (`cargo install s3s-fs --version 0.14.1 --features binary`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cluster::free_port;
use crate::tempdir::TempDir;
use crate::util::wait_until;

/// Environment variable naming the `s3s-fs` binary.
pub const S3S_FS_ENV: &str = "PGWALRUS_S3S_FS";

/// The access key of every test server.
pub const S3_ACCESS_KEY: &str = "walrus-test-ak";
/// The secret key of every test server.
pub const S3_SECRET_KEY: &str = "walrus-test-sk-1";

/// A running `s3s-fs` with one bucket.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    port: u16,
    bucket: String,
    dir: TempDir,
}

impl S3Server {
    /// Starts a server with an empty bucket named `bucket`.
    ///
    /// # Panics
    /// When the binary is missing (the message says how to install it) or the server does
    /// not start listening within 20 s.
    pub fn start(bucket: &str) -> S3Server {
        let binary = binary();
        assert!(
            binary.is_file(),
            "pgwalrus-testkit: no s3s-fs at {} (set {S3S_FS_ENV}, or run `cargo install s3s-fs --version 0.14.1 --features binary --locked --root .cache/s3s-fs`; scripts/test.sh does)",
            binary.display()
        );
        let dir = TempDir::new("s3");
        std::fs::create_dir_all(dir.path().join("data").join(bucket)).expect("create the bucket");
        let port = free_port();
        let child = Command::new(&binary)
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--access-key")
            .arg(S3_ACCESS_KEY)
            .arg("--secret-key")
            .arg(S3_SECRET_KEY)
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let server = S3Server {
            child,
            port,
            bucket: bucket.to_owned(),
            dir,
        };
        assert!(
            wait_until(Duration::from_secs(20), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "s3s-fs did not listen on 127.0.0.1:{port}"
        );
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `s3://BUCKET/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// The environment the AWS tools (and pgwalrus) read to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// The file behind object `key` of the bucket (s3s-fs stores objects as files).
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.dir.path().join("data").join(&self.bucket).join(key)
    }

    /// The bucket's directory.
    pub fn bucket_dir(&self) -> PathBuf {
        self.dir.path().join("data").join(&self.bucket)
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    match std::env::var_os(S3S_FS_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/s3s-fs/bin/s3s-fs"),
    }
}
