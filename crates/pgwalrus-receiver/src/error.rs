//! How an engine ends: [`Stopped`] when it was asked to (or reached its end position),
//! [`StopReason`] when it cannot go on — a typed [`StopKind`] a caller decides on (the CLI
//! maps it to an exit code, a daemon to a server state) and an [`Error`] for people.

use std::error::Error as StdError;
use std::fmt;

use pgwalrus_wal::Lsn;

/// A clean end of [`run`](crate::run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The shutdown was triggered; everything received up to `flushed` is durable.
    Shutdown {
        /// The durable position at the stop (invalid when no WAL was streamed).
        flushed: Lsn,
    },
    /// Everything up to the end position is durable.
    EndPosition {
        /// The durable position at the stop.
        flushed: Lsn,
    },
}

/// Why an engine stopped without being asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopKind {
    /// The connection was lost or the server could not be reached, and the settings say not
    /// to retry (`no_loop`). Trying again later may work.
    Connection,
    /// Settings or permissions: authentication, privileges, a missing or existing slot, an
    /// unsupported server. Retrying the same settings will not help.
    Config,
    /// The archive holds WAL of another cluster, another segment size, or another branch of
    /// this cluster's history. Nothing was changed.
    OtherCluster,
    /// WAL the archive needs next is gone from the server (slot dropped or invalidated,
    /// segment removed).
    WalGone,
    /// A local I/O error that retrying cannot fix (permissions, a damaged file).
    Io,
    /// The server sent WAL that fails verification; the chunk completing it was not archived.
    CorruptWal,
}

impl StopKind {
    /// A short stable name (`connection`, `config`, `other_cluster`, `wal_gone`, `io`,
    /// `corrupt_wal`), for status output and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            StopKind::Connection => "connection",
            StopKind::Config => "config",
            StopKind::OtherCluster => "other_cluster",
            StopKind::WalGone => "wal_gone",
            StopKind::Io => "io",
            StopKind::CorruptWal => "corrupt_wal",
        }
    }
}

impl fmt::Display for StopKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An engine that stopped on its own: what kind of reason, and the error.
/// It prints as its error does, with the error's causes as its own source chain.
#[derive(Debug)]
pub struct StopReason {
    /// What kind of reason: decide on this, never on the message.
    pub kind: StopKind,
    /// What happened, with its causes as the error's source chain.
    pub error: Error,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl StdError for StopReason {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.error.source()
    }
}

impl StopReason {
    pub(crate) fn new(kind: StopKind, error: impl Into<Error>) -> Self {
        Self {
            kind,
            error: error.into(),
        }
    }
}

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An engine error: a message saying what the engine was doing and what it found, over the
/// library error that caused it (client, archive, WAL decoder), if any. Its `Display` is
/// its own message only; the causes are its [`source`](StdError::source) chain, so a
/// reporter prints each once.
#[derive(Debug)]
pub struct Error {
    message: Option<String>,
    source: Option<BoxError>,
}

impl Error {
    /// An error with a message and no cause.
    pub(crate) fn msg(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            source: None,
        }
    }

    /// `source` explained by `message`.
    pub(crate) fn context(source: impl Into<BoxError>, message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            source: Some(source.into()),
        }
    }

    /// `source` as it is.
    pub(crate) fn from_source(source: impl Into<BoxError>) -> Self {
        Self {
            message: None,
            source: Some(source.into()),
        }
    }

    /// The error and its causes on one line, `outer: inner: root`, for logs and status.
    pub fn chain(&self) -> String {
        pgwalrus_client::error_chain(self).to_string()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.message, &self.source) {
            (Some(message), _) => f.write_str(message),
            (None, Some(source)) => source.fmt(f),
            (None, None) => f.write_str("unknown error"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        let source = self.source.as_deref()?;
        if self.message.is_some() {
            Some(source)
        } else {
            // Transparent: the wrapped error's own message is this one's.
            source.source()
        }
    }
}

impl From<pgwalrus_client::Error> for Error {
    fn from(e: pgwalrus_client::Error) -> Self {
        Error::from_source(e)
    }
}

impl From<pgwalrus_archive::Error> for Error {
    fn from(e: pgwalrus_archive::Error) -> Self {
        Error::from_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::context(io, "could not write");
        assert_eq!(e.to_string(), "could not write");
        assert_eq!(e.chain(), "could not write: disk on fire");
        // Transparent: the cause's message is the error's, not repeated.
        let e = Error::from_source(std::io::Error::other("refused"));
        assert_eq!(e.chain(), "refused");
        let stop = StopReason::new(StopKind::Io, Error::msg("full"));
        assert_eq!(stop.to_string(), "full");
        assert_eq!(stop.kind.as_str(), "io");
    }
}
