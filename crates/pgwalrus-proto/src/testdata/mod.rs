//! Wire captures from a real PostgreSQL 15 server, for tests.
//!
//! Captured on 127.0.0.1 without TLS by running libpq clients (`psql`, `pg_receivewal` from
//! PostgreSQL 15.18, Debian) under `strace -f -e trace=sendto,recvfrom -xx` against a
//! throwaway cluster, then splitting the two byte streams into protocol frames. Each `.txt`
//! file has one frame per line: `C <hex>` sent by the client, `S <hex>` sent by the server;
//! `#` lines are comments saying what was captured.

/// Which side sent a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Client to server.
    Client,
    /// Server to client.
    Server,
}

/// The frames of one capture file.
pub(crate) fn frames(text: &str) -> Vec<(Dir, Vec<u8>)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (d, hex) = l.split_once(' ').expect("direction and hex");
            let dir = match d {
                "C" => Dir::Client,
                "S" => Dir::Server,
                other => panic!("bad direction {other}"),
            };
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (dir, bytes)
        })
        .collect()
}

/// SCRAM-SHA-256 login of role `walrus` (password `pencil`), then IDENTIFY_SYSTEM, SHOW
/// wal_segment_size, CREATE/READ/DROP_REPLICATION_SLOT `cap_slot`, and a failing
/// TIMELINE_HISTORY 1.
pub(crate) const SCRAM_REPLICATION_COMMANDS: &str =
    include_str!("pg15_scram_replication_commands.txt");
/// MD5 login of role `md5user` (password `pencil`).
pub(crate) const MD5: &str = include_str!("pg15_md5.txt");
/// SCRAM login of role `walrus` with a wrong password.
pub(crate) const SCRAM_WRONG_PASSWORD: &str = include_str!("pg15_scram_wrong_password.txt");
/// The CopyBoth phase of `pg_receivewal`, ended by the client.
pub(crate) const COPYBOTH: &str = include_str!("pg15_copyboth.txt");
