//! Typed results of replication commands, decoded from [`ResultSet`]s.
//!
//! Columns are found by name; every failure names the command and column
//! (`IDENTIFY_SYSTEM.xlogpos`), so a surprising server answer is easy to diagnose.

use bytes::Bytes;
use pgwalrus_wal::{Lsn, TimeLineId};

use crate::error::ProtoError;
use crate::query::ResultSet;

/// `IDENTIFY_SYSTEM`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemIdentity {
    /// The cluster's unique system identifier (`pg_control_system().system_identifier`).
    pub system_id: u64,
    /// The server's current timeline.
    pub timeline: TimeLineId,
    /// The server's current WAL flush position.
    pub xlogpos: Lsn,
    /// The database, for logical replication connections; `None` for physical ones.
    pub dbname: Option<String>,
}

impl SystemIdentity {
    /// Decodes the single row of `IDENTIFY_SYSTEM`.
    ///
    /// # Errors
    /// [`ProtoError`] naming the column that is missing, NULL or malformed.
    pub fn from_result(rs: &ResultSet) -> Result<Self, ProtoError> {
        let row = rs.single_row("IDENTIFY_SYSTEM")?;
        let system_id = required(
            rs.text(row, "systemid", "IDENTIFY_SYSTEM.systemid")?,
            "IDENTIFY_SYSTEM.systemid",
        )?;
        let system_id = system_id.parse().map_err(|_| {
            ProtoError::invalid(
                "IDENTIFY_SYSTEM.systemid",
                format!("not an unsigned 64-bit number: {system_id:?}"),
            )
        })?;
        let timeline = parse_tli(
            rs.text(row, "timeline", "IDENTIFY_SYSTEM.timeline")?,
            "IDENTIFY_SYSTEM.timeline",
        )?;
        let xlogpos = parse_lsn(
            rs.text(row, "xlogpos", "IDENTIFY_SYSTEM.xlogpos")?,
            "IDENTIFY_SYSTEM.xlogpos",
        )?;
        let dbname = rs
            .text(row, "dbname", "IDENTIFY_SYSTEM.dbname")?
            .map(str::to_owned);
        Ok(SystemIdentity {
            system_id,
            timeline,
            xlogpos,
            dbname,
        })
    }
}

/// `CREATE_REPLICATION_SLOT`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    /// The slot's name.
    pub slot_name: String,
    /// For logical slots the point from which decoding is consistent; physical slots report
    /// `0/0` (or the reserved position, depending on the server version).
    pub consistent_point: Lsn,
}

impl CreatedSlot {
    /// Decodes the single row of `CREATE_REPLICATION_SLOT`.
    ///
    /// # Errors
    /// [`ProtoError`] naming the column that is missing, NULL or malformed.
    pub fn from_result(rs: &ResultSet) -> Result<Self, ProtoError> {
        let row = rs.single_row("CREATE_REPLICATION_SLOT")?;
        let slot_name = required(
            rs.text(row, "slot_name", "CREATE_REPLICATION_SLOT.slot_name")?,
            "CREATE_REPLICATION_SLOT.slot_name",
        )?
        .to_owned();
        let consistent_point = parse_lsn(
            rs.text(
                row,
                "consistent_point",
                "CREATE_REPLICATION_SLOT.consistent_point",
            )?,
            "CREATE_REPLICATION_SLOT.consistent_point",
        )?;
        Ok(CreatedSlot {
            slot_name,
            consistent_point,
        })
    }
}

/// `READ_REPLICATION_SLOT`'s answer for an existing physical slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    /// Oldest WAL the slot retains; `None` when the slot has not reserved WAL yet.
    pub restart_lsn: Option<Lsn>,
    /// The timeline of `restart_lsn` in the server's history.
    pub restart_tli: Option<TimeLineId>,
}

impl SlotInfo {
    /// Decodes `READ_REPLICATION_SLOT`'s row; `Ok(None)` when the slot does not exist (the
    /// server answers with an all-NULL row).
    ///
    /// # Errors
    /// [`ProtoError`] naming the column that is malformed, or a slot that is not physical.
    pub fn from_result(rs: &ResultSet) -> Result<Option<Self>, ProtoError> {
        let row = rs.single_row("READ_REPLICATION_SLOT")?;
        match rs.text(row, "slot_type", "READ_REPLICATION_SLOT.slot_type")? {
            None => return Ok(None),
            Some("physical") => {}
            Some(other) => {
                return Err(ProtoError::invalid(
                    "READ_REPLICATION_SLOT.slot_type",
                    format!("expected physical, got {other:?}"),
                ));
            }
        }
        let restart_lsn = rs
            .text(row, "restart_lsn", "READ_REPLICATION_SLOT.restart_lsn")?
            .map(|t| parse_lsn(Some(t), "READ_REPLICATION_SLOT.restart_lsn"))
            .transpose()?;
        let restart_tli = rs
            .text(row, "restart_tli", "READ_REPLICATION_SLOT.restart_tli")?
            .map(|t| parse_tli(Some(t), "READ_REPLICATION_SLOT.restart_tli"))
            .transpose()?;
        Ok(Some(SlotInfo {
            restart_lsn,
            restart_tli,
        }))
    }
}

/// `TIMELINE_HISTORY`'s answer: a history file's name and raw content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineHistoryFile {
    /// File name, e.g. `00000002.history`.
    pub filename: String,
    /// Raw content (not re-encoded by the server).
    pub content: Bytes,
}

impl TimelineHistoryFile {
    /// Decodes the single row of `TIMELINE_HISTORY`.
    ///
    /// # Errors
    /// [`ProtoError`] naming the column that is missing or NULL.
    pub fn from_result(rs: &ResultSet) -> Result<Self, ProtoError> {
        let row = rs.single_row("TIMELINE_HISTORY")?;
        let filename = required(
            rs.text(row, "filename", "TIMELINE_HISTORY.filename")?,
            "TIMELINE_HISTORY.filename",
        )?
        .to_owned();
        let content = rs
            .value(row, "content", "TIMELINE_HISTORY.content")?
            .cloned()
            .ok_or_else(|| ProtoError::invalid("TIMELINE_HISTORY.content", "NULL"))?;
        Ok(TimelineHistoryFile { filename, content })
    }
}

/// The result set the walsender sends when streaming reaches the end of a historic
/// timeline: which timeline follows and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndOfTimeline {
    /// The next timeline.
    pub next_tli: TimeLineId,
    /// Where it forked from the one just streamed.
    pub next_start: Lsn,
}

impl EndOfTimeline {
    /// Decodes the single row (`next_tli` int8, `next_tli_startpos` text).
    ///
    /// # Errors
    /// [`ProtoError`] naming the column that is missing, NULL or malformed.
    pub fn from_result(rs: &ResultSet) -> Result<Self, ProtoError> {
        let row = rs.single_row("end-of-timeline result")?;
        let next_tli = parse_tli(
            rs.text(row, "next_tli", "end-of-timeline.next_tli")?,
            "end-of-timeline.next_tli",
        )?;
        let next_start = parse_lsn(
            rs.text(
                row,
                "next_tli_startpos",
                "end-of-timeline.next_tli_startpos",
            )?,
            "end-of-timeline.next_tli_startpos",
        )?;
        Ok(EndOfTimeline {
            next_tli,
            next_start,
        })
    }
}

/// The value in `SHOW name`'s answer: one row of one non-NULL text column.
///
/// # Errors
/// [`ProtoError`] naming `SHOW` when there is not exactly one row of one non-NULL value, or
/// the value is not UTF-8.
pub fn show_value(rs: &ResultSet) -> Result<String, ProtoError> {
    let row = rs.single_row("SHOW")?;
    match row.values.as_slice() {
        [Some(v)] => std::str::from_utf8(v)
            .map(str::to_owned)
            .map_err(|_| ProtoError::InvalidUtf8 { field: "SHOW" }),
        _ => Err(ProtoError::invalid("SHOW", "expected one non-NULL value")),
    }
}

fn required<'a>(v: Option<&'a str>, field: &'static str) -> Result<&'a str, ProtoError> {
    v.ok_or_else(|| ProtoError::invalid(field, "NULL"))
}

fn parse_lsn(v: Option<&str>, field: &'static str) -> Result<Lsn, ProtoError> {
    let v = required(v, field)?;
    v.parse()
        .map_err(|e| ProtoError::invalid(field, format!("{e}")))
}

fn parse_tli(v: Option<&str>, field: &'static str) -> Result<TimeLineId, ProtoError> {
    let v = required(v, field)?;
    let n: u32 = v
        .parse()
        .map_err(|_| ProtoError::invalid(field, format!("not a timeline id: {v:?}")))?;
    TimeLineId::new(n).map_err(|e| ProtoError::invalid(field, format!("{e}")))
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use proptest::prelude::*;

    use super::*;
    use crate::backend::{BackendMessage, DataRow, FieldDescription};
    use crate::query::{QueryStep, SimpleQuery};
    use crate::testdata::{self, Dir};

    fn rs(cols: &[&str], row: &[Option<&str>]) -> ResultSet {
        ResultSet {
            columns: cols
                .iter()
                .map(|c| FieldDescription {
                    name: (*c).to_owned(),
                    table_oid: 0,
                    column_id: 0,
                    type_oid: 25,
                    type_size: -1,
                    type_modifier: -1,
                    format: 0,
                })
                .collect(),
            rows: vec![DataRow {
                values: row
                    .iter()
                    .map(|v| v.map(|s| Bytes::copy_from_slice(s.as_bytes())))
                    .collect(),
            }],
            command_tag: None,
        }
    }

    /// The result sets of the captured psql session, in order.
    fn captured() -> Vec<ResultSet> {
        let mut out = Vec::new();
        let mut q = SimpleQuery::new();
        for (dir, frame) in testdata::frames(testdata::SCRAM_REPLICATION_COMMANDS) {
            if dir == Dir::Client {
                continue;
            }
            let msg = BackendMessage::parse(&mut BytesMut::from(&frame[..]))
                .unwrap()
                .unwrap();
            if let Ok(QueryStep::Done(o)) = q.handle(msg) {
                out.extend(o.results);
            }
            if matches!(frame[0], b'Z') {
                q = SimpleQuery::new();
            }
        }
        out
    }

    #[test]
    fn captured_results_decode() {
        let c = captured();
        let id = SystemIdentity::from_result(&c[0]).unwrap();
        assert_eq!(id.system_id, 7_710_560_888_511_722_991);
        assert_eq!(id.timeline, TimeLineId::ONE);
        assert_eq!(id.xlogpos, "0/1501480".parse().unwrap());
        assert_eq!(id.dbname, None);
        let slot = CreatedSlot::from_result(&c[2]).unwrap();
        assert_eq!(slot.slot_name, "cap_slot");
        assert_eq!(slot.consistent_point, Lsn::INVALID);
        let info = SlotInfo::from_result(&c[3]).unwrap().unwrap();
        assert_eq!(info.restart_lsn, Some("0/1500718".parse().unwrap()));
        assert_eq!(info.restart_tli, Some(TimeLineId::ONE));
    }

    #[test]
    fn missing_slot_and_unreserved_slot() {
        let missing = rs(
            &["slot_type", "restart_lsn", "restart_tli"],
            &[None, None, None],
        );
        assert_eq!(SlotInfo::from_result(&missing).unwrap(), None);
        let unreserved = rs(
            &["slot_type", "restart_lsn", "restart_tli"],
            &[Some("physical"), None, None],
        );
        assert_eq!(
            SlotInfo::from_result(&unreserved).unwrap(),
            Some(SlotInfo {
                restart_lsn: None,
                restart_tli: None
            })
        );
    }

    #[test]
    fn end_of_timeline_and_history() {
        let r = rs(
            &["next_tli", "next_tli_startpos"],
            &[Some("2"), Some("0/3000148")],
        );
        assert_eq!(
            EndOfTimeline::from_result(&r).unwrap(),
            EndOfTimeline {
                next_tli: TimeLineId::new(2).unwrap(),
                next_start: "0/3000148".parse().unwrap()
            }
        );
        let h = rs(
            &["filename", "content"],
            &[
                Some("00000002.history"),
                Some("1\t0/3000148\tno recovery target specified\n"),
            ],
        );
        let f = TimelineHistoryFile::from_result(&h).unwrap();
        assert_eq!(f.filename, "00000002.history");
        assert!(f.content.starts_with(b"1\t0/3000148"));
    }

    #[test]
    fn errors_name_command_and_column() {
        let bad = rs(
            &["systemid", "timeline", "xlogpos", "dbname"],
            &[Some("x"), Some("1"), Some("0/0"), None],
        );
        assert!(matches!(
            SystemIdentity::from_result(&bad),
            Err(ProtoError::Invalid {
                field: "IDENTIFY_SYSTEM.systemid",
                ..
            })
        ));
        let bad = rs(
            &["systemid", "timeline", "xlogpos", "dbname"],
            &[Some("1"), Some("0"), Some("0/0"), None],
        );
        assert!(matches!(
            SystemIdentity::from_result(&bad),
            Err(ProtoError::Invalid {
                field: "IDENTIFY_SYSTEM.timeline",
                ..
            })
        ));
        let bad = rs(
            &["systemid", "timeline", "dbname"],
            &[Some("1"), Some("1"), None],
        );
        assert!(matches!(
            SystemIdentity::from_result(&bad),
            Err(ProtoError::Invalid {
                field: "IDENTIFY_SYSTEM.xlogpos",
                ..
            })
        ));
        let bad = rs(
            &["next_tli", "next_tli_startpos"],
            &[Some("2"), Some("bogus")],
        );
        assert!(matches!(
            EndOfTimeline::from_result(&bad),
            Err(ProtoError::Invalid {
                field: "end-of-timeline.next_tli_startpos",
                ..
            })
        ));
        let none = ResultSet::default();
        assert!(EndOfTimeline::from_result(&none).is_err());
        let logical = rs(
            &["slot_type", "restart_lsn", "restart_tli"],
            &[Some("logical"), None, None],
        );
        assert!(SlotInfo::from_result(&logical).is_err());
    }

    proptest! {
        #[test]
        fn end_of_timeline_roundtrip(tli in 1u32.., lsn in any::<u64>()) {
            let lsn = Lsn::new(lsn);
            let r = rs(&["next_tli", "next_tli_startpos"], &[Some(&tli.to_string()), Some(&lsn.to_string())]);
            let e = EndOfTimeline::from_result(&r).unwrap();
            prop_assert_eq!(e.next_tli.get(), tli);
            prop_assert_eq!(e.next_start, lsn);
        }

        #[test]
        fn identify_roundtrip(id in any::<u64>(), tli in 1u32.., lsn in any::<u64>(), db in proptest::option::of("[a-z]{1,8}")) {
            let lsn = Lsn::new(lsn);
            let r = rs(&["systemid", "timeline", "xlogpos", "dbname"], &[Some(&id.to_string()), Some(&tli.to_string()), Some(&format!("{lsn:#}")), db.as_deref()]);
            let s = SystemIdentity::from_result(&r).unwrap();
            prop_assert_eq!((s.system_id, s.timeline.get(), s.xlogpos, s.dbname), (id, tli, lsn, db));
        }

        #[test]
        fn arbitrary_values_never_panic(a in proptest::option::of("\\PC{0,12}"), b in proptest::option::of("\\PC{0,12}"), c in proptest::option::of("\\PC{0,12}")) {
            let r = rs(&["systemid", "timeline", "xlogpos", "dbname"], &[a.as_deref(), b.as_deref(), c.as_deref(), None]);
            let _ = SystemIdentity::from_result(&r);
            let r = rs(&["slot_type", "restart_lsn", "restart_tli"], &[a.as_deref(), b.as_deref(), c.as_deref()]);
            let _ = SlotInfo::from_result(&r);
            let r = rs(&["next_tli", "next_tli_startpos"], &[a.as_deref(), b.as_deref()]);
            let _ = EndOfTimeline::from_result(&r);
        }
    }
}
