//! Generated configuration: `pg_hba.conf`, the harness's include file
//! `pgwalrus-testkit.conf`, and the SQL that creates the test roles.

use std::fmt::Write as _;
use std::path::Path;

use crate::util::conf_value;
use crate::{
    CERT_USER, MD5_USER, NOREPL_USER, PASSWORD, PASSWORD_USER, SCRAM_USER, SUPERUSER, TLSONLY_USER,
    TRUST_USER,
};

/// Name of the include file, inside the data directory, that holds the
/// per-cluster settings. `postgresql.conf` ends with
/// `include_if_exists = 'pgwalrus-testkit.conf'`.
pub(crate) const INCLUDE_FILE: &str = "pgwalrus-testkit.conf";

/// The line appended to `postgresql.conf`.
pub(crate) const INCLUDE_LINE: &str = "include_if_exists = 'pgwalrus-testkit.conf'";

/// Host rows apply to this address only (the server listens nowhere else).
const LOOPBACK: &str = "127.0.0.1/32";

/// The `pg_hba.conf` of every cluster. First match wins, so TLS-only and
/// cert rows come before the generic `host` rows.
pub(crate) fn pg_hba() -> String {
    // (type, user, method); each row is emitted for `replication` and `all`.
    let rows: &[(&str, &str, &str)] = &[
        ("local", SUPERUSER, "trust"),
        ("local", TRUST_USER, "trust"),
        ("local", NOREPL_USER, "trust"),
        ("local", SCRAM_USER, "scram-sha-256"),
        ("hostnossl", TLSONLY_USER, "reject"),
        ("hostssl", TLSONLY_USER, "scram-sha-256"),
        ("hostssl", CERT_USER, "cert"),
        ("host", SUPERUSER, "trust"),
        ("host", TRUST_USER, "trust"),
        ("host", NOREPL_USER, "trust"),
        ("host", PASSWORD_USER, "password"),
        ("host", MD5_USER, "md5"),
        ("host", SCRAM_USER, "scram-sha-256"),
    ];
    let mut hba = String::from(
        "# Written by pgwalrus-testkit. First match wins; anything unmatched is rejected.\n\
         # TYPE     DATABASE     USER              ADDRESS        METHOD\n",
    );
    for &(kind, user, method) in rows {
        let address = if kind == "local" { "" } else { LOOPBACK };
        for database in ["replication", "all"] {
            let _ = writeln!(
                hba,
                "{kind:<10} {database:<12} {user:<17} {address:<14} {method}"
            );
        }
    }
    hba
}

/// SQL creating the test roles (run once per template or fresh cluster).
pub(crate) fn roles_sql() -> String {
    let pw = PASSWORD.replace('\'', "''");
    format!(
        "SET password_encryption = 'scram-sha-256';\n\
         CREATE ROLE {TRUST_USER} LOGIN REPLICATION;\n\
         CREATE ROLE {CERT_USER} LOGIN REPLICATION;\n\
         CREATE ROLE {NOREPL_USER} LOGIN NOREPLICATION;\n\
         CREATE ROLE {PASSWORD_USER} LOGIN REPLICATION PASSWORD '{pw}';\n\
         CREATE ROLE {SCRAM_USER} LOGIN REPLICATION PASSWORD '{pw}';\n\
         CREATE ROLE {TLSONLY_USER} LOGIN REPLICATION PASSWORD '{pw}';\n\
         SET password_encryption = 'md5';\n\
         CREATE ROLE {MD5_USER} LOGIN REPLICATION PASSWORD '{pw}';\n\
         RESET password_encryption;\n"
    )
}

/// Settings used while provisioning a template (socket only, no TLS).
pub(crate) fn provisioning_conf(socket_dir: &Path) -> String {
    let mut conf = String::from("# pgwalrus-testkit: provisioning a template (temporary)\n");
    for (name, value) in [
        ("listen_addresses", ""),
        ("port", "5432"),
        ("unix_socket_directories", &socket_dir.to_string_lossy()),
        ("fsync", "off"),
        ("logging_collector", "off"),
    ] {
        let _ = writeln!(conf, "{name} = {}", conf_value(value));
    }
    conf
}

/// Inputs of [`cluster_conf`].
pub(crate) struct ConfInputs<'a> {
    pub(crate) port: u16,
    pub(crate) socket_dir: &'a Path,
    pub(crate) server_cert: &'a Path,
    pub(crate) server_key: &'a Path,
    pub(crate) ca_cert: &'a Path,
    pub(crate) settings: &'a [(String, String)],
}

/// Defaults every test cluster gets, before the builder's settings.
pub(crate) const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("wal_level", "replica"),
    ("max_wal_senders", "10"),
    ("max_replication_slots", "10"),
    ("wal_keep_size", "256MB"),
    ("shared_buffers", "32MB"),
    ("max_connections", "40"),
    ("fsync", "on"),
    ("logging_collector", "off"),
    ("log_line_prefix", "%m [%p] %q%u@%d "),
    ("ssl", "on"),
];

/// The per-cluster include file.
pub(crate) fn cluster_conf(inputs: &ConfInputs<'_>) -> String {
    let mut conf = String::from(
        "# Written by pgwalrus-testkit whenever it starts this cluster; later lines win.\n",
    );
    let paths = [
        ("listen_addresses", "127.0.0.1".to_owned()),
        ("port", inputs.port.to_string()),
        (
            "unix_socket_directories",
            inputs.socket_dir.to_string_lossy().into_owned(),
        ),
        (
            "ssl_cert_file",
            inputs.server_cert.to_string_lossy().into_owned(),
        ),
        (
            "ssl_key_file",
            inputs.server_key.to_string_lossy().into_owned(),
        ),
        ("ssl_ca_file", inputs.ca_cert.to_string_lossy().into_owned()),
    ];
    for (name, value) in paths
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .chain(DEFAULT_SETTINGS.iter().copied())
    {
        let _ = writeln!(conf, "{name} = {}", conf_value(value));
    }
    if !inputs.settings.is_empty() {
        conf.push_str("# test settings\n");
        for (name, value) in inputs.settings {
            let _ = writeln!(conf, "{name} = {}", conf_value(value));
        }
    }
    conf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hba_orders_tls_rows_before_generic_host_rows() {
        let hba = pg_hba();
        let pos = |needle: &str| {
            hba.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing"))
        };
        assert!(
            pos("hostnossl  replication  walrus_tlsonly")
                < pos("hostssl    replication  walrus_tlsonly")
        );
        assert!(
            pos("hostssl    all          walrus_cert") < pos("host       replication  postgres")
        );
        assert!(!hba.contains("0.0.0.0"));
        assert!(!hba.contains("::"));
    }

    #[test]
    fn user_settings_come_last() {
        let settings = vec![("fsync".to_owned(), "off".to_owned())];
        let conf = cluster_conf(&ConfInputs {
            port: 5555,
            socket_dir: Path::new("/s"),
            server_cert: Path::new("/c"),
            server_key: Path::new("/k"),
            ca_cert: Path::new("/ca"),
            settings: &settings,
        });
        assert!(conf.find("fsync = 'on'") < conf.find("fsync = 'off'"));
        assert!(conf.contains("port = '5555'"));
    }
}
