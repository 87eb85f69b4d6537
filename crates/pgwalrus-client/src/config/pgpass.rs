//! The password file (`~/.pgpass`, `passfile=`, `PGPASSFILE`), matched the way libpq's
//! `passwordFromFile` matches it.
//!
//! Each line is `hostname:port:database:username:password`. A field that is exactly `*`
//! matches anything; otherwise it must equal the connection's value byte for byte, with `\`
//! escaping the next character (so `\:` and `\\`). The first matching line wins. Lines
//! starting with `#` are comments; trailing `\r`/`\n` are ignored. The password runs to the
//! next unescaped `:` or the end of the line.
//!
//! The host compared is the `host` setting, or `hostaddr` when no host name was given. A
//! connection through the default Unix socket directory ([`DEFAULT_SOCKET_DIR`], compared as
//! a string) or with an empty host is looked up as `localhost`; any other socket directory is
//! compared as its path. The database compared is the database name of the connection: for a
//! physical replication connection made like `pg_receivewal`'s, that is `replication` (see
//! [`ConnParams::for_physical_replication`](super::ConnParams::for_physical_replication)), which
//! is why the docs tell standby operators to use `replication` in that field.
//!
//! A file that is missing is silently ignored. A file that is not a plain file, or (on Unix)
//! that the group or others can access, is ignored with a [`PgpassWarning`] for the caller to
//! log, as libpq prints one.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Config, DEFAULT_SOCKET_DIR, Host, HostSpec};

/// What a password-file lookup found.
#[derive(Debug, Default)]
pub struct PgpassOutcome {
    /// The password of the first matching line; `None` if no line matched, the file was
    /// skipped, or the matching password was empty (libpq treats that as no password).
    pub password: Option<String>,
    /// Why the file was skipped, if it was; log it.
    pub warning: Option<PgpassWarning>,
}

/// Why a password file was not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgpassWarning {
    /// The path is a directory, device, socket…
    #[error("password file \"{}\" is not a plain file", path.display())]
    NotPlainFile {
        /// The file.
        path: PathBuf,
    },
    /// Mode has group or other bits set.
    #[error(
        "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
        path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file exists but could not be read (libpq skips such a file silently).
    #[error("could not read password file \"{}\"", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The matching line's password is not UTF-8, which pgwalrus cannot send.
    #[error("password on line {line} of password file \"{}\" is not valid UTF-8", path.display())]
    PasswordNotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// Looks up the password for one host in the password file at `path`.
///
/// `host` is the host as configured (a name, an address, or a socket directory; empty means
/// the default socket). Returns no password if `dbname` or `user` is empty, as libpq does.
#[doc(alias = "passwordFromFile")]
pub fn lookup(path: &Path, host: &str, port: u16, dbname: &str, user: &str) -> PgpassOutcome {
    if dbname.is_empty() || user.is_empty() {
        return PgpassOutcome::default();
    }
    let host = if host.is_empty() || host == DEFAULT_SOCKET_DIR {
        "localhost"
    } else {
        host
    };
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return PgpassOutcome::default(),
    };
    let warn = |warning| PgpassOutcome {
        password: None,
        warning: Some(warning),
    };
    if !metadata.is_file() {
        return warn(PgpassWarning::NotPlainFile {
            path: path.to_owned(),
        });
    }
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        return warn(PgpassWarning::InsecurePermissions {
            path: path.to_owned(),
            mode: mode & 0o7777,
        });
    }
    let contents = match std::fs::read(path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return PgpassOutcome::default(),
        Err(source) => {
            return warn(PgpassWarning::Unreadable {
                path: path.to_owned(),
                source,
            });
        }
    };
    let port = port.to_string();
    match find_password(&contents, [host, &port, dbname, user]) {
        None => PgpassOutcome::default(),
        Some((password, line)) => match String::from_utf8(password) {
            Ok(p) if p.is_empty() => PgpassOutcome::default(),
            Ok(p) => PgpassOutcome {
                password: Some(p),
                warning: None,
            },
            Err(_) => warn(PgpassWarning::PasswordNotUtf8 {
                path: path.to_owned(),
                line,
            }),
        },
    }
}

impl Config {
    /// Looks `host` up in the password file, if there is one. Call it when the server asks
    /// for a password and [`Config::password`] is `None`.
    pub fn passfile_lookup(&self, host: &HostSpec) -> PgpassOutcome {
        let Some(passfile) = &self.passfile else {
            return PgpassOutcome::default();
        };
        let host_text = match &host.host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(dir) => dir.to_string_lossy().into_owned(),
        };
        let dbname = self.dbname.as_deref().unwrap_or(&self.user);
        lookup(passfile, &host_text, host.port, dbname, &self.user)
    }
}

/// The unescaped password of the first line matching `tokens`, with its 1-based line number.
fn find_password(contents: &[u8], tokens: [&str; 4]) -> Option<(Vec<u8>, usize)> {
    contents
        .split(|&b| b == b'\n')
        .enumerate()
        .find_map(|(index, line)| {
            let end = line
                .iter()
                .rposition(|&b| b != b'\r' && b != b'\n')
                .map_or(0, |i| i + 1);
            let line = line.get(..end).unwrap_or_default();
            if line.is_empty() || line[0] == b'#' {
                return None;
            }
            let mut rest = line;
            for token in tokens {
                rest = match_field(rest, token.as_bytes())?;
            }
            Some((unescape_password(rest), index + 1))
        })
}

/// Matches the field at the start of `line` against `token`; on a match returns what follows
/// the field's terminating `:` (libpq's `pwdfMatchesString`).
fn match_field<'a>(line: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
    if line.starts_with(b"*:") {
        return line.get(2..);
    }
    let mut i = 0;
    let mut t = 0;
    while i < line.len() {
        let escaped = line[i] == b'\\';
        if escaped {
            i += 1;
        }
        let &c = line.get(i)?;
        if c == b':' && !escaped && t == token.len() {
            return line.get(i + 1..);
        }
        if token.get(t) != Some(&c) {
            return None;
        }
        i += 1;
        t += 1;
    }
    None
}

/// The password field up to the first unescaped `:`, with escapes removed; a trailing lone
/// backslash is kept, as libpq keeps it.
fn unescape_password(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while let Some(&c) = field.get(i) {
        if c == b':' {
            break;
        }
        match (c, field.get(i + 1)) {
            (b'\\', Some(&next)) => {
                out.push(next);
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file under the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &[u8], mode: u32) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("pgwalrus-pgpass-test-{}-{n}", std::process::id()));
            fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }

    fn password(contents: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
        let file = TempFile::new(contents.as_bytes(), 0o600);
        let outcome = lookup(&file.0, host, port, db, user);
        assert!(outcome.warning.is_none(), "{:?}", outcome.warning);
        outcome.password
    }

    #[test]
    fn exact_match() {
        let f = "db1:5432:app:walrus:s3cret\n";
        assert_eq!(
            password(f, "db1", 5432, "app", "walrus").as_deref(),
            Some("s3cret")
        );
        assert_eq!(password(f, "db2", 5432, "app", "walrus"), None);
        assert_eq!(password(f, "db1", 5433, "app", "walrus"), None);
        assert_eq!(password(f, "db1", 5432, "other", "walrus"), None);
        assert_eq!(password(f, "db1", 5432, "app", "other"), None);
        // Matching is case-sensitive and exact, not a prefix.
        assert_eq!(password(f, "DB1", 5432, "app", "walrus"), None);
        assert_eq!(password(f, "db", 5432, "app", "walrus"), None);
        assert_eq!(password(f, "db11", 5432, "app", "walrus"), None);
    }

    #[test]
    fn first_matching_line_wins_and_wildcards_match_anything() {
        let f = "# hostname:port:database:username:password\n\
                 db1:5432:replication:walrus:repl\n\
                 *:*:*:walrus:fallback\n\
                 *:*:*:*:any\n";
        assert_eq!(
            password(f, "db1", 5432, "replication", "walrus").as_deref(),
            Some("repl")
        );
        assert_eq!(
            password(f, "db9", 1, "app", "walrus").as_deref(),
            Some("fallback")
        );
        assert_eq!(
            password(f, "db9", 1, "app", "other").as_deref(),
            Some("any")
        );
    }

    #[test]
    fn star_is_a_wildcard_only_as_a_whole_field() {
        let f = "db*:5432:app:u:p\n";
        assert_eq!(password(f, "db1", 5432, "app", "u"), None);
        assert_eq!(password(f, "db*", 5432, "app", "u").as_deref(), Some("p"));
    }

    #[test]
    fn escapes_in_fields_and_password() {
        let f = r"h\:x:5432:d\\b:u:pa\:ss\\w\ord";
        assert_eq!(
            password(f, "h:x", 5432, r"d\b", "u").as_deref(),
            Some(r"pa:ss\word")
        );
        // The password ends at an unescaped colon.
        assert_eq!(
            password("h:5432:d:u:ab:cd", "h", 5432, "d", "u").as_deref(),
            Some("ab")
        );
        // A trailing lone backslash is kept.
        assert_eq!(
            password(r"h:5432:d:u:ab\", "h", 5432, "d", "u").as_deref(),
            Some(r"ab\")
        );
    }

    #[test]
    fn unescaped_colon_can_match_a_colon_in_the_token() {
        // libpq quirk: an IPv6 host written without escapes still matches.
        assert_eq!(
            password("::1:5432:d:u:p", "::1", 5432, "d", "u").as_deref(),
            Some("p")
        );
    }

    #[test]
    fn comments_crlf_and_blank_lines() {
        let f = "#db1:5432:d:u:commented\r\n\r\n\ndb1:5432:d:u:real\r\n";
        assert_eq!(password(f, "db1", 5432, "d", "u").as_deref(), Some("real"));
        // No trailing newline on the last line.
        assert_eq!(
            password("a:1:d:u:p", "a", 1, "d", "u").as_deref(),
            Some("p")
        );
        // A comment marker later in the line is literal.
        assert_eq!(
            password("a:1:d:u:p#q", "a", 1, "d", "u").as_deref(),
            Some("p#q")
        );
    }

    #[test]
    fn lines_need_five_fields() {
        assert_eq!(password("a:1:d:u", "a", 1, "d", "u"), None);
        assert_eq!(password("a:1:d:u:", "a", 1, "d", "u"), None);
    }

    #[test]
    fn localhost_matches_default_socket_and_empty_host() {
        let f = "localhost:5432:d:u:local\n/tmp:5432:d:u:tmp\n";
        assert_eq!(
            password(f, DEFAULT_SOCKET_DIR, 5432, "d", "u").as_deref(),
            Some("local")
        );
        assert_eq!(password(f, "", 5432, "d", "u").as_deref(), Some("local"));
        assert_eq!(
            password(f, "localhost", 5432, "d", "u").as_deref(),
            Some("local")
        );
        // Another socket directory is matched by its path.
        assert_eq!(password(f, "/tmp", 5432, "d", "u").as_deref(), Some("tmp"));
        // The default directory spelled differently is not the default directory.
        assert_eq!(password(f, "/var/run/postgresql/", 5432, "d", "u"), None);
    }

    #[test]
    fn empty_dbname_or_user_gives_nothing() {
        let f = "*:*:*:*:p\n";
        assert_eq!(password(f, "h", 1, "", "u"), None);
        assert_eq!(password(f, "h", 1, "d", ""), None);
    }

    #[test]
    fn missing_file_is_silent() {
        let path =
            std::env::temp_dir().join(format!("pgwalrus-pgpass-missing-{}", std::process::id()));
        let outcome = lookup(&path, "h", 1, "d", "u");
        assert!(outcome.password.is_none() && outcome.warning.is_none());
    }

    #[test]
    fn group_or_world_access_is_a_warning() {
        for mode in [0o640, 0o604, 0o660, 0o700 | 0o007] {
            let file = TempFile::new(b"*:*:*:*:p\n", mode);
            let outcome = lookup(&file.0, "h", 1, "d", "u");
            assert!(outcome.password.is_none());
            let Some(PgpassWarning::InsecurePermissions { path, mode: got }) = &outcome.warning
            else {
                panic!("{mode:o}: {:?}", outcome.warning);
            };
            assert_eq!(path, &file.0);
            assert_eq!(*got, mode);
            let message = outcome
                .warning
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert_eq!(
                message,
                format!(
                    "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                    file.0.display()
                )
            );
        }
        for mode in [0o600, 0o400, 0o700] {
            let file = TempFile::new(b"*:*:*:*:p\n", mode);
            assert_eq!(
                lookup(&file.0, "h", 1, "d", "u").password.as_deref(),
                Some("p")
            );
        }
    }

    #[test]
    fn directory_is_not_a_plain_file() {
        let dir = std::env::temp_dir();
        let outcome = lookup(&dir, "h", 1, "d", "u");
        assert!(outcome.password.is_none());
        assert!(matches!(
            outcome.warning,
            Some(PgpassWarning::NotPlainFile { .. })
        ));
    }

    #[test]
    fn non_utf8_password_is_a_warning() {
        let file = TempFile::new(b"h:1:d:u:\xff\xfe\nh:1:d:u:second\n", 0o600);
        let outcome = lookup(&file.0, "h", 1, "d", "u");
        assert!(outcome.password.is_none());
        assert!(matches!(
            outcome.warning,
            Some(PgpassWarning::PasswordNotUtf8 { line: 1, .. })
        ));
        // Non-UTF-8 bytes in other lines do not matter.
        let file = TempFile::new(b"\xff:1:d:u:x\nh:1:d:u:ok\n", 0o600);
        assert_eq!(
            lookup(&file.0, "h", 1, "d", "u").password.as_deref(),
            Some("ok")
        );
    }

    #[test]
    fn field_matcher_edge_cases() {
        assert_eq!(match_field(b"*:rest", b"anything"), Some(&b"rest"[..]));
        assert_eq!(match_field(b"*", b"*"), None);
        assert_eq!(match_field(b"abc:rest", b"abc"), Some(&b"rest"[..]));
        assert_eq!(match_field(b"ab\\c:rest", b"abc"), Some(&b"rest"[..]));
        assert_eq!(match_field(b"abc\\:rest", b"abc"), None);
        assert_eq!(match_field(b"abc\\", b"abc"), None);
        assert_eq!(match_field(b":rest", b""), Some(&b"rest"[..]));
        assert_eq!(match_field(b"", b""), None);
    }
}
