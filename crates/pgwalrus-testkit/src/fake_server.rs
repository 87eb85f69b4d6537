//! A scripted fake replication server on 127.0.0.1, for tests of what pgwalrus does when a
//! server lies or is broken: WAL that does not continue where the last chunk ended, a
//! message length of gigabytes, CopyData outside a copy, an error in the middle of a copy.
//!
//! It answers startup (trust: no password asked), `IDENTIFY_SYSTEM`, `SHOW` and
//! `TIMELINE_HISTORY` the way a PostgreSQL 16 walsender does, and after `START_REPLICATION`
//! plays its script: raw wire bytes, written as given. Each accepted connection plays the
//! next [`Script`]; connections past the last one are accepted and held without a word, so a
//! client that reconnects stays alive (and measurable) without being served again.
//!
//! The messages are encoded here, byte by byte, and not with `pgwalrus-proto`: a lie must be
//! expressible even where the proto crate's encoder would refuse it, and an encoder shared
//! with the parser under test could hide a bug in both.
//!
//! ```no_run
//! use pgwalrus_testkit::fake_server::{FakeServer, Script, xlog_data};
//!
//! let script = Script::new(1, 0x100_0000).stream(vec![
//!     xlog_data(0x100_0000, 0x100_0000 + 8192, &[0; 8192]),
//!     // The lie: the next chunk skips a page.
//!     xlog_data(0x100_0000 + 16384, 0x100_0000 + 24576, &[0; 8192]),
//! ]);
//! let server = FakeServer::start(vec![script]);
//! let conninfo = server.conninfo();
//! # let _ = conninfo;
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The system identifier the fake server reports, unless a script says otherwise: the one
/// pgwalrus-wal's test WAL writer puts in long page headers.
pub const SYSTEM_ID: u64 = 7_000_000_000_000_000_001;

/// `SSLRequest` and `GSSENCRequest` codes in a startup-phase packet.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

/// What one connection is answered.
#[derive(Debug, Clone)]
pub struct Script {
    system_id: u64,
    timeline: u32,
    xlogpos: u64,
    wal_segment_size: String,
    histories: Vec<(u32, String)>,
    answers: Vec<(String, Vec<u8>)>,
    stream: Vec<Vec<u8>>,
    close_after_stream: bool,
}

impl Script {
    /// A server on `timeline` whose flush position (`IDENTIFY_SYSTEM`'s `xlogpos`) is
    /// `xlogpos`, with 1 MB segments and an empty stream.
    pub fn new(timeline: u32, xlogpos: u64) -> Script {
        Script {
            system_id: SYSTEM_ID,
            timeline,
            xlogpos,
            wal_segment_size: "1MB".to_owned(),
            histories: Vec::new(),
            answers: Vec::new(),
            stream: Vec::new(),
            close_after_stream: false,
        }
    }

    /// `SHOW wal_segment_size` answers `size` (as the server prints it: `16MB`, `1GB`).
    pub fn wal_segment_size(mut self, size: &str) -> Script {
        size.clone_into(&mut self.wal_segment_size);
        self
    }

    /// `TIMELINE_HISTORY tli` answers `content`.
    pub fn history(mut self, tli: u32, content: &str) -> Script {
        self.histories.push((tli, content.to_owned()));
        self
    }

    /// A query starting with `prefix` is answered with `bytes` as they are (which should end
    /// with [`ready_for_query`] when the client is to go on).
    pub fn answer(mut self, prefix: &str, bytes: Vec<u8>) -> Script {
        self.answers.push((prefix.to_owned(), bytes));
        self
    }

    /// After `START_REPLICATION`'s CopyBothResponse, `chunks` are written in order. A chunk
    /// that begins with [`copy_done`] ends the copy from the server's side: the client's
    /// CopyDone then gets no answer of its own (the script says what follows).
    pub fn stream(mut self, chunks: Vec<Vec<u8>>) -> Script {
        self.stream = chunks;
        self
    }

    /// End the connection once the stream is written (as a server process that exits after
    /// a `FATAL`), instead of reading on for the client's next command.
    pub fn close_after_stream(mut self) -> Script {
        self.close_after_stream = true;
        self
    }
}

/// A fake server listening on 127.0.0.1; it stops with the test process (its threads only
/// ever block on its own sockets).
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    queries: Arc<Mutex<Vec<String>>>,
}

impl FakeServer {
    /// Starts listening on a free port; connection `i` plays `scripts[i]`.
    ///
    /// # Panics
    /// When no port can be bound.
    pub fn start(scripts: Vec<Script>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (accepted.clone(), queries.clone());
        thread::spawn(move || {
            let mut scripts = scripts.into_iter();
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let script = scripts.next();
                let log = log.clone();
                thread::spawn(move || {
                    let _ = match script {
                        Some(script) => serve(conn, &script, &log),
                        None => hold(conn),
                    };
                });
            }
        });
        FakeServer {
            addr,
            accepted,
            queries,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A conninfo for a replication connection to it, without TLS.
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=walrus sslmode=disable",
            self.addr.port()
        )
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The queries received so far, over all connections, in order.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().map(|q| q.clone()).unwrap_or_default()
    }
}

/// Reads until the client goes, answering nothing.
fn hold(mut conn: TcpStream) -> io::Result<()> {
    let mut sink = [0; 4096];
    while conn.read(&mut sink)? > 0 {}
    Ok(())
}

fn serve(mut conn: TcpStream, script: &Script, log: &Mutex<Vec<String>>) -> io::Result<()> {
    conn.set_nodelay(true)?;
    // Startup: refuse TLS and GSS encryption, then trust whoever asks.
    loop {
        let len = read_u32(&mut conn)? as usize;
        let mut body = vec![0; len.saturating_sub(4)];
        conn.read_exact(&mut body)?;
        let code = body
            .get(..4)
            .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        if code == SSL_REQUEST || code == GSSENC_REQUEST {
            conn.write_all(b"N")?;
            continue;
        }
        break;
    }
    let mut hello = message(b'R', &0i32.to_be_bytes());
    for (name, value) in [
        ("server_version", "16.4"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("integer_datetimes", "on"),
        ("in_hot_standby", "off"),
    ] {
        hello.extend(message(b'S', &cstrings(&[name, value])));
    }
    let mut key = 4242i32.to_be_bytes().to_vec();
    key.extend(1234i32.to_be_bytes());
    hello.extend(message(b'K', &key));
    hello.extend(ready_for_query());
    conn.write_all(&hello)?;

    let mut copy_ended = false;
    loop {
        let mut tag = [0; 1];
        if conn.read(&mut tag)? == 0 {
            return Ok(());
        }
        let len = read_u32(&mut conn)? as usize;
        let mut body = vec![0; len.saturating_sub(4)];
        conn.read_exact(&mut body)?;
        match tag[0] {
            b'Q' => {
                let query = String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap_or(&body))
                    .trim()
                    .to_owned();
                if let Ok(mut l) = log.lock() {
                    l.push(query.clone());
                }
                if query.starts_with("START_REPLICATION") {
                    if let Some(answer) = answer(script, &query) {
                        conn.write_all(&answer)?;
                        continue;
                    }
                    // CopyBothResponse: text format, no columns.
                    conn.write_all(&message(b'W', &[0, 0, 0]))?;
                    for chunk in &script.stream {
                        conn.write_all(chunk)?;
                    }
                    copy_ended = script
                        .stream
                        .iter()
                        .any(|chunk| chunk.starts_with(&copy_done()));
                    conn.flush()?;
                    if script.close_after_stream {
                        // End of file for the client, then read what it still sends until
                        // it goes: closing with its status updates unread would reset the
                        // connection, and the client could lose what was written before.
                        conn.shutdown(std::net::Shutdown::Write)?;
                        conn.set_read_timeout(Some(Duration::from_secs(30)))?;
                        return hold(conn);
                    }
                    continue;
                }
                let reply =
                    answer(script, &query).unwrap_or_else(|| default_answer(script, &query));
                conn.write_all(&reply)?;
            }
            // The client's CopyDone ends the copy: answer as a walsender does.
            b'c' if !copy_ended => {
                copy_ended = true;
                let mut reply = message(b'c', &[]);
                reply.extend(command_complete("START_STREAMING"));
                reply.extend(ready_for_query());
                conn.write_all(&reply)?;
            }
            b'X' => return Ok(()),
            // Status updates and anything else the client sends in copy mode.
            _ => {}
        }
    }
}

fn answer(script: &Script, query: &str) -> Option<Vec<u8>> {
    script
        .answers
        .iter()
        .find(|(prefix, _)| query.starts_with(prefix.as_str()))
        .map(|(_, bytes)| bytes.clone())
}

fn default_answer(script: &Script, query: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if query == "IDENTIFY_SYSTEM" {
        out.extend(row_description(&[
            ("systemid", TEXT),
            ("timeline", INT8),
            ("xlogpos", TEXT),
            ("dbname", TEXT),
        ]));
        let pos = format!(
            "{:X}/{:X}",
            script.xlogpos >> 32,
            script.xlogpos & 0xffff_ffff
        );
        out.extend(data_row(&[
            Some(&script.system_id.to_string()),
            Some(&script.timeline.to_string()),
            Some(&pos),
            None,
        ]));
        out.extend(command_complete("IDENTIFY_SYSTEM"));
    } else if let Some(name) = query.strip_prefix("SHOW ") {
        let name = name.trim_matches('"');
        let value = match name {
            "wal_segment_size" => Some(script.wal_segment_size.as_str()),
            "data_directory_mode" => Some("0700"),
            _ => None,
        };
        match value {
            Some(value) => {
                out.extend(row_description(&[(name, TEXT)]));
                out.extend(data_row(&[Some(value)]));
                out.extend(command_complete("SHOW"));
            }
            None => out.extend(error_response(
                "ERROR",
                "42704",
                &format!("unrecognized configuration parameter \"{name}\""),
            )),
        }
    } else if let Some(tli) = query.strip_prefix("TIMELINE_HISTORY ") {
        let tli: u32 = tli.trim().parse().unwrap_or(0);
        match script.histories.iter().find(|(t, _)| *t == tli) {
            Some((_, content)) => {
                out.extend(row_description(&[("filename", TEXT), ("content", TEXT)]));
                out.extend(data_row(&[
                    Some(&format!("{tli:08X}.history")),
                    Some(content),
                ]));
                out.extend(command_complete("TIMELINE_HISTORY"));
            }
            None => out.extend(error_response(
                "ERROR",
                "58P01",
                &format!(
                    "could not open file \"pg_wal/{tli:08X}.history\": No such file or directory"
                ),
            )),
        }
    } else {
        out.extend(error_response(
            "ERROR",
            "42601",
            &format!("the fake server does not know the command \"{query}\""),
        ));
    }
    out.extend(ready_for_query());
    out
}

/// Type OID of `text`.
pub const TEXT: u32 = 25;
/// Type OID of `int8`.
pub const INT8: u32 = 20;

/// A backend message: `tag`, the length word (counting itself), `body`.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len() + 4).expect("message fits the length word");
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(tag);
    out.extend(len.to_be_bytes());
    out.extend(body);
    out
}

/// Only a message header: `tag` and a length word claiming `len` (the lie of a message of
/// gigabytes needs nothing more).
pub fn header(tag: u8, len: u32) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(len.to_be_bytes());
    out
}

/// `CopyData` carrying `payload`.
pub fn copy_data(payload: &[u8]) -> Vec<u8> {
    message(b'd', payload)
}

/// `CopyDone`.
pub fn copy_done() -> Vec<u8> {
    message(b'c', &[])
}

/// `CopyData` with an XLogData (`w`) payload: WAL `data` from `start`, the server's end of
/// WAL `wal_end`, send time 0.
pub fn xlog_data(start: u64, wal_end: u64, data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(25 + data.len());
    payload.push(b'w');
    payload.extend(start.to_be_bytes());
    payload.extend(wal_end.to_be_bytes());
    payload.extend(0i64.to_be_bytes());
    payload.extend(data);
    copy_data(&payload)
}

/// `CopyData` with a primary keepalive (`k`).
pub fn keepalive(wal_end: u64, reply_requested: bool) -> Vec<u8> {
    let mut payload = vec![b'k'];
    payload.extend(wal_end.to_be_bytes());
    payload.extend(0i64.to_be_bytes());
    payload.push(u8::from(reply_requested));
    copy_data(&payload)
}

/// `ErrorResponse` with a severity (`ERROR`, `FATAL`), SQLSTATE and message.
pub fn error_response(severity: &str, sqlstate: &str, text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', sqlstate),
        (b'M', text),
    ] {
        body.push(field);
        body.extend(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    message(b'E', &body)
}

/// `CommandComplete` with `tag`.
pub fn command_complete(tag: &str) -> Vec<u8> {
    message(b'C', &cstrings(&[tag]))
}

/// `ReadyForQuery`, idle.
pub fn ready_for_query() -> Vec<u8> {
    message(b'Z', b"I")
}

/// `RowDescription` of text-format columns `(name, type oid)`.
pub fn row_description(columns: &[(&str, u32)]) -> Vec<u8> {
    let count = i16::try_from(columns.len()).expect("column count");
    let mut body = count.to_be_bytes().to_vec();
    for (name, oid) in columns {
        body.extend(name.as_bytes());
        body.push(0);
        body.extend(0u32.to_be_bytes()); // table
        body.extend(0i16.to_be_bytes()); // column
        body.extend(oid.to_be_bytes());
        body.extend((-1i16).to_be_bytes()); // size
        body.extend((-1i32).to_be_bytes()); // modifier
        body.extend(0i16.to_be_bytes()); // text format
    }
    message(b'T', &body)
}

/// `DataRow` of text values (`None` is NULL).
pub fn data_row(values: &[Option<&str>]) -> Vec<u8> {
    let count = i16::try_from(values.len()).expect("value count");
    let mut body = count.to_be_bytes().to_vec();
    for value in values {
        match value {
            Some(v) => {
                let len = i32::try_from(v.len()).expect("value length");
                body.extend(len.to_be_bytes());
                body.extend(v.as_bytes());
            }
            None => body.extend((-1i32).to_be_bytes()),
        }
    }
    message(b'D', &body)
}

fn cstrings(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend(p.as_bytes());
        out.push(0);
    }
    out
}

fn read_u32(conn: &mut TcpStream) -> io::Result<u32> {
    let mut word = [0; 4];
    conn.read_exact(&mut word)?;
    Ok(u32::from_be_bytes(word))
}
