//! `pgwalrus check`: connect the way `receive` would, and report everything an operator needs
//! to know before streaming — server, identity, position, segment size, TLS and
//! authentication used, and the slot's state. Exit 0 only when streaming would work.

use std::fmt::Write as _;
use std::io::Write as _;

use pgwalrus_client::config::Config;
use pgwalrus_client::{Connection, connect, error_chain};
use pgwalrus_wal::Lsn;
use pgwalrus_wal::names::SegmentName;

use crate::cli::CheckArgs;
use crate::exit::Exit;
use crate::failure::{Failure, Outcome};

/// Runs the check and prints its report on stdout.
///
/// # Errors
/// A [`Failure`] whose exit code says why streaming would not work.
pub fn run(args: &CheckArgs) -> Outcome {
    let config = crate::connection::resolve(&args.conn)?;
    let runtime = crate::connection::runtime()?;
    let mut report = String::new();
    let result = runtime.block_on(check(&config, args.slot.as_deref(), &mut report));
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(report.as_bytes());
    let _ = stdout.flush();
    result
}

/// Where the slot stands, as far as the server tells us.
#[derive(Debug, Default)]
struct SlotState {
    exists: bool,
    restart_lsn: Option<Lsn>,
    restart_tli: Option<u32>,
    active_pid: Option<String>,
    wal_status: Option<String>,
    safe_wal_size: Option<String>,
    slot_type: Option<String>,
    /// Why the SQL view could not be read, when it could not.
    sql_unavailable: Option<String>,
}

async fn check(config: &Config, slot: Option<&str>, out: &mut String) -> Outcome {
    let mut conn = connect(config).await.map_err(crate::connection::failure)?;
    line(
        out,
        "server",
        format!(
            "{} (PostgreSQL {})",
            conn.target(),
            conn.parameter("server_version").unwrap_or("?")
        ),
    );

    let identity = conn
        .identify_system()
        .await
        .map_err(crate::connection::failure)?;
    if identity.dbname.is_some() {
        return Err(Failure::msg(
            Exit::Config,
            "replication connection is unexpectedly database specific (IDENTIFY_SYSTEM returned a database)",
        ));
    }
    let seg_size = conn
        .wal_segment_size()
        .await
        .map_err(crate::connection::failure)?;
    line(out, "system identifier", identity.system_id.to_string());
    line(out, "timeline", identity.timeline.to_string());
    let segment = SegmentName::containing(identity.timeline, identity.xlogpos, seg_size);
    line(
        out,
        "current WAL position",
        format!("{} (segment {segment})", identity.xlogpos),
    );
    line(out, "WAL segment size", seg_size.to_string());
    line(
        out,
        "TLS",
        match conn.tls() {
            Some(tls) => format!(
                "{} {}{}",
                tls.protocol,
                tls.cipher_suite,
                if tls.direct { " (direct)" } else { "" }
            ),
            None => "not used".to_owned(),
        },
    );
    line(out, "authentication", conn.auth_method().to_string());

    let Some(slot) = slot else {
        line(
            out,
            "slot",
            "none given (without a slot the server may remove WAL before it is archived)",
        );
        out.push_str("ok: streaming would work\n");
        return Ok(());
    };
    let state = slot_state(&mut conn, config, slot).await?;
    let label = format!("slot \"{slot}\"");
    if !state.exists {
        line(out, &label, "does not exist");
        return Err(Failure::msg(
            Exit::Config,
            format!(
                "replication slot \"{slot}\" does not exist on {}; create it with `pgwalrus receive --create-slot` or SELECT pg_create_physical_replication_slot('{slot}', true)",
                conn.target()
            ),
        ));
    }
    let mut desc = String::from("exists");
    if let Some(kind) = &state.slot_type {
        let _ = write!(desc, ", {kind}");
    }
    match &state.active_pid {
        Some(pid) => {
            let _ = write!(desc, ", active (pid {pid})");
        }
        None if state.sql_unavailable.is_none() => desc.push_str(", inactive"),
        None => {}
    }
    match (state.restart_lsn, state.restart_tli) {
        (Some(lsn), Some(tli)) => {
            let _ = write!(desc, ", restart LSN {lsn} on timeline {tli}");
        }
        (Some(lsn), None) => {
            let _ = write!(desc, ", restart LSN {lsn}");
        }
        (None, _) => desc.push_str(", no WAL reserved yet"),
    }
    if let Some(status) = &state.wal_status {
        let _ = write!(desc, ", wal_status {status}");
    }
    if let Some(size) = &state.safe_wal_size {
        let _ = write!(desc, ", safe_wal_size {size}");
    }
    line(out, &label, desc);
    if let Some(why) = &state.sql_unavailable {
        line(
            out,
            "slot details",
            format!("active and wal_status unknown: {why}"),
        );
    }

    if state.slot_type.as_deref().is_some_and(|t| t != "physical") {
        return Err(Failure::msg(
            Exit::Config,
            format!("replication slot \"{slot}\" is not a physical slot"),
        ));
    }
    if state.wal_status.as_deref() == Some("lost") {
        return Err(Failure::msg(
            Exit::WalGone,
            format!(
                "replication slot \"{slot}\" has lost the WAL it was retaining (wal_status lost); drop and recreate it, and expect a gap in the archive"
            ),
        ));
    }
    if let Some(pid) = &state.active_pid {
        return Err(Failure::msg(
            Exit::Config,
            format!(
                "replication slot \"{slot}\" is in use by the process with pid {pid}; only one receiver can stream from a slot"
            ),
        ));
    }
    out.push_str("ok: streaming would work\n");
    Ok(())
}

async fn slot_state(
    conn: &mut Connection,
    config: &Config,
    slot: &str,
) -> Result<SlotState, Failure> {
    let mut state = SlotState::default();
    // READ_REPLICATION_SLOT (15+) works on the replication connection itself; the SQL view,
    // which alone knows `active` and `wal_status`, needs an ordinary connection.
    if conn.server_version_num() >= 150_000
        && let Some(info) = conn
            .read_replication_slot(slot)
            .await
            .map_err(crate::connection::failure)?
    {
        state.exists = true;
        state.restart_lsn = info.restart_lsn;
        state.restart_tli = info.restart_tli.map(|t| t.get());
    }
    match pgwalrus_client::slot_row(config, conn.host(), slot).await {
        Ok(Some(row)) => {
            state.exists = true;
            state.restart_lsn = state.restart_lsn.or(row.restart_lsn);
            state.slot_type = row.slot_type;
            state.active_pid = row.active_pid;
            state.wal_status = row.wal_status;
            state.safe_wal_size = row.safe_wal_size;
        }
        Ok(None) => state.exists = false,
        Err(e) => {
            if conn.server_version_num() < 150_000 {
                // Without READ_REPLICATION_SLOT the view is the only source.
                return Err(crate::connection::failure(e));
            }
            state.sql_unavailable = Some(error_chain(&e).to_string());
        }
    }
    Ok(state)
}

fn line(out: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{:<22}{value}", format!("{key}:"));
}
