//! A replication slot's row of `pg_replication_slots`, read over an ordinary (SQL)
//! connection: a physical replication connection runs no SQL, and before PostgreSQL 15 there
//! is no `READ_REPLICATION_SLOT`, so this is the only source of a slot's restart position
//! there (and of `wal_status`/`safe_wal_size` everywhere).

use pgwalrus_proto::replication::commands::quote_literal;
use pgwalrus_wal::Lsn;

use crate::config::{Config, HostSpec, ReplicationMode};
use crate::error::Error;

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
/// Opens an ordinary connection with `config`'s settings to database `postgres`, pinned to
/// `host` (the one the replication connection reached, so a multi-host conninfo cannot
/// answer from another server), and closes it again.
///
/// # Errors
/// Any client error: connecting (a `pg_hba.conf` without an entry for ordinary connections
/// is common on archive hosts), or the query.
pub async fn slot_row(
    config: &Config,
    host: &HostSpec,
    slot: &str,
) -> Result<Option<SlotRow>, Error> {
    let mut sql_config = config.clone();
    sql_config.replication = ReplicationMode::Off;
    sql_config.dbname = Some("postgres".to_owned());
    sql_config.hosts = vec![host.clone()];
    let mut conn = crate::connect(&sql_config).await?;
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
