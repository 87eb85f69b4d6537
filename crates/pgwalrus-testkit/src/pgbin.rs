//! Locating PostgreSQL binaries: the server major under test and Debian's
//! PostgreSQL 15 client tools.
//!
//! The integration suite runs once per major; CI selects the major by setting
//! [`BINDIR_ENV`] to one of the directories printed by
//! `scripts/install-pg-majors.sh`. Without it the Debian build of 15 is used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::util::{run, scrub_pg_env};

/// Environment variable naming the server bindir to test against.
pub const BINDIR_ENV: &str = "PGWALRUS_PG_BINDIR";

/// Debian's PostgreSQL 15 bindir: the default server, and the home of the
/// client tools ([`debian_bin`]).
pub const DEBIAN_BINDIR: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL server installation: its bindir and major version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PgBin {
    /// Directory containing `initdb`, `pg_ctl` and `postgres`.
    pub bindir: PathBuf,
    /// Major version reported by `postgres --version` (14, 15, …, 18).
    pub major: u32,
}

impl PgBin {
    /// Describes the installation in `bindir`, detecting the major version
    /// from `postgres --version`. Panics if that fails.
    pub fn new(bindir: impl Into<PathBuf>) -> PgBin {
        let bindir = bindir.into();
        let version = version_of(&bindir);
        let major = parse_major(&version).unwrap_or_else(|| {
            panic!(
                "pgwalrus-testkit: cannot parse a major version from `{}/postgres --version` output {version:?}",
                bindir.display()
            )
        });
        PgBin { bindir, major }
    }

    /// Path of a binary in this installation's bindir (`initdb`, `pg_ctl`,
    /// `postgres`; the npm builds ship only these three).
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// Full `postgres --version` output, e.g. `postgres (PostgreSQL) 18.4`.
    pub fn version(&self) -> String {
        version_of(&self.bindir)
    }
}

/// The server installation under test: [`BINDIR_ENV`] if set, else
/// [`DEBIAN_BINDIR`].
pub fn pg_bin() -> PgBin {
    match std::env::var_os(BINDIR_ENV) {
        Some(dir) if !dir.is_empty() => PgBin::new(PathBuf::from(dir)),
        _ => PgBin::new(DEBIAN_BINDIR),
    }
}

/// A PostgreSQL 15 client tool from Debian's packages (`psql`,
/// `pg_receivewal`, `pg_waldump`, `pg_basebackup`, …).
///
/// These are version 15 whatever the server under test: `psql` works against
/// every major, but `pg_basebackup` and `pg_receivewal` refuse to stream from
/// servers newer than 15 and `pg_waldump` reads only version-15 WAL.
pub fn debian_bin(name: &str) -> PathBuf {
    Path::new(DEBIAN_BINDIR).join(name)
}

/// `postgres --version` output of a bindir, cached per bindir.
fn version_of(bindir: &Path) -> String {
    static CACHE: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(v) = cache.get(bindir) {
        return v.clone();
    }
    let postgres = bindir.join("postgres");
    let mut cmd = Command::new(&postgres);
    cmd.arg("--version");
    scrub_pg_env(&mut cmd);
    let out = run(&mut cmd, "postgres --version").unwrap_or_else(|e| {
        panic!(
            "pgwalrus-testkit: cannot run {} (set {BINDIR_ENV} to a PostgreSQL bindir; \
             scripts/install-pg-majors.sh lists them): {e}",
            postgres.display()
        )
    });
    let version = out.trim().to_owned();
    cache.insert(bindir.to_owned(), version.clone());
    version
}

/// Major from `postgres (PostgreSQL) 15.18 (Debian …)` / `… 18.4` / `… 9.6.3`.
fn parse_major(version: &str) -> Option<u32> {
    let rest = version.split(')').nth(1)?.trim_start();
    let number: &str = rest.split_whitespace().next()?;
    let mut parts = number.split('.');
    let first: u32 = parts
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    if first >= 10 {
        Some(first)
    } else {
        // Pre-10 majors were two components (9.6).
        let second: u32 = parts.next()?.parse().ok()?;
        Some(first * 10 + second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_majors() {
        assert_eq!(parse_major("postgres (PostgreSQL) 18.4"), Some(18));
        assert_eq!(
            parse_major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(parse_major("postgres (PostgreSQL) 19devel"), Some(19));
        assert_eq!(parse_major("postgres (PostgreSQL) 9.6.24"), Some(96));
        assert_eq!(parse_major("garbage"), None);
    }
}
