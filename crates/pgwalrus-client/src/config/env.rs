//! The [`Environment`] seam: everything resolution reads from outside the parameters
//! (`PG*` variables, the home directory, the operating-system user name, whether the
//! default certificate files exist), so tests can substitute a fake. [`ProcessEnv`] is the
//! real one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What [`Config::resolve`](super::Config::resolve) may ask of the outside world.
pub trait Environment {
    /// The value of environment variable `name`, if set (and valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;

    /// The user's home directory, for `~/.pgpass` and `~/.postgresql/*`.
    fn home_dir(&self) -> Option<PathBuf>;

    /// The operating-system user name, libpq's default for `user`.
    fn os_user(&self) -> Option<String>;

    /// Whether `path` exists (libpq `stat`s the default certificate and key files). The
    /// default implementation asks the file system.
    fn path_exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// The process environment: `std::env`, the file system, and `/etc/passwd`.
///
/// The user is looked up like libpq does, by effective uid: the uid is the owner of
/// `/proc/self` (no `unsafe` needed), its name comes from `/etc/passwd`; if either step fails
/// (no `/proc`, users only known to NSS), `USER` then `LOGNAME` are used instead. The home
/// directory is `HOME` if set and non-empty, else the `/etc/passwd` entry's.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn home_dir(&self) -> Option<PathBuf> {
        match std::env::var_os("HOME") {
            Some(home) if !home.is_empty() => Some(PathBuf::from(home)),
            _ => passwd_entry_for_current_user().map(|entry| entry.home),
        }
    }

    fn os_user(&self) -> Option<String> {
        passwd_entry_for_current_user()
            .map(|entry| entry.name)
            .or_else(|| {
                ["USER", "LOGNAME"]
                    .into_iter()
                    .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
            })
    }
}

#[derive(Debug, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    home: PathBuf,
}

fn passwd_entry_for_current_user() -> Option<PasswdEntry> {
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_entry(&passwd, uid)
}

/// The first `/etc/passwd` line (`name:password:uid:gid:gecos:home:shell`) with `uid`.
fn passwd_entry(passwd: &str, uid: u32) -> Option<PasswdEntry> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let uid_field = fields.nth(1)?;
        let home = fields.nth(2)?;
        (!name.is_empty() && uid_field.parse::<u32>().ok()? == uid).then(|| PasswdEntry {
            name: name.to_owned(),
            home: PathBuf::from(home),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment line is just a line without a numeric uid
broken
postgres:x:105:112:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash
walrus:x:1000:1000::/home/walrus:/bin/sh
";

    #[test]
    fn passwd_lookup_by_uid() {
        assert_eq!(
            passwd_entry(PASSWD, 105),
            Some(PasswdEntry {
                name: "postgres".into(),
                home: "/var/lib/postgresql".into()
            })
        );
        assert_eq!(
            passwd_entry(PASSWD, 1000),
            Some(PasswdEntry {
                name: "walrus".into(),
                home: "/home/walrus".into()
            })
        );
        assert_eq!(passwd_entry(PASSWD, 0).map(|e| e.name), Some("root".into()));
        assert_eq!(passwd_entry(PASSWD, 4242), None);
        assert_eq!(passwd_entry("", 0), None);
    }

    #[test]
    fn process_env_finds_some_user() {
        // Whatever runs the tests has a user name one way or another.
        assert!(ProcessEnv.os_user().is_some_and(|u| !u.is_empty()));
    }
}
