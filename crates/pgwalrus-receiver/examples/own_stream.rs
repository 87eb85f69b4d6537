//! Streams WAL into an archive directory over TCP connections this program opens itself;
//! pgwalrus does TLS, startup and authentication over them ([`FromStreams`]). Reconnects go
//! through the same closure, so the program decides how every connection is made.
//!
//! ```text
//! own_stream HOST PORT USER ARCHIVE_DIR END_LSN [SLOT]
//! ```
//!
//! Stops once everything up to `END_LSN` is durable in `ARCHIVE_DIR`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line program reports on its terminal"
)]

use std::process::ExitCode;

use pgwalrus_client::config::{Config, Host, HostSpec};
use pgwalrus_receiver::{FromStreams, ReceiveSettings, Shutdown};
use tokio::net::TcpStream;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, user, dir, end, rest @ ..] = args.as_slice() else {
        eprintln!("usage: own_stream HOST PORT USER ARCHIVE_DIR END_LSN [SLOT]");
        return ExitCode::from(2);
    };
    let (Ok(port), Ok(endpos)) = (port.parse::<u16>(), end.parse()) else {
        eprintln!("own_stream: PORT must be a number and END_LSN an LSN like 0/3000000");
        return ExitCode::from(2);
    };
    let config = match Config::from_conninfo(&format!(
        "user={user} replication=true dbname=replication application_name=own_stream"
    )) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("own_stream: {e}");
            return ExitCode::from(2);
        }
    };
    let mut settings = ReceiveSettings::new(dir);
    settings.endpos = Some(endpos);
    settings.slot = rest.first().cloned();
    let server = HostSpec {
        host: Host::Tcp(host.clone()),
        hostaddr: None,
        port,
    };
    let address = format!("{host}:{port}");
    // The program's own connections: here a plain TcpStream, but any AsyncRead + AsyncWrite.
    let source = FromStreams::new(config, server, move || TcpStream::connect(address.clone()));
    let engine = match pgwalrus_receiver::spawn("own-stream", settings, source, Shutdown::never()) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("own_stream: could not start the engine: {e}");
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
            eprintln!("own_stream: {} ({})", reason.error.chain(), reason.kind);
            ExitCode::from(1)
        }
    }
}
