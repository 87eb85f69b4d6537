//! Scripted fake servers over in-memory pipes, for unit tests of the I/O layer. (The
//! integration tests in `tests/integration` use real servers.)

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use pgwalrus_proto::{Authentication, BackendMessage, TransactionStatus};
use tokio::io::{AsyncReadExt, DuplexStream};

use crate::config::{Config, ConnParams, Environment};
use crate::connection::Connection;
use crate::error::Error;

struct NoEnv;

impl Environment for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn home_dir(&self) -> Option<PathBuf> {
        Some(PathBuf::from("/nonexistent"))
    }
    fn os_user(&self) -> Option<String> {
        Some("u".into())
    }
}

/// A configuration resolved without the process environment.
pub(crate) fn config(conninfo: &str) -> Config {
    Config::resolve(&ConnParams::parse(conninfo).unwrap(), &NoEnv).unwrap()
}

/// Wire bytes of `msgs`.
pub(crate) fn frame(msgs: &[BackendMessage]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for m in msgs {
        m.encode(&mut buf).unwrap();
    }
    buf.to_vec()
}

/// Reads a length-prefixed startup-phase packet; returns its body.
pub(crate) async fn read_packet(s: &mut DuplexStream) -> Vec<u8> {
    let len = s.read_u32().await.unwrap() as usize;
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await.unwrap();
    body
}

/// Reads one tagged frontend message: (tag, body).
pub(crate) async fn read_message(s: &mut DuplexStream) -> (u8, Vec<u8>) {
    let tag = s.read_u8().await.unwrap();
    let len = s.read_u32().await.unwrap() as usize;
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await.unwrap();
    (tag, body)
}

/// Trust login, `server_version`, key data, ready.
pub(crate) fn ready(version: &str) -> Vec<u8> {
    frame(&[
        BackendMessage::Authentication(Authentication::Ok),
        BackendMessage::ParameterStatus {
            name: "server_version".into(),
            value: version.into(),
        },
        BackendMessage::BackendKeyData {
            process_id: 42,
            secret_key: Bytes::from_static(&[1, 2, 3, 4]),
        },
        BackendMessage::ReadyForQuery(TransactionStatus::Idle),
    ])
}

/// Runs a handshake against a scripted server: `script` gets the server end.
pub(crate) async fn against<F, Fut>(conninfo: &str, script: F) -> Result<Connection, Error>
where
    F: FnOnce(DuplexStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (client, server) = tokio::io::duplex(1 << 16);
    let task = tokio::spawn(script(server));
    let cfg = config(conninfo);
    let result = Connection::handshake(client, &cfg, &cfg.hosts[0]).await;
    task.await.unwrap();
    result
}

/// A connection to a scripted server that has completed startup; the server end is
/// returned for the rest of the script.
pub(crate) async fn connected() -> (Connection, DuplexStream) {
    let (client, mut server) = tokio::io::duplex(1 << 16);
    let serve = tokio::spawn(async move {
        read_packet(&mut server).await;
        tokio::io::AsyncWriteExt::write_all(&mut server, &ready("16.4"))
            .await
            .unwrap();
        server
    });
    let cfg = config("host=db port=5432 user=u sslmode=disable replication=true");
    let conn = Connection::handshake(client, &cfg, &cfg.hosts[0])
        .await
        .unwrap();
    (conn, serve.await.unwrap())
}
