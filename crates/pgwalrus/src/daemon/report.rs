//! The daemon's status as others read it: one row per server with the columns of
//! PostgreSQL's `pg_stat_wal_receiver` plus the archive's (JSON for `/status` and
//! `pgwalrus status --json`, an expanded text display for `pgwalrus status`), and the
//! Prometheus text format for `/metrics` — positions as byte counts (`*_lsn_bytes`, so lag
//! is arithmetic in PromQL, never an LSN in a label), times as Unix seconds, counters
//! ending in `_total`.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pgwalrus_bucket::{ShipState, ShipStatus};
use pgwalrus_receiver::ReceiverStatus;
use serde_json::{Value, json};

use super::supervisor::ServerView;
use crate::clock::now;

/// `2026-12-07T18:29:40.123Z`.
pub fn iso8601(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The state shown for a server: the engine's, or `parked`.
pub fn state_of(view: &ServerView, status: &ReceiverStatus) -> &'static str {
    if view.parked.is_some() {
        "parked"
    } else {
        status.state.as_str()
    }
}

/// One server's row.
pub fn row(view: &ServerView, at: SystemTime) -> Value {
    let s = view.status.borrow().clone();
    let observed = view
        .observed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let lsn = |l: pgwalrus_wal::Lsn| l.is_valid().then(|| l.to_string());
    let time = |t: Option<SystemTime>| t.map(iso8601);
    let (error, since) = match &view.parked {
        Some(p) => (Some(p.error.clone()), Some(p.since)),
        None => (s.last_error.clone(), s.last_error_time),
    };
    let shipping = view
        .ship_status
        .as_ref()
        .map(|ship| ship_row(&s, &ship.borrow(), at));
    json!({
        "name": view.name,
        "status": state_of(view, &s),
        "parked_reason": view.parked.as_ref().and_then(|p| p.kind).map(|k| k.as_str()),
        "receive_start_lsn": lsn(s.receive_start_lsn),
        "receive_start_tli": s.receive_start_tli.map(|t| t.get()),
        "received_lsn": lsn(s.received_lsn),
        "written_lsn": lsn(s.written_lsn),
        "flushed_lsn": lsn(s.flushed_lsn),
        "received_tli": s.received_tli.map(|t| t.get()),
        "last_msg_send_time": time(s.last_msg_send_time),
        "last_msg_receipt_time": time(s.last_msg_receipt_time),
        "latest_end_lsn": lsn(s.latest_end_lsn),
        "latest_end_time": time(s.latest_end_time),
        "slot_name": s.slot_name,
        "sender_host": s.sender_host,
        "sender_port": s.sender_port,
        "conninfo": s.conninfo,
        "last_completed_segment": s.last_completed_segment.map(|n| n.to_string()),
        "segments_completed": s.segments_completed,
        "bytes_behind": s.bytes_behind(),
        "bytes_received": s.bytes_received,
        "reconnects": s.reconnects,
        "fsync": {
            "count": s.fsync.count(),
            "seconds": s.fsync.sum().as_secs_f64(),
        },
        "unflushed_seconds": s.unflushed_since.map(|t| at.duration_since(t).unwrap_or_default().as_secs_f64()),
        "seconds_behind": s.time_behind(at).map(|d| d.as_secs_f64()),
        "retention_horizon": observed.horizon,
        "slot_wal_status": observed.wal_status,
        "slot_safe_wal_size": observed.safe_wal_size,
        "archive_free_bytes": observed.free_bytes,
        "last_error": error,
        "last_error_time": time(since),
        "shipping": shipping,
    })
}

/// The shipping part of a server's row.
fn ship_row(s: &ReceiverStatus, ship: &ShipStatus, at: SystemTime) -> Value {
    let time = |t: Option<SystemTime>| t.map(iso8601);
    let shipped = ship.shipped_end();
    json!({
        "archive": ship.url,
        "state": ship_state(ship.state),
        "create_only_enforced": ship.create_only,
        "shipped_segment": ship.shipped_segment,
        "shipped_lsn": shipped.map(|l| l.to_string()),
        "lag_bytes": ship_lag_bytes(s, ship),
        "lag_seconds": ship.oldest_pending_since.map(|t| at.duration_since(t).unwrap_or_default().as_secs_f64()),
        "pending_segments": ship.pending_segments,
        "uploads": ship.uploads,
        "already_there": ship.already_there,
        "chunks": ship.chunks,
        "bytes_uploaded": ship.bytes_uploaded,
        "requests": {
            "put": ship.requests.put,
            "get": ship.requests.get,
            "head": ship.requests.head,
            "list": ship.requests.list,
            "delete": ship.requests.delete,
        },
        "retries": ship.retries,
        "reconciled": ship.reconciled,
        "conflicts": ship.conflicts,
        "last_error": ship.last_error,
        "last_error_time": time(ship.last_error_time),
    })
}

/// Bytes durable locally that the bucket does not hold yet (on the timeline received).
fn ship_lag_bytes(s: &ReceiverStatus, ship: &ShipStatus) -> Option<u64> {
    let shipped = ship.shipped_end()?;
    s.flushed_lsn
        .is_valid()
        .then(|| s.flushed_lsn.as_u64().saturating_sub(shipped.as_u64()))
}

fn ship_state(state: ShipState) -> &'static str {
    match state {
        ShipState::Starting => "starting",
        ShipState::Shipping => "shipping",
        ShipState::Retrying => "retrying",
        ShipState::Failed => "failed",
        ShipState::Stopped => "stopped",
    }
}

/// `/status`: every server's row.
pub fn status_json(views: &[ServerView]) -> Value {
    let at = now();
    json!({
        "time": iso8601(at),
        "servers": views.iter().map(|v| row(v, at)).collect::<Vec<_>>(),
    })
}

/// `pgwalrus status`: the rows of `/status` in psql's expanded display.
pub fn status_text(status: &Value) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    let servers = status["servers"].as_array().unwrap_or(&empty);
    if servers.is_empty() {
        out.push_str("(no servers)\n");
    }
    for server in servers {
        let name = server["name"].as_str().unwrap_or("?");
        let _ = writeln!(out, "-[ server {name} ]{}", "-".repeat(40));
        if let Some(fields) = server.as_object() {
            for (key, value) in fields.iter().filter(|(k, _)| *k != "name") {
                // A nested object (the shipping stage's) shows as `shipping.key` lines.
                let nested: Vec<(String, &Value)> = match value {
                    Value::Object(inner) => inner
                        .iter()
                        .map(|(k, v)| (format!("{key}.{k}"), v))
                        .collect(),
                    other => vec![(key.clone(), other)],
                };
                for (key, value) in nested {
                    let shown = match value {
                        Value::Null => String::new(),
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let _ = writeln!(out, "{key:<23}| {shown}");
                }
            }
        }
    }
    out
}

const STATES: [&str; 7] = [
    "starting",
    "streaming",
    "waiting",
    "disk_full",
    "stopping",
    "stopped",
    "parked",
];

/// `/metrics`: the Prometheus text format.
pub fn metrics(views: &[ServerView]) -> String {
    let at = now();
    let rows: Vec<(String, ReceiverStatus, &'static str, bool)> = views
        .iter()
        .map(|v| {
            let s = v.status.borrow().clone();
            let state = state_of(v, &s);
            (escape(&v.name), s, state, v.parked.is_some())
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP pgwalrus_build_info pgwalrus's version.\n# TYPE pgwalrus_build_info gauge\npgwalrus_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let mut family =
        |name: &str, kind: &str, help: &str, values: &mut dyn Iterator<Item = String>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for line in values {
                let _ = writeln!(out, "{name}{line}");
            }
        };
    let per_server = |f: &dyn Fn(&ReceiverStatus) -> Option<f64>| {
        rows.iter()
            .filter_map(|(name, s, _, _)| f(s).map(|v| format!("{{server=\"{name}\"}} {v}")))
            .collect::<Vec<_>>()
    };
    family(
        "pgwalrus_server_state",
        "gauge",
        "What the server's receiver is doing: 1 for its current state, 0 for the others.",
        &mut rows.iter().flat_map(|(name, _, state, _)| {
            STATES.iter().map(move |s| {
                format!(
                    "{{server=\"{name}\",state=\"{s}\"}} {}",
                    u8::from(s == state)
                )
            })
        }),
    );
    family(
        "pgwalrus_server_parked",
        "gauge",
        "1 while the server is parked: stopped for a reason retrying cannot fix, until its configuration changes or a retry is requested.",
        &mut rows
            .iter()
            .map(|(name, _, _, parked)| format!("{{server=\"{name}\"}} {}", u8::from(*parked))),
    );
    let lsn = |l: pgwalrus_wal::Lsn| l.is_valid().then(|| l.as_u64() as f64);
    for (metric, help, f) in [
        (
            "pgwalrus_received_lsn_bytes",
            "End of the WAL received and checked, as a byte position.",
            (&|s: &ReceiverStatus| lsn(s.received_lsn)) as &dyn Fn(&ReceiverStatus) -> Option<f64>,
        ),
        (
            "pgwalrus_written_lsn_bytes",
            "End of the WAL handed to the operating system, as a byte position.",
            &|s: &ReceiverStatus| lsn(s.written_lsn),
        ),
        (
            "pgwalrus_flushed_lsn_bytes",
            "End of the WAL that is durable in the archive, as a byte position.",
            &|s: &ReceiverStatus| lsn(s.flushed_lsn),
        ),
        (
            "pgwalrus_server_end_lsn_bytes",
            "The server's end of WAL as it last said, as a byte position.",
            &|s: &ReceiverStatus| lsn(s.latest_end_lsn),
        ),
        (
            "pgwalrus_received_timeline",
            "Timeline of the WAL being received.",
            &|s: &ReceiverStatus| s.received_tli.map(|t| f64::from(t.get())),
        ),
        (
            "pgwalrus_behind_bytes",
            "Bytes of WAL the server has that are not yet durable in the archive.",
            &|s: &ReceiverStatus| Some(s.bytes_behind() as f64),
        ),
        (
            "pgwalrus_last_message_receipt_timestamp_seconds",
            "When the last message from the server arrived (Unix time).",
            &|s: &ReceiverStatus| s.last_msg_receipt_time.map(unix),
        ),
        (
            "pgwalrus_last_error_timestamp_seconds",
            "When the last error happened (Unix time).",
            &|s: &ReceiverStatus| s.last_error_time.map(unix),
        ),
    ] {
        family(metric, "gauge", help, &mut per_server(f).into_iter());
    }
    family(
        "pgwalrus_behind_seconds",
        "gauge",
        "How long the received position has been behind the server's end of WAL.",
        &mut per_server(&|s: &ReceiverStatus| s.time_behind(at).map(|d: Duration| d.as_secs_f64()))
            .into_iter(),
    );
    let observations: Vec<(String, super::supervisor::Observations)> = views
        .iter()
        .map(|v| {
            (
                escape(&v.name),
                v.observed.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            )
        })
        .collect();
    family(
        "pgwalrus_archive_free_bytes",
        "gauge",
        "Bytes free on the file system of the server's archive.",
        &mut observations
            .iter()
            .filter_map(|(name, o)| o.free_bytes.map(|b| format!("{{server=\"{name}\"}} {b}"))),
    );
    family(
        "pgwalrus_slot_wal_status",
        "gauge",
        "1 for the slot's current wal_status (reserved, extended, unreserved, lost), 0 for the others.",
        &mut observations.iter().flat_map(|(name, o)| {
            let lines: Vec<String> = match o.wal_status.as_deref() {
                None => Vec::new(),
                Some(current) => ["reserved", "extended", "unreserved", "lost"]
                    .into_iter()
                    .map(|w| {
                        format!(
                            "{{server=\"{name}\",wal_status=\"{w}\"}} {}",
                            u8::from(current == w)
                        )
                    })
                    .collect(),
            };
            lines
        }),
    );
    family(
        "pgwalrus_unflushed_seconds",
        "gauge",
        "Age of the oldest received byte not yet durable (0 when everything is).",
        &mut per_server(&|s: &ReceiverStatus| {
            Some(s.unflushed_since.map_or(0.0, |t| {
                at.duration_since(t).unwrap_or_default().as_secs_f64()
            }))
        })
        .into_iter(),
    );
    family(
        "pgwalrus_received_bytes_total",
        "counter",
        "Bytes of WAL received since the server's engine started.",
        &mut per_server(&|s: &ReceiverStatus| Some(s.bytes_received as f64)).into_iter(),
    );
    family(
        "pgwalrus_reconnects_total",
        "counter",
        "Sessions that failed and were retried since the server's engine started.",
        &mut per_server(&|s: &ReceiverStatus| Some(s.reconnects as f64)).into_iter(),
    );
    family(
        "pgwalrus_segments_completed_total",
        "counter",
        "Segments completed in the archive since the server's engine started.",
        &mut per_server(&|s: &ReceiverStatus| Some(s.segments_completed as f64)).into_iter(),
    );
    family(
        "pgwalrus_fsync_duration_seconds",
        "histogram",
        "How long the archive's WAL fsyncs took (file data; directory fsyncs are not counted).",
        &mut rows
            .iter()
            .flat_map(|(name, s, _, _)| fsync_lines(name, &s.fsync)),
    );
    let ships: Vec<(&str, ReceiverStatus, ShipStatus)> = rows
        .iter()
        .zip(views)
        .filter_map(|((name, s, _, _), v)| {
            let ship = v.ship_status.as_ref()?.borrow().clone();
            Some((name.as_str(), s.clone(), ship))
        })
        .collect();
    let per_ship = |f: &dyn Fn(&ReceiverStatus, &ShipStatus) -> Option<f64>| {
        ships
            .iter()
            .filter_map(|(name, s, ship)| f(s, ship).map(|v| format!("{{server=\"{name}\"}} {v}")))
            .collect::<Vec<_>>()
    };
    for (metric, kind, help, f) in [
        (
            "pgwalrus_shipped_lsn_bytes",
            "gauge",
            "End of the WAL the bucket holds (complete segments and chunks of the open one), as a byte position.",
            (&|_: &ReceiverStatus, ship: &ShipStatus| ship.shipped_end().map(|l| l.as_u64() as f64))
                as &dyn Fn(&ReceiverStatus, &ShipStatus) -> Option<f64>,
        ),
        (
            "pgwalrus_ship_lag_bytes",
            "gauge",
            "Bytes durable in the local spool that the bucket does not hold yet.",
            &|s: &ReceiverStatus, ship: &ShipStatus| ship_lag_bytes(s, ship).map(|b| b as f64),
        ),
        (
            "pgwalrus_ship_lag_seconds",
            "gauge",
            "How long the oldest completed segment not yet in the bucket has waited (0 when none waits).",
            &|_: &ReceiverStatus, ship: &ShipStatus| {
                Some(ship.oldest_pending_since.map_or(0.0, |t| {
                    at.duration_since(t).unwrap_or_default().as_secs_f64()
                }))
            },
        ),
        (
            "pgwalrus_ship_create_only_enforced",
            "gauge",
            "1 when the store was found to refuse a second create of the same key, 0 when it ignores create-only writes (single-writer mode).",
            &|_: &ReceiverStatus, ship: &ShipStatus| {
                ship.create_only.map(|c| f64::from(u8::from(c)))
            },
        ),
        (
            "pgwalrus_ship_uploads_total",
            "counter",
            "Objects created in the bucket (segments, history files, chunks).",
            &|_: &ReceiverStatus, ship: &ShipStatus| Some((ship.uploads + ship.chunks) as f64),
        ),
        (
            "pgwalrus_ship_uploaded_bytes_total",
            "counter",
            "Bytes uploaded to the bucket.",
            &|_: &ReceiverStatus, ship: &ShipStatus| Some(ship.bytes_uploaded as f64),
        ),
        (
            "pgwalrus_ship_retries_total",
            "counter",
            "Shipping rounds that failed and were retried.",
            &|_: &ReceiverStatus, ship: &ShipStatus| Some(ship.retries as f64),
        ),
        (
            "pgwalrus_ship_reconciled_total",
            "counter",
            "Uploads whose answer was unclear and were settled by reading the object back.",
            &|_: &ReceiverStatus, ship: &ShipStatus| Some(ship.reconciled as f64),
        ),
        (
            "pgwalrus_ship_conflicts_total",
            "counter",
            "Keys found holding different WAL than ours (never overwritten; ours kept aside).",
            &|_: &ReceiverStatus, ship: &ShipStatus| Some(ship.conflicts as f64),
        ),
    ] {
        family(metric, kind, help, &mut per_ship(f).into_iter());
    }
    family(
        "pgwalrus_s3_requests_total",
        "counter",
        "Requests made to the bucket, by kind (what the bucket will cost).",
        &mut ships.iter().flat_map(|(name, _, ship)| {
            let r = ship.requests;
            [
                ("put", r.put),
                ("get", r.get),
                ("head", r.head),
                ("list", r.list),
                ("delete", r.delete),
            ]
            .into_iter()
            .map(move |(kind, n)| format!("{{server=\"{name}\",kind=\"{kind}\"}} {n}"))
        }),
    );
    out
}

/// A server's `_bucket` (cumulative), `_sum` and `_count` lines of the fsync histogram,
/// each without the family's name.
fn fsync_lines(name: &str, fsync: &pgwalrus_receiver::FsyncHistogram) -> Vec<String> {
    let mut lines: Vec<String> = fsync
        .cumulative()
        .map(|(bound, n)| {
            let le = bound.map_or_else(|| "+Inf".to_owned(), |b| b.as_secs_f64().to_string());
            format!("_bucket{{server=\"{name}\",le=\"{le}\"}} {n}")
        })
        .collect();
    lines.push(format!(
        "_sum{{server=\"{name}\"}} {}",
        fsync.sum().as_secs_f64()
    ));
    lines.push(format!("_count{{server=\"{name}\"}} {}", fsync.count()));
    lines
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_8601_in_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_668_180_123);
        assert_eq!(iso8601(t), "2026-12-07T18:29:40.123Z");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso8601(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn the_fsync_histogram_is_cumulative_with_sum_and_count() {
        let mut h = pgwalrus_receiver::FsyncHistogram::default();
        h.record(Duration::from_micros(80));
        h.record(Duration::from_micros(300));
        h.record(Duration::from_secs(3));
        let lines = fsync_lines("a", &h);
        assert_eq!(lines[0], "_bucket{server=\"a\",le=\"0.0001\"} 1");
        assert_eq!(lines[1], "_bucket{server=\"a\",le=\"0.00025\"} 1");
        assert_eq!(lines[2], "_bucket{server=\"a\",le=\"0.0005\"} 2");
        assert!(
            lines.contains(&"_bucket{server=\"a\",le=\"2.5\"} 2".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"_bucket{server=\"a\",le=\"10\"} 3".to_owned()),
            "{lines:?}"
        );
        let n = lines.len();
        assert_eq!(lines[n - 3], "_bucket{server=\"a\",le=\"+Inf\"} 3");
        assert_eq!(lines[n - 2], "_sum{server=\"a\"} 3.00038");
        assert_eq!(lines[n - 1], "_count{server=\"a\"} 3");
    }

    #[test]
    fn metrics_have_help_type_and_one_line_per_server() {
        let (_tx, status) = pgwalrus_receiver::status::channel();
        let views = vec![
            ServerView {
                name: "a\"b".to_owned(),
                status: status.clone(),
                ship_status: None,
                parked: None,
                observed: Default::default(),
            },
            ServerView {
                name: "c".to_owned(),
                status,
                ship_status: None,
                parked: Some(super::super::supervisor::Parked {
                    kind: Some(pgwalrus_receiver::StopKind::WalGone),
                    error: "gone".to_owned(),
                    since: UNIX_EPOCH,
                }),
                observed: Default::default(),
            },
        ];
        let text = metrics(&views);
        assert!(
            text.contains("# TYPE pgwalrus_segments_completed_total counter"),
            "{text}"
        );
        assert!(
            text.contains("pgwalrus_server_state{server=\"a\\\"b\",state=\"starting\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("pgwalrus_server_state{server=\"c\",state=\"parked\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("pgwalrus_server_parked{server=\"c\"} 1"),
            "{text}"
        );
        // Unknown positions are left out, not reported as 0.
        assert!(!text.contains("pgwalrus_flushed_lsn_bytes{"), "{text}");
        // The fsync histogram is there before any fsync, all zero.
        assert!(
            text.contains("# TYPE pgwalrus_fsync_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("pgwalrus_fsync_duration_seconds_bucket{server=\"c\",le=\"+Inf\"} 0"),
            "{text}"
        );
        let json = status_json(&views);
        assert_eq!(json["servers"][1]["status"], "parked");
        assert_eq!(json["servers"][1]["parked_reason"], "wal_gone");
        assert!(status_text(&json).contains("-[ server c ]"));
    }
}
