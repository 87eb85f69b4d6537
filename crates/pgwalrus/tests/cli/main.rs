//! Integration tests of the pgwalrus command line against real PostgreSQL servers.
