//! What can go wrong with an object-storage archive, by kind: a caller decides what to do
//! (retry, park the server, exit with a code) from the variant, never from the text.

use std::path::PathBuf;

/// Errors of the object-storage archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `s3://` URL is malformed.
    #[error("invalid archive URL \"{url}\": {why}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A setting, a shared AWS file or a credential is missing or malformed.
    #[error("{0}")]
    Settings(String),
    /// A request failed, or its answer could not be trusted, after the store's retries.
    #[error("{op} {key}")]
    Store {
        /// What was asked (`PUT`, `HEAD`, `GET`, `LIST`, `DELETE`).
        op: &'static str,
        /// The key.
        key: String,
        /// The store's answer.
        #[source]
        error: object_store::Error,
    },
    /// The key already holds other bytes than ours: never overwritten; ours were kept aside.
    #[error(
        "{key} already holds different WAL (sha256 {theirs}, ours {ours}); nothing was overwritten, our copy is at {kept_at}"
    )]
    Conflict {
        /// The key.
        key: String,
        /// Hash of what the bucket holds (of its WAL content, decompressed).
        theirs: String,
        /// Hash of what we meant to store.
        ours: String,
        /// Where our copy was put instead.
        kept_at: String,
    },
    /// The store does not enforce create-only writes and single-writer mode was not asked for.
    #[error(
        "the store at {url} does not enforce create-only writes (a second create of the probe object {key} succeeded); a second archiver or a retry could overwrite WAL there. Use a store that honours If-None-Match, or accept the risk with the single-writer setting (docs/object-storage.md)"
    )]
    CreateOnlyIgnored {
        /// The archive's URL.
        url: String,
        /// The probe key.
        key: String,
    },
    /// The prefix holds another cluster's archive, or our archive's identity disagrees.
    #[error("{0}")]
    OtherCluster(String),
    /// An object that should hold WAL does not (size, compression, hash).
    #[error("{key}: {why}")]
    Damaged {
        /// The key.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// The local spool could not be read or written.
    #[error(transparent)]
    Local(#[from] pgwalrus_archive::Error),
    /// A local file outside the archive's own API (the shipped-position file).
    #[error("{path}")]
    LocalFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        error: std::io::Error,
    },
}

impl Error {
    /// A failure that will not go away by retrying: the archiver must stop (or park) and
    /// say why.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Url { .. }
            | Error::Settings(_)
            | Error::Conflict { .. }
            | Error::CreateOnlyIgnored { .. }
            | Error::OtherCluster(_)
            | Error::Damaged { .. } => true,
            Error::Store { error, .. } => matches!(
                error,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::NotImplemented { .. }
                    | object_store::Error::UnknownConfigurationKey { .. }
            ),
            Error::Local(_) | Error::LocalFile { .. } => false,
        }
    }

    /// The bucket holds a different object under one of our keys, or another cluster's
    /// archive: a mismatch of archives, like another cluster's directory.
    pub fn is_archive_mismatch(&self) -> bool {
        matches!(self, Error::Conflict { .. } | Error::OtherCluster(_))
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
