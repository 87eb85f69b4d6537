//! What one engine is asked to do: a plain value, comparable for equality, so a daemon's
//! configuration reload can tell which servers changed. Connection settings are not part of
//! it: they belong to the [`ConnectionSource`](crate::ConnectionSource).

use std::path::PathBuf;
use std::time::Duration;

use pgwalrus_archive::{CompressionSpec, Durability};
use pgwalrus_wal::Lsn;
use tokio::sync::watch;

/// Everything a receive engine needs besides its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveSettings {
    /// The archive directory.
    pub dir: PathBuf,
    /// Replication slot.
    pub slot: Option<String>,
    /// Create the slot (with RESERVE_WAL) at the start of every session.
    pub create_slot: bool,
    /// With `create_slot`: an existing slot is fine.
    pub if_not_exists: bool,
    /// Stop once everything up to here is durable.
    pub endpos: Option<Lsn>,
    /// Stop with [`StopKind::Connection`](crate::StopKind::Connection) instead of
    /// reconnecting when a session fails.
    pub no_loop: bool,
    /// fsync or not.
    pub durability: Durability,
    /// Synchronous mode: fsync as WAL arrives and report each durable position at once.
    pub synchronous: bool,
    /// Decode and CRC-check every record as it arrives.
    pub verify: bool,
    /// How new segments are compressed.
    pub compression: CompressionSpec,
    /// Interval of unsolicited status updates; `None` for none.
    pub status_interval: Option<Duration>,
    /// How long the server may stay silent before the connection is given up (a reply is
    /// requested at half of it), like PostgreSQL's `wal_receiver_timeout`; `None` waits
    /// forever.
    pub receive_timeout: Option<Duration>,
    /// Longest time received WAL stays un-fsynced while it flows (and, with a slot or in
    /// synchronous mode, unreported as flushed); `None` fsyncs only at segment ends, as
    /// pg_receivewal does.
    pub flush_interval: Option<Duration>,
    /// Free-space floor in bytes: no new segment is started while the archive's file
    /// system has less free (the engine reports [`State::DiskFull`](crate::State::DiskFull)
    /// and retries); 0 for none (a full disk is still noticed at ENOSPC).
    pub min_free_space: u64,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// An upper bound on the flush position reported to the server, moved by another stage
    /// (an object-storage archive that wants the slot to keep WAL on the server until it is
    /// in the bucket); `None` reports the local durable position.
    pub flush_cap: Option<FlushCap>,
}

/// An upper bound on the reported flush position, as a channel another stage moves. Two caps
/// are equal when they are the same channel.
#[derive(Debug, Clone)]
pub struct FlushCap(watch::Receiver<Lsn>);

impl FlushCap {
    /// A cap starting at `initial`, and the sender that moves it.
    pub fn channel(initial: Lsn) -> (watch::Sender<Lsn>, FlushCap) {
        let (tx, rx) = watch::channel(initial);
        (tx, FlushCap(rx))
    }

    /// The cap's receiver, for the engine's loop.
    pub(crate) fn receiver(&self) -> watch::Receiver<Lsn> {
        self.0.clone()
    }
}

impl PartialEq for FlushCap {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

impl Eq for FlushCap {}

impl ReceiveSettings {
    /// pg_receivewal's defaults for archive `dir`: no slot, fsync, verification on, no
    /// compression, a status update every 10 s, a silent server given up after 60 s (as
    /// `wal_receiver_timeout`), received WAL fsynced within 1 s while it flows, reconnects after 1 s doubling to 30 s.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            slot: None,
            create_slot: false,
            if_not_exists: false,
            endpos: None,
            no_loop: false,
            durability: Durability::Fsync,
            synchronous: false,
            verify: true,
            compression: CompressionSpec::NONE,
            status_interval: Some(Duration::from_secs(10)),
            receive_timeout: Some(Duration::from_secs(60)),
            flush_interval: Some(Duration::from_secs(1)),
            min_free_space: 0,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            flush_cap: None,
        }
    }
}
