//! pgwalrus command-line entry point.
fn main() {}
