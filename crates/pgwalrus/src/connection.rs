//! The app's side of connecting: settings from the command line (with the `-W` prompt),
//! the runtime connections run on, the mapping from client errors to exit codes, and the
//! one SQL query the replication commands need (a slot's row of `pg_replication_slots`).

use pgwalrus_client::Error as ClientError;
use pgwalrus_client::config::{Config, HostSpec, ReplicationMode};
use pgwalrus_proto::replication::commands::quote_literal;
use pgwalrus_wal::Lsn;

use crate::cli::ConnArgs;
use crate::exit::Exit;
use crate::failure::Failure;

/// SQLSTATE `42501` insufficient_privilege (e.g. a role without REPLICATION).
const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// SQLSTATE class `28`: invalid authorization specification.
const AUTH_CLASS: &str = "28";
/// SQLSTATE `3D000` invalid_catalog_name (database does not exist).
const INVALID_CATALOG_NAME: &str = "3D000";

/// Resolves the connection settings, prompting for a password with `-W`.
///
/// # Errors
/// A configuration failure (exit 2) naming the keyword and position at fault.
pub fn resolve(args: &ConnArgs) -> Result<Config, Failure> {
    let mut config = args.resolve().map_err(|e| Failure::new(Exit::Config, e))?;
    if args.password {
        let prompt = format!("Password for user {}: ", config.user);
        let password = rpassword::prompt_password(prompt).map_err(|e| {
            Failure::new(
                Exit::Config,
                anyhow::Error::new(e).context("could not read the password"),
            )
        })?;
        config.password = Some(password);
    }
    Ok(config)
}

/// The exit code for a client error: configuration-like errors (authentication, privilege,
/// TLS settings or certificate checks, unsupported server) are 2, the rest is "server
/// unreachable" (1). For a multi-host failure, 2 when any host failed for a configuration
/// reason, since retrying will not fix that one.
pub fn exit_for(error: &ClientError) -> Exit {
    if let ClientError::AllFailed { attempts } = error {
        return if attempts.iter().any(|a| exit_for(a) == Exit::Config) {
            Exit::Config
        } else {
            Exit::Connection
        };
    }
    if error.is_auth_failure() {
        return Exit::Config;
    }
    if let Some(server) = error.server_error() {
        let state = server.code();
        let code = state.code();
        if code == INSUFFICIENT_PRIVILEGE
            || state.class() == AUTH_CLASS
            || code == INVALID_CATALOG_NAME
        {
            return Exit::Config;
        }
    }
    if error.is_transient() {
        return Exit::Connection;
    }
    match error {
        ClientError::ServerTooOld { .. }
        | ClientError::TlsConfig { .. }
        | ClientError::TlsHandshake { .. }
        | ClientError::TlsNotSupported { .. }
        | ClientError::TlsNoAlpn { .. }
        | ClientError::Startup { .. }
        | ClientError::Encode { .. }
        | ClientError::Unsupported { .. }
        | ClientError::NoHosts => Exit::Config,
        _ => Exit::Connection,
    }
}

/// Wraps a client error with its exit code.
pub fn failure(error: ClientError) -> Failure {
    Failure::new(exit_for(&error), error)
}

/// The runtime every networked command runs on: one thread for the network (file I/O has
/// threads of its own), so a receiver uses one core for protocol work at most.
///
/// # Errors
/// Exit 5 when the runtime cannot be created (out of threads or file descriptors).
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                Exit::Io,
                anyhow::Error::new(e).context("could not start the runtime"),
            )
        })
}

/// A replication slot's row of `pg_replication_slots`, as text where only shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotRow {
    /// `physical` or `logical`.
    pub slot_type: Option<String>,
    /// The pid of the process using the slot, if one is.
    pub active_pid: Option<String>,
    /// Where the slot keeps WAL from; `None` for a slot that reserves none.
    pub restart_lsn: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: Option<String>,
    /// `safe_wal_size`, pretty-printed.
    pub safe_wal_size: Option<String>,
}

/// Reads slot `slot`'s row of `pg_replication_slots` (`None` when no such slot exists).
///
/// A physical replication connection runs no SQL, so this opens an ordinary connection with
/// the same settings to database `postgres`, pinned to `host` (the one the replication
/// connection reached, so a multi-host conninfo cannot answer from another server).
///
/// # Errors
/// Any client error: connecting (a `pg_hba.conf` without an entry for ordinary connections
/// is common on archive hosts), or the query.
pub async fn slot_row(
    config: &Config,
    host: &HostSpec,
    slot: &str,
) -> Result<Option<SlotRow>, ClientError> {
    let mut sql_config = config.clone();
    sql_config.replication = ReplicationMode::Off;
    sql_config.dbname = Some("postgres".to_owned());
    sql_config.hosts = vec![host.clone()];
    let mut conn = pgwalrus_client::connect(&sql_config).await?;
    let sql = format!(
        "SELECT slot_type, active_pid::text, restart_lsn::text, wal_status, \
         pg_size_pretty(safe_wal_size) FROM pg_catalog.pg_replication_slots WHERE slot_name = {}",
        quote_literal(slot)
    );
    let results = conn.simple_query(&sql).await?;
    let _ = conn.close().await;
    let row = results
        .into_iter()
        .next()
        .and_then(|r| r.rows.into_iter().next());
    Ok(row.map(|row| {
        let field = |i: usize| row.get(i).cloned().flatten();
        SlotRow {
            slot_type: field(0),
            active_pid: field(1),
            restart_lsn: field(2).and_then(|s| s.parse().ok()),
            wal_status: field(3),
            safe_wal_size: field(4),
        }
    }))
}
