//! pgwalrus-testkit (placeholder while the foundation lands).
