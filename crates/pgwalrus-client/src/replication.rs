//! The physical replication stream: `START_REPLICATION`, the CopyBoth phase, and its two
//! endings (the client's `finish`, or the server's end of a historic timeline).
//!
//! [`ReplicationStream::next`] is cancel-safe: it can sit in a `tokio::select!` next to a
//! status timer. Its state is recorded before every `await`, and a `CopyDone` reply that
//! was interrupted is flushed by the next call. Status updates are sent only when the
//! application says so ([`ReplicationStream::send_status`]); policy lives in the caller.

use std::time::SystemTime;

use bytes::Bytes;
use pgwalrus_proto::query::{QueryOutcome, QueryStep, SimpleQuery};
use pgwalrus_proto::replication::commands;
use pgwalrus_proto::replication::{
    EndOfTimeline, HotStandbyFeedback, PgTimestamp, StandbyStatusUpdate, WalSenderMessage,
};
use pgwalrus_proto::{BackendMessage, SqlState, frontend};
use pgwalrus_wal::{Lsn, TimeLineId};

use crate::connection::{Answer, Connection};
use crate::error::Error;

/// A message from the replication stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationMessage {
    /// WAL bytes `start..end`.
    XLogData {
        /// Position of the first byte of `data`.
        start: Lsn,
        /// Position just past the last byte of `data`.
        end: Lsn,
        /// The server's end of WAL when it sent this.
        wal_end: Lsn,
        /// The server's send time.
        time: PgTimestamp,
        /// The WAL bytes: a slice of the socket buffer, not a copy.
        data: Bytes,
    },
    /// The server's keepalive.
    Keepalive {
        /// The server's end of WAL.
        wal_end: Lsn,
        /// The server's send time.
        time: PgTimestamp,
        /// The server wants a status update now.
        reply_requested: bool,
    },
    /// The timeline being streamed ended on the server: `next_tli` continues from
    /// `next_start`. The stream is over; [`ReplicationStream::into_connection`] gives the
    /// connection back for the next `START_REPLICATION`.
    EndOfTimeline {
        /// The timeline that follows.
        next_tli: TimeLineId,
        /// Where it forked.
        next_start: Lsn,
    },
}

#[derive(Debug)]
enum State {
    /// In CopyBoth.
    Streaming,
    /// The server ended the copy and our `CopyDone` is queued or sent; reading the rest.
    Draining(Box<SimpleQuery>),
    /// The answer is known (end-of-timeline data, or a plain end); hand it out next.
    Ended(Option<EndOfTimeline>),
    /// Over; the connection is ready for queries.
    Done,
    /// A transport or protocol failure; the connection is unusable.
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Streaming => "streaming",
            State::Draining(_) => "ending",
            State::Ended(_) | State::Done => "ended",
            State::Failed => "failed",
        }
    }
}

/// A physical replication stream (the connection in CopyBoth mode).
#[derive(Debug)]
pub struct ReplicationStream {
    conn: Connection,
    state: State,
}

impl Connection {
    /// `START_REPLICATION [SLOT slot] PHYSICAL start TIMELINE timeline`.
    ///
    /// When `start` is exactly where `timeline` ended on this server, the server does not
    /// stream at all; the stream then yields [`ReplicationMessage::EndOfTimeline`] at once.
    ///
    /// # Errors
    /// [`Error::Server`] when the server refuses (unknown slot, timeline not in its
    /// history…); the connection is consumed either way. Errors the server reports after
    /// entering copy mode (WAL already removed, start ahead of its flush position) come from
    /// [`ReplicationStream::next`].
    pub async fn start_physical(
        mut self,
        slot: Option<&str>,
        start: Lsn,
        timeline: TimeLineId,
    ) -> Result<ReplicationStream, Error> {
        let sql = commands::start_physical(slot, start, Some(timeline))
            .map_err(|source| Error::Encode { source })?;
        let state = match self.query_or_copy(&sql).await? {
            Answer::CopyBoth => State::Streaming,
            Answer::Done(outcome) => State::Ended(self.end_of_timeline(&outcome)?),
        };
        Ok(ReplicationStream { conn: self, state })
    }

    fn end_of_timeline(&self, outcome: &QueryOutcome) -> Result<Option<EndOfTimeline>, Error> {
        outcome
            .results
            .iter()
            .find(|rs| rs.column("next_tli").is_some())
            .map(|rs| EndOfTimeline::from_result(rs).map_err(|e| self.protocol(e)))
            .transpose()
    }
}

impl ReplicationStream {
    /// The next message; `Ok(None)` once the stream is over.
    ///
    /// When the server ends the copy (end of a historic timeline), this answers with
    /// `CopyDone`, reads the server's result, and yields
    /// [`ReplicationMessage::EndOfTimeline`]; after that the connection is ready for
    /// queries ([`into_connection`](Self::into_connection)).
    ///
    /// # Errors
    /// [`Error::Server`] for an error the server reports while streaming (e.g. requested
    /// WAL already removed); [`Error::Closed`] when the server goes away (shutdown ends
    /// the stream this way); I/O and protocol errors.
    pub async fn next(&mut self) -> Result<Option<ReplicationMessage>, Error> {
        loop {
            match &mut self.state {
                State::Streaming => {
                    let msg = self.read().await?;
                    match msg {
                        BackendMessage::CopyData(payload) => {
                            return self.decode(&payload).map(Some);
                        }
                        BackendMessage::CopyDone => {
                            frontend::copy_done(self.conn.io.write_buf());
                            self.state = State::Draining(Box::default());
                        }
                        // An error ends copy mode on the server's side; at shutdown the
                        // walsender ends it with a bare CommandComplete and closes. Either
                        // way, read on as a query response.
                        msg @ (BackendMessage::ErrorResponse(_)
                        | BackendMessage::CommandComplete { .. }) => {
                            let mut q = SimpleQuery::new();
                            let _ = q.handle(msg);
                            self.state = State::Draining(Box::new(q));
                        }
                        other => return Err(self.unexpected(other.name())),
                    }
                }
                State::Draining(_) => {
                    if let Err(e) = self.conn.io.flush().await {
                        self.state = State::Failed;
                        return Err(e);
                    }
                    let msg = self.read().await?;
                    let State::Draining(q) = &mut self.state else {
                        continue;
                    };
                    match q.handle(msg) {
                        Ok(QueryStep::Read) => {}
                        Ok(QueryStep::Done(outcome)) => {
                            let eot = self.conn.end_of_timeline(&outcome);
                            self.state = State::Done;
                            return Ok(eot?.map(|e| ReplicationMessage::EndOfTimeline {
                                next_tli: e.next_tli,
                                next_start: e.next_start,
                            }));
                        }
                        Ok(QueryStep::CopyBoth(_)) => {
                            return Err(self.unexpected("CopyBothResponse"));
                        }
                        Err(e) => {
                            // ReadyForQuery came: the connection is usable again.
                            self.state = State::Done;
                            return Err(Error::from_query(self.conn.target(), e));
                        }
                    }
                }
                State::Ended(eot) => {
                    let eot = eot.take();
                    self.state = State::Done;
                    return Ok(eot.map(|e| ReplicationMessage::EndOfTimeline {
                        next_tli: e.next_tli,
                        next_start: e.next_start,
                    }));
                }
                State::Done | State::Failed => return Ok(None),
            }
        }
    }

    /// Sends a standby status update. `flush` and `apply` are sent as given — pass
    /// [`Lsn::INVALID`] for "not reported"; they are never replaced by `write`. `now` is the
    /// caller's clock.
    ///
    /// # Errors
    /// [`Error::StreamState`] when the stream is no longer in copy mode; I/O errors.
    pub async fn send_status(
        &mut self,
        write: Lsn,
        flush: Lsn,
        apply: Lsn,
        reply_requested: bool,
        now: SystemTime,
    ) -> Result<(), Error> {
        self.ensure_streaming()?;
        let update = StandbyStatusUpdate {
            write,
            flush,
            apply,
            client_time: PgTimestamp::from_system_time(now),
            reply_requested,
        };
        update.encode_copy_data(self.conn.io.write_buf());
        self.flush().await
    }

    /// Sends hot standby feedback (rarely useful for an archiver; all-zero xmins release
    /// any horizon held for this connection).
    ///
    /// # Errors
    /// [`Error::StreamState`] when the stream is no longer in copy mode; I/O errors.
    pub async fn send_hot_standby_feedback(
        &mut self,
        feedback: HotStandbyFeedback,
    ) -> Result<(), Error> {
        self.ensure_streaming()?;
        feedback.encode_copy_data(self.conn.io.write_buf());
        self.flush().await
    }

    /// Ends the stream from our side: sends `CopyDone`, discards WAL still in flight, reads
    /// the server's answer to `ReadyForQuery`, and returns the connection.
    ///
    /// # Errors
    /// [`Error::Server`] if the server reports an error while ending, I/O and protocol
    /// errors, or [`Error::StreamState`] after an earlier transport failure.
    pub async fn finish(mut self) -> Result<Connection, Error> {
        loop {
            match std::mem::replace(&mut self.state, State::Failed) {
                State::Streaming => {
                    frontend::copy_done(self.conn.io.write_buf());
                    self.conn.io.flush().await?;
                    // Until the server's CopyDone, WAL may still arrive: drop it. An error
                    // instead ends the copy on the server's side.
                    let mut q = SimpleQuery::new();
                    loop {
                        match self.conn.next_message().await? {
                            BackendMessage::CopyData(_) => {}
                            BackendMessage::CopyDone => break,
                            other => match q.handle(other) {
                                Ok(QueryStep::Read) => {}
                                Ok(QueryStep::Done(_)) => return Ok(self.conn),
                                Ok(QueryStep::CopyBoth(_)) => {
                                    return Err(self.unexpected("CopyBothResponse"));
                                }
                                Err(e) => return Err(Error::from_query(self.conn.target(), e)),
                            },
                        }
                    }
                    self.state = State::Draining(Box::new(q));
                }
                State::Draining(q) => {
                    self.conn.io.flush().await?;
                    return match self.conn.collect(*q).await? {
                        Answer::Done(_) => Ok(self.conn),
                        Answer::CopyBoth => Err(self.unexpected("CopyBothResponse")),
                    };
                }
                State::Ended(_) | State::Done => return Ok(self.conn),
                State::Failed => return Err(Error::StreamState { state: "failed" }),
            }
        }
    }

    /// The connection, once the stream has ended (after
    /// [`ReplicationMessage::EndOfTimeline`] or `Ok(None)`); otherwise the stream itself.
    ///
    /// # Errors
    /// Gives `self` back while the stream is still in copy mode.
    #[allow(
        clippy::result_large_err,
        reason = "the stream is handed back unchanged, like `Arc::try_unwrap`"
    )]
    pub fn into_connection(self) -> Result<Connection, ReplicationStream> {
        match self.state {
            State::Ended(_) | State::Done => Ok(self.conn),
            _ => Err(self),
        }
    }

    /// Whether the next message is already buffered, so [`ReplicationStream::next`] returns
    /// it without reading the socket (a receiver may then wait before the next socket read
    /// to take a trickle of small messages in one batch).
    pub fn has_buffered_message(&self) -> bool {
        self.conn.io.has_buffered_message()
    }

    /// The underlying connection's accessors (server version, parameters, target…).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn ensure_streaming(&self) -> Result<(), Error> {
        match self.state {
            State::Streaming => Ok(()),
            ref other => Err(Error::StreamState {
                state: other.name(),
            }),
        }
    }

    async fn flush(&mut self) -> Result<(), Error> {
        let r = self.conn.io.flush().await;
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    /// Reads one message; a failure poisons the stream (keeping the server's last error
    /// for a closed connection).
    async fn read(&mut self) -> Result<BackendMessage, Error> {
        match self.conn.next_message().await {
            Ok(m) => Ok(m),
            Err(Error::Closed { target, last_error }) => {
                // The server ended copy mode before it closed (a walsender does so when its
                // server shuts down), or its last word was admin_shutdown: a shutdown, not a
                // connection lost.
                let (drained_error, ended_copy) = match &mut self.state {
                    State::Draining(q) => (q.take_error().map(Box::new), true),
                    _ => (None, false),
                };
                let last_error = drained_error.or(last_error);
                self.state = State::Failed;
                let admin_shutdown = last_error
                    .as_deref()
                    .is_some_and(|e| e.code == SqlState::ADMIN_SHUTDOWN);
                if admin_shutdown || (ended_copy && last_error.is_none()) {
                    Err(Error::ShutDown { target, last_error })
                } else {
                    Err(Error::Closed { target, last_error })
                }
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    fn decode(&mut self, payload: &Bytes) -> Result<ReplicationMessage, Error> {
        let msg = WalSenderMessage::parse(payload).and_then(|m| {
            Ok(match m {
                WalSenderMessage::XLogData(x) => ReplicationMessage::XLogData {
                    start: x.start,
                    end: x.end()?,
                    wal_end: x.wal_end,
                    time: x.send_time,
                    data: x.data,
                },
                WalSenderMessage::Keepalive(k) => ReplicationMessage::Keepalive {
                    wal_end: k.wal_end,
                    time: k.send_time,
                    reply_requested: k.reply_requested,
                },
            })
        });
        msg.map_err(|source| {
            self.state = State::Failed;
            self.conn.protocol(source)
        })
    }

    fn unexpected(&mut self, message: &'static str) -> Error {
        self.state = State::Failed;
        Error::Unexpected {
            target: self.conn.target().to_owned(),
            message,
            during: "in the replication stream",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::BytesMut;
    use pgwalrus_proto::replication::{PrimaryKeepalive, XLogData};
    use pgwalrus_proto::{CopyResponse, DataRow, FieldDescription, ServerError, TransactionStatus};
    use tokio::io::{AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::test_support::{connected, frame, read_message};

    fn copy_data(build: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut payload = BytesMut::new();
        build(&mut payload);
        frame(&[BackendMessage::CopyData(payload.freeze())])
    }

    fn column(name: &str) -> FieldDescription {
        FieldDescription {
            name: name.into(),
            table_oid: 0,
            column_id: 0,
            type_oid: 25,
            type_size: -1,
            type_modifier: -1,
            format: 0,
        }
    }

    /// The walsender's end of a historic timeline, after the client's CopyDone.
    fn end_of_timeline(tli: &str, lsn: &str) -> Vec<u8> {
        frame(&[
            BackendMessage::RowDescription(vec![column("next_tli"), column("next_tli_startpos")]),
            BackendMessage::DataRow(DataRow {
                values: vec![
                    Some(Bytes::copy_from_slice(tli.as_bytes())),
                    Some(Bytes::copy_from_slice(lsn.as_bytes())),
                ],
            }),
            BackendMessage::CommandComplete {
                tag: "START_STREAMING".into(),
            },
            BackendMessage::CommandComplete {
                tag: "START_REPLICATION".into(),
            },
            BackendMessage::ReadyForQuery(TransactionStatus::Idle),
        ])
    }

    async fn expect_query(server: &mut DuplexStream, sql: &str) {
        let (tag, body) = read_message(server).await;
        assert_eq!(tag, b'Q');
        assert_eq!(&body[..body.len() - 1], sql.as_bytes());
    }

    fn copy_both() -> Vec<u8> {
        frame(&[BackendMessage::CopyBothResponse(CopyResponse {
            format: 0,
            column_formats: vec![],
        })])
    }

    /// `next()` polled under a tiny timeout, cancelled again and again while a frame
    /// trickles in byte runs, loses nothing; the end of the timeline is answered with
    /// CopyDone and the connection comes back.
    #[tokio::test]
    async fn next_is_cancel_safe_and_follows_the_end_of_a_timeline() {
        let (conn, mut server) = connected().await;
        let wal: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let expected = wal.clone();
        let script = tokio::spawn(async move {
            expect_query(
                &mut server,
                "START_REPLICATION PHYSICAL 0/3000000 TIMELINE 1",
            )
            .await;
            server.write_all(&copy_both()).await.unwrap();
            let x = copy_data(|b| {
                XLogData {
                    start: Lsn::new(0x300_0000),
                    wal_end: Lsn::new(0x300_1388),
                    send_time: PgTimestamp(7),
                    data: Bytes::from(wal),
                }
                .encode_payload(b)
            });
            for piece in x.chunks(999) {
                server.write_all(piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            let k = copy_data(|b| {
                PrimaryKeepalive {
                    wal_end: Lsn::new(0x300_1388),
                    send_time: PgTimestamp(8),
                    reply_requested: true,
                }
                .encode_payload(b)
            });
            server.write_all(&k).await.unwrap();
            // Our status update arrives as CopyData 'r'.
            let (tag, body) = read_message(&mut server).await;
            assert_eq!((tag, body[0]), (b'd', b'r'));
            let update = StandbyStatusUpdate::parse(&body).unwrap();
            assert_eq!(
                (update.write, update.flush, update.apply),
                (Lsn::new(0x300_1388), Lsn::INVALID, Lsn::INVALID)
            );
            // End of the historic timeline.
            server
                .write_all(&frame(&[BackendMessage::CopyDone]))
                .await
                .unwrap();
            assert_eq!(read_message(&mut server).await.0, b'c');
            server
                .write_all(&end_of_timeline("2", "0/3001388"))
                .await
                .unwrap();
            expect_query(&mut server, "IDENTIFY_SYSTEM").await;
            server
        });

        let mut stream = conn
            .start_physical(None, Lsn::new(0x300_0000), TimeLineId::ONE)
            .await
            .unwrap();
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_millis(3), stream.next()).await {
                Err(_) => continue,
                Ok(r) => match r.unwrap() {
                    None => break,
                    Some(m) => {
                        if let ReplicationMessage::Keepalive {
                            wal_end,
                            reply_requested: true,
                            ..
                        } = m
                        {
                            stream
                                .send_status(
                                    wal_end,
                                    Lsn::INVALID,
                                    Lsn::INVALID,
                                    false,
                                    SystemTime::UNIX_EPOCH,
                                )
                                .await
                                .unwrap();
                        }
                        got.push(m);
                    }
                },
            }
        }
        assert_eq!(got.len(), 3, "{got:?}");
        let ReplicationMessage::XLogData {
            start,
            end,
            data,
            time,
            ..
        } = &got[0]
        else {
            panic!("{:?}", got[0])
        };
        assert_eq!(
            (*start, *end, *time),
            (Lsn::new(0x300_0000), Lsn::new(0x300_1388), PgTimestamp(7))
        );
        assert_eq!(&data[..], &expected[..]);
        assert!(matches!(
            got[1],
            ReplicationMessage::Keepalive {
                reply_requested: true,
                ..
            }
        ));
        assert_eq!(
            got[2],
            ReplicationMessage::EndOfTimeline {
                next_tli: TimeLineId::new(2).unwrap(),
                next_start: Lsn::new(0x300_1388)
            }
        );
        assert!(matches!(
            stream
                .send_status(
                    Lsn::INVALID,
                    Lsn::INVALID,
                    Lsn::INVALID,
                    false,
                    SystemTime::UNIX_EPOCH
                )
                .await,
            Err(Error::StreamState { .. })
        ));
        let mut conn = stream.into_connection().unwrap();
        // The next query goes out on the same connection.
        frontend::query("IDENTIFY_SYSTEM", conn.io.write_buf()).unwrap();
        conn.io.flush().await.unwrap();
        script.await.unwrap();
    }

    /// At shutdown the walsender ends copy mode with a bare CommandComplete and closes: a
    /// shutdown, not a connection lost.
    #[tokio::test]
    async fn shutdown_ends_with_a_transient_shut_down_error() {
        let (conn, mut server) = connected().await;
        let script = tokio::spawn(async move {
            expect_query(
                &mut server,
                "START_REPLICATION SLOT \"s\" PHYSICAL 0/0 TIMELINE 1",
            )
            .await;
            server.write_all(&copy_both()).await.unwrap();
            server
                .write_all(&frame(&[BackendMessage::CommandComplete {
                    tag: "COPY 0".into(),
                }]))
                .await
                .unwrap();
        });
        let mut stream = conn
            .start_physical(Some("s"), Lsn::INVALID, TimeLineId::ONE)
            .await
            .unwrap();
        script.await.unwrap();
        let e = stream.next().await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::ShutDown {
                    last_error: None,
                    ..
                }
            ) && e.is_transient(),
            "{e}"
        );
        assert_eq!(stream.next().await.unwrap(), None);
        assert!(stream.into_connection().is_err());
    }

    /// How a stream that ends with the connection is told: by what the server sent
    /// before closing, and the SQLSTATE of its error, never by the error's text.
    #[tokio::test]
    async fn a_closed_stream_is_a_shutdown_only_after_admin_shutdown_or_a_clean_end() {
        // FATAL 57P01 (admin_shutdown, worded in another language here), then the close.
        let shutdown = ServerError::parse(b"SFATAL\0VFATAL\0C57P01\0Mau revoir\0\0").unwrap();
        // FATAL with another SQLSTATE, then the close: a connection lost, with its reason.
        let other = ServerError::parse(b"SFATAL\0VFATAL\0C57P02\0Mcrash\0\0").unwrap();
        for (last, want_shutdown) in [(Some(shutdown), true), (Some(other), false), (None, false)] {
            let (conn, mut server) = connected().await;
            let sent = last.clone();
            let script = tokio::spawn(async move {
                expect_query(&mut server, "START_REPLICATION PHYSICAL 0/0 TIMELINE 1").await;
                server.write_all(&copy_both()).await.unwrap();
                if let Some(e) = sent {
                    server
                        .write_all(&frame(&[BackendMessage::ErrorResponse(e)]))
                        .await
                        .unwrap();
                }
            });
            let mut stream = conn
                .start_physical(None, Lsn::INVALID, TimeLineId::ONE)
                .await
                .unwrap();
            script.await.unwrap();
            let e = stream.next().await.unwrap_err();
            assert!(e.is_transient(), "{e}");
            assert_eq!(matches!(e, Error::ShutDown { .. }), want_shutdown, "{e}");
            assert_eq!(
                e.server_error().map(ServerError::code),
                last.as_ref().map(ServerError::code),
                "{e}"
            );
        }
    }

    /// A query answered with FATAL admin_shutdown and a close is a shutdown too; another
    /// FATAL is a connection closed, with the server's reason.
    #[tokio::test]
    async fn a_query_cut_by_admin_shutdown_is_a_shutdown() {
        for (code, want_shutdown) in [(&b"57P01"[..], true), (b"57P02", false)] {
            let (mut conn, mut server) = connected().await;
            let mut raw = b"SFATAL\0VFATAL\0C".to_vec();
            raw.extend_from_slice(code);
            raw.extend_from_slice(b"\0Mbye\0\0");
            let error = ServerError::parse(&raw).unwrap();
            let script = tokio::spawn(async move {
                expect_query(&mut server, "IDENTIFY_SYSTEM").await;
                server
                    .write_all(&frame(&[BackendMessage::ErrorResponse(error)]))
                    .await
                    .unwrap();
            });
            let e = conn.identify_system().await.unwrap_err();
            script.await.unwrap();
            assert!(e.is_transient(), "{e}");
            assert_eq!(matches!(e, Error::ShutDown { .. }), want_shutdown, "{e}");
            assert!(e.server_error().is_some(), "{e}");
        }
    }

    /// `finish()` sends CopyDone, drops WAL still in flight, and reads to ReadyForQuery.
    #[tokio::test]
    async fn finish_drains_to_ready_for_query() {
        let (conn, mut server) = connected().await;
        let script = tokio::spawn(async move {
            expect_query(
                &mut server,
                "START_REPLICATION PHYSICAL 0/1000000 TIMELINE 3",
            )
            .await;
            server.write_all(&copy_both()).await.unwrap();
            assert_eq!(read_message(&mut server).await.0, b'c');
            let x = copy_data(|b| {
                XLogData {
                    start: Lsn::new(0x100_0000),
                    wal_end: Lsn::new(0x100_0004),
                    send_time: PgTimestamp(0),
                    data: Bytes::from_static(b"late"),
                }
                .encode_payload(b)
            });
            server.write_all(&x).await.unwrap();
            server
                .write_all(&frame(&[
                    BackendMessage::CopyDone,
                    BackendMessage::CommandComplete {
                        tag: "START_STREAMING".into(),
                    },
                    BackendMessage::CommandComplete {
                        tag: "START_REPLICATION".into(),
                    },
                    BackendMessage::ReadyForQuery(TransactionStatus::Idle),
                ]))
                .await
                .unwrap();
        });
        let stream = conn
            .start_physical(None, Lsn::new(0x100_0000), TimeLineId::new(3).unwrap())
            .await
            .unwrap();
        let conn = stream.finish().await.unwrap();
        script.await.unwrap();
        assert_eq!(conn.server_version_num(), 160_004);
    }

    /// START_REPLICATION exactly at the end of a historic timeline: no copy at all.
    #[tokio::test]
    async fn result_set_without_copy_is_the_end_of_the_timeline() {
        let (conn, mut server) = connected().await;
        let script = tokio::spawn(async move {
            expect_query(
                &mut server,
                "START_REPLICATION PHYSICAL 0/3001388 TIMELINE 1",
            )
            .await;
            server
                .write_all(&end_of_timeline("2", "0/3001388"))
                .await
                .unwrap();
        });
        let mut stream = conn
            .start_physical(None, Lsn::new(0x300_1388), TimeLineId::ONE)
            .await
            .unwrap();
        script.await.unwrap();
        assert_eq!(
            stream.next().await.unwrap(),
            Some(ReplicationMessage::EndOfTimeline {
                next_tli: TimeLineId::new(2).unwrap(),
                next_start: Lsn::new(0x300_1388)
            })
        );
        assert_eq!(stream.next().await.unwrap(), None);
        assert!(stream.into_connection().is_ok());
    }
}
