//! The simple-query conversation: collect result sets until `ReadyForQuery`.
//!
//! [`SimpleQuery`] consumes the backend messages that follow a `Query` and gathers
//! [`ResultSet`]s. A server error is held until `ReadyForQuery` so the connection is left
//! usable; a `CopyBothResponse` (replication streaming) is handed back to the caller.

use bytes::Bytes;

use crate::backend::{BackendMessage, CopyResponse, DataRow, FieldDescription};
use crate::error::ProtoError;
use crate::server_error::{Notice, ServerError};

/// The rows of one statement's result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResultSet {
    /// Column descriptions (empty for commands without a result, like `DROP_REPLICATION_SLOT`).
    pub columns: Vec<FieldDescription>,
    /// Rows in order.
    pub rows: Vec<DataRow>,
    /// The `CommandComplete` tag, if one came.
    pub command_tag: Option<String>,
}

impl ResultSet {
    /// Index of the column called `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The only row.
    ///
    /// # Errors
    /// [`ProtoError::Invalid`] naming `what` when there are zero or several rows.
    pub fn single_row(&self, what: &'static str) -> Result<&DataRow, ProtoError> {
        match self.rows.as_slice() {
            [row] => Ok(row),
            rows => Err(ProtoError::invalid(
                what,
                format!("expected 1 row, got {}", rows.len()),
            )),
        }
    }

    /// The raw value of column `name` in `row`; `None` for SQL NULL.
    ///
    /// # Errors
    /// [`ProtoError::Invalid`] naming `field` when there is no such column.
    pub fn value<'r>(
        &self,
        row: &'r DataRow,
        name: &str,
        field: &'static str,
    ) -> Result<Option<&'r Bytes>, ProtoError> {
        let i = self.column(name).ok_or_else(|| {
            ProtoError::invalid(field, format!("no column {name:?} in the result"))
        })?;
        match row.values.get(i) {
            Some(v) => Ok(v.as_ref()),
            None => Err(ProtoError::invalid(
                field,
                format!(
                    "row has {} values, column {name:?} missing",
                    row.values.len()
                ),
            )),
        }
    }

    /// The text value of column `name` in `row`; `None` for SQL NULL.
    ///
    /// # Errors
    /// [`ProtoError`] naming `field` for a missing column or invalid UTF-8.
    pub fn text<'r>(
        &self,
        row: &'r DataRow,
        name: &str,
        field: &'static str,
    ) -> Result<Option<&'r str>, ProtoError> {
        self.value(row, name, field)?
            .map(|b| std::str::from_utf8(b).map_err(|_| ProtoError::InvalidUtf8 { field }))
            .transpose()
    }

    /// Every row as text values (`None` for NULL).
    ///
    /// # Errors
    /// [`ProtoError::InvalidUtf8`] when a value is not UTF-8.
    pub fn text_rows(&self) -> Result<Vec<Vec<Option<String>>>, ProtoError> {
        self.rows
            .iter()
            .map(|row| {
                row.values
                    .iter()
                    .map(|v| {
                        v.as_ref()
                            .map(|b| {
                                std::str::from_utf8(b).map(str::to_owned).map_err(|_| {
                                    ProtoError::InvalidUtf8 {
                                        field: "DataRow.value",
                                    }
                                })
                            })
                            .transpose()
                    })
                    .collect()
            })
            .collect()
    }
}

/// What a finished simple query produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryOutcome {
    /// One result per statement.
    pub results: Vec<ResultSet>,
    /// Notices received.
    pub notices: Vec<Notice>,
    /// `ParameterStatus` changes received (a `SET` or a reload can change reported settings).
    pub parameter_changes: Vec<(String, String)>,
}

/// What to do next.
#[derive(Debug)]
pub enum QueryStep {
    /// Feed the next message.
    Read,
    /// `ReadyForQuery` came: the query is over.
    Done(QueryOutcome),
    /// The server entered bidirectional copy (replication streaming).
    CopyBoth(CopyResponse),
}

/// The query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The server reported an error; the connection is ready for the next query.
    #[error("{0}")]
    Server(Box<ServerError>),
    /// A message arrived that does not belong in a query's response.
    #[error("unexpected {message} in a query response")]
    Unexpected {
        /// What came.
        message: &'static str,
    },
}

/// Collects the response to one simple `Query`.
#[derive(Debug, Default)]
pub struct SimpleQuery {
    outcome: QueryOutcome,
    current: Option<ResultSet>,
    error: Option<ServerError>,
}

impl SimpleQuery {
    /// Starts collecting (call after sending the `Query`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The server error received so far, if any: when the server closes the connection
    /// after a `FATAL` error no `ReadyForQuery` comes, and this is the explanation.
    pub fn take_error(&mut self) -> Option<ServerError> {
        self.error.take()
    }

    /// Feeds one backend message.
    ///
    /// # Errors
    /// [`QueryError::Server`] (at `ReadyForQuery`) when the server reported an error,
    /// [`QueryError::Unexpected`] for a message that cannot be part of a query response.
    pub fn handle(&mut self, msg: BackendMessage) -> Result<QueryStep, QueryError> {
        match msg {
            BackendMessage::RowDescription(columns) => {
                self.finish_current();
                self.current = Some(ResultSet {
                    columns,
                    ..ResultSet::default()
                });
            }
            BackendMessage::DataRow(row) => match &mut self.current {
                Some(rs) => rs.rows.push(row),
                None => {
                    return Err(QueryError::Unexpected {
                        message: "DataRow without RowDescription",
                    });
                }
            },
            BackendMessage::CommandComplete { tag } => {
                let mut rs = self.current.take().unwrap_or_default();
                rs.command_tag = Some(tag);
                self.outcome.results.push(rs);
            }
            BackendMessage::EmptyQueryResponse => {
                self.finish_current();
                self.outcome.results.push(ResultSet::default());
            }
            BackendMessage::ErrorResponse(e) => {
                self.current = None;
                if self.error.is_none() {
                    self.error = Some(e);
                }
            }
            BackendMessage::NoticeResponse(n) => self.outcome.notices.push(n),
            BackendMessage::ParameterStatus { name, value } => {
                self.outcome.parameter_changes.push((name, value))
            }
            BackendMessage::NotificationResponse { .. } => {}
            BackendMessage::CopyBothResponse(c) => {
                self.finish_current();
                return Ok(QueryStep::CopyBoth(c));
            }
            BackendMessage::ReadyForQuery(_) => {
                if let Some(e) = self.error.take() {
                    return Err(QueryError::Server(Box::new(e)));
                }
                self.finish_current();
                return Ok(QueryStep::Done(std::mem::take(&mut self.outcome)));
            }
            other => {
                return Err(QueryError::Unexpected {
                    message: other.name(),
                });
            }
        }
        Ok(QueryStep::Read)
    }

    /// A result set with rows but no `CommandComplete` yet (the walsender's end-of-timeline
    /// result is followed by two tags): keep it rather than drop it.
    fn finish_current(&mut self) {
        if let Some(rs) = self.current.take() {
            self.outcome.results.push(rs);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::backend::TransactionStatus;
    use crate::testdata::{self, Dir};

    /// Runs the captured psql session's queries through the collector.
    fn captured_outcomes() -> Vec<Result<QueryOutcome, QueryError>> {
        let frames = testdata::frames(testdata::SCRAM_REPLICATION_COMMANDS);
        let mut out = Vec::new();
        let mut q: Option<SimpleQuery> = None;
        for (dir, frame) in frames {
            if dir == Dir::Client {
                if frame[0] == b'Q' {
                    q = Some(SimpleQuery::new());
                }
                continue;
            }
            let Some(col) = q.as_mut() else { continue };
            let msg = BackendMessage::parse(&mut BytesMut::from(&frame[..]))
                .unwrap()
                .unwrap();
            match col.handle(msg) {
                Ok(QueryStep::Read) => {}
                Ok(QueryStep::Done(o)) => {
                    out.push(Ok(o));
                    q = None;
                }
                Ok(QueryStep::CopyBoth(_)) => panic!(),
                Err(e) => {
                    out.push(Err(e));
                    q = None;
                }
            }
        }
        out
    }

    #[test]
    fn captured_session() {
        let outcomes = captured_outcomes();
        assert_eq!(outcomes.len(), 6);
        let ident = outcomes[0].as_ref().unwrap();
        assert_eq!(ident.results.len(), 1);
        let rs = &ident.results[0];
        assert_eq!(rs.command_tag.as_deref(), Some("IDENTIFY_SYSTEM"));
        let row = rs.single_row("IDENTIFY_SYSTEM").unwrap();
        assert_eq!(rs.text(row, "xlogpos", "x").unwrap(), Some("0/1501480"));
        assert_eq!(rs.text(row, "dbname", "x").unwrap(), None);
        assert!(rs.text(row, "nope", "x").is_err());
        assert_eq!(
            outcomes[1].as_ref().unwrap().results[0]
                .text_rows()
                .unwrap(),
            vec![vec![Some("16MB".to_owned())]]
        );
        // DROP_REPLICATION_SLOT: a tag, no rows.
        let drop = &outcomes[4].as_ref().unwrap().results[0];
        assert!(drop.columns.is_empty() && drop.rows.is_empty());
        assert_eq!(drop.command_tag.as_deref(), Some("DROP_REPLICATION_SLOT"));
        // TIMELINE_HISTORY 1 fails; the error comes with ReadyForQuery.
        let Err(QueryError::Server(e)) = &outcomes[5] else {
            panic!()
        };
        assert_eq!(e.code().code(), "58P01");
    }

    #[test]
    fn end_of_streaming_sequence_from_capture() {
        // After the client's CopyDone, pg_receivewal's capture shows: CopyDone,
        // CommandComplete START_STREAMING, CommandComplete START_REPLICATION, ReadyForQuery.
        let mut q = SimpleQuery::new();
        q.handle(BackendMessage::CommandComplete {
            tag: "START_STREAMING".into(),
        })
        .unwrap();
        q.handle(BackendMessage::CommandComplete {
            tag: "START_REPLICATION".into(),
        })
        .unwrap();
        let QueryStep::Done(o) = q
            .handle(BackendMessage::ReadyForQuery(TransactionStatus::Idle))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(o.results.len(), 2);
    }

    #[test]
    fn unexpected_messages() {
        let mut q = SimpleQuery::new();
        assert!(matches!(
            q.handle(BackendMessage::CopyDone),
            Err(QueryError::Unexpected {
                message: "CopyDone"
            })
        ));
        let mut q = SimpleQuery::new();
        assert!(
            q.handle(BackendMessage::DataRow(DataRow { values: vec![] }))
                .is_err()
        );
        let mut q = SimpleQuery::new();
        let e = ServerError::parse(b"SFATAL\0VFATAL\0C57P01\0Mbye\0\0").unwrap();
        q.handle(BackendMessage::ErrorResponse(e.clone())).unwrap();
        assert_eq!(q.take_error(), Some(e));
    }
}
