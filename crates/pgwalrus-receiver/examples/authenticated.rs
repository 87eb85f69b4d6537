//! Streams WAL over connections this program set up and authenticated itself — the
//! situation of a backup tool that already speaks to the server — and then hands over to
//! pgwalrus with [`Connection::adopt`] ([`FromFn`]). pgwalrus learns the server version,
//! segment size and system identity with replication commands.
//!
//! ```text
//! authenticated HOST PORT USER ARCHIVE_DIR END_LSN [PASSWORD]
//! ```
//!
//! The program's own startup handles `trust` and cleartext `password` authentication; a
//! real tool would have its own. Stops once everything up to `END_LSN` is durable.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line program reports on its terminal"
)]

use std::process::ExitCode;

use bytes::BytesMut;
use pgwalrus_client::config::{Host, HostSpec};
use pgwalrus_client::{Connection, Error as ClientError};
use pgwalrus_proto::BackendMessage;
use pgwalrus_proto::backend::Authentication;
use pgwalrus_proto::frontend::StartupMessage;
use pgwalrus_receiver::{FromFn, ReceiveSettings, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens a TCP connection, sends a replication startup packet and authenticates, reading up
/// to the server's first `ReadyForQuery` and not one byte further.
async fn own_startup(
    address: &str,
    user: &str,
    password: Option<&str>,
) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(address).await?;
    let mut out = BytesMut::new();
    StartupMessage::new(user)
        .database("replication")
        .replication("true")
        .application_name("authenticated")
        .encode(&mut out)
        .map_err(std::io::Error::other)?;
    stream.write_all(&out).await?;
    let mut buf = BytesMut::new();
    loop {
        // One message at a time: a header, then exactly its body, so nothing past
        // ReadyForQuery is consumed here.
        let mut header = [0u8; 5];
        stream.read_exact(&mut header).await?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if !(4..=1 << 20).contains(&len) {
            return Err(std::io::Error::other(format!("bad message length {len}")));
        }
        let mut body = vec![0u8; len - 4];
        stream.read_exact(&mut body).await?;
        buf.extend_from_slice(&header);
        buf.extend_from_slice(&body);
        let message = BackendMessage::parse(&mut buf)
            .map_err(std::io::Error::other)?
            .ok_or_else(|| std::io::Error::other("incomplete message"))?;
        match message {
            BackendMessage::Authentication(Authentication::Ok) => {}
            BackendMessage::Authentication(Authentication::CleartextPassword) => {
                let Some(password) = password else {
                    return Err(std::io::Error::other("the server wants a password"));
                };
                let mut reply = BytesMut::new();
                reply.extend_from_slice(b"p");
                reply.extend_from_slice(
                    &u32::try_from(password.len() + 5)
                        .unwrap_or(u32::MAX)
                        .to_be_bytes(),
                );
                reply.extend_from_slice(password.as_bytes());
                reply.extend_from_slice(&[0]);
                stream.write_all(&reply).await?;
            }
            BackendMessage::Authentication(other) => {
                return Err(std::io::Error::other(format!(
                    "this example does not do {} authentication",
                    BackendMessage::Authentication(other).name()
                )));
            }
            BackendMessage::ErrorResponse(e) => {
                return Err(std::io::Error::other(format!("server refused: {e}")));
            }
            BackendMessage::ReadyForQuery(_) => return Ok(stream),
            // ParameterStatus, BackendKeyData, notices: nothing this program needs.
            _ => {}
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, user, dir, end, rest @ ..] = args.as_slice() else {
        eprintln!("usage: authenticated HOST PORT USER ARCHIVE_DIR END_LSN [PASSWORD]");
        return ExitCode::from(2);
    };
    let (Ok(port), Ok(endpos)) = (port.parse::<u16>(), end.parse()) else {
        eprintln!("authenticated: PORT must be a number and END_LSN an LSN like 0/3000000");
        return ExitCode::from(2);
    };
    let mut settings = ReceiveSettings::new(dir);
    settings.endpos = Some(endpos);
    let server = HostSpec {
        host: Host::Tcp(host.clone()),
        hostaddr: None,
        port,
    };
    let (address, user, password) = (
        format!("{host}:{port}"),
        user.clone(),
        rest.first().cloned(),
    );
    let source = FromFn::new(move || {
        let (address, user, password, server) = (
            address.clone(),
            user.clone(),
            password.clone(),
            server.clone(),
        );
        async move {
            let stream = own_startup(&address, &user, password.as_deref())
                .await
                .map_err(|error| ClientError::Connect {
                    target: address.clone(),
                    error,
                })?;
            Connection::adopt(stream, &server).await
        }
    });
    let engine =
        match pgwalrus_receiver::spawn("authenticated", settings, source, Shutdown::never()) {
            Ok(engine) => engine,
            Err(e) => {
                eprintln!("authenticated: could not start the engine: {e}");
                return ExitCode::from(1);
            }
        };
    let status = engine.status();
    match engine.join() {
        Ok(stopped) => {
            let s = status.borrow();
            println!(
                "stopped: {stopped:?}; {} segment(s) completed, durable up to {}",
                s.segments_completed, s.flushed_lsn
            );
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("authenticated: {} ({})", reason.error.chain(), reason.kind);
            ExitCode::from(1)
        }
    }
}
