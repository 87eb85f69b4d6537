//! pgwalrus-wal (placeholder while the foundation lands).
