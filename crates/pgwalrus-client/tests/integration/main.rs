//! Integration tests of the replication client against real PostgreSQL servers.
