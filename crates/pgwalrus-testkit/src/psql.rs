//! Running SQL through Debian's `psql` 15 (which talks to every major).

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::pgbin::debian_bin;
use crate::util::scrub_pg_env;

/// Runs `sql` with `psql -X -A -t -q -v ON_ERROR_STOP=1` against `conninfo`
/// (a libpq connection string), feeding the SQL on stdin so that each
/// statement runs on its own (CREATE DATABASE, ALTER SYSTEM, … work).
///
/// The child gets no inherited `PG*` variables; `envs` adds some
/// (`PGPASSWORD`, `PGSSLMODE`, `PGSSLCERT`, `PGPASSFILE`, …). `PGPASSFILE`
/// defaults to a nonexistent file so `~/.pgpass` never interferes, and
/// `PGCONNECT_TIMEOUT` to 10 s.
///
/// Returns stdout without trailing newlines (rows separated by `\n`,
/// columns by `|`), or an error with the exit status and stderr.
pub fn run_psql(conninfo: &str, envs: &[(&str, &str)], sql: &str) -> Result<String, String> {
    let psql = debian_bin("psql");
    let mut cmd = Command::new(&psql);
    scrub_pg_env(&mut cmd);
    cmd.env("PGPASSFILE", "/nonexistent/pgwalrus-testkit/pgpass")
        .env("PGCONNECT_TIMEOUT", "10")
        .envs(envs.iter().copied())
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo,
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", psql.display()))?;
    let mut stdin = child.stdin.take().ok_or("psql has no stdin pipe")?;
    // psql may exit before reading everything (failed connection): ignore EPIPE.
    let _ = stdin.write_all(sql.as_bytes());
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_owned())
    } else {
        Err(format!(
            "psql ({conninfo}) failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}
