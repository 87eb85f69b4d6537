//! Helpers shared by the crate's unit tests.

pub(crate) use pgwalrus_testkit::TempDir;
