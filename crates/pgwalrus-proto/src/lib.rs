//! pgwalrus-proto (placeholder while the foundation lands).
