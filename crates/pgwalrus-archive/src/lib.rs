//! pgwalrus-archive (placeholder while the foundation lands).
