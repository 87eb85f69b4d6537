//! Integration tests of the pgwalrus command line against real PostgreSQL servers.
//!
//! Each test runs the built `pgwalrus` binary with a scrubbed environment (no `PG*`
//! variables, a private `HOME`) against clusters from `pgwalrus-testkit`, and checks exit
//! codes, stdout and stderr the way an operator would see them.
//!
//! Themes: [`check`] (`pgwalrus check`) and `pgwalrus receive`:
//!
//! * [`receive_basic`] — byte equality with `pg_wal`, clean stops (signals, `--endpos`),
//!   resuming `.partial` files of any length, reconnecting;
//! * [`receive_crash`] — `kill -9` at random moments under load;
//! * [`receive_shutdowns`] — the primary stopped fast, immediately and by `kill -9`, again
//!   and again under load, with one receiver throughout;
//! * [`receive_network`] — a fault-injecting TCP proxy between the receiver and the server:
//!   cuts at random bytes, stalls, trickles, slow readers, half-open connections;
//! * [`receive_interop`] — one directory shared with `pg_receivewal`;
//! * [`receive_errors`] — exit codes 1, 3 and 4, with the archive untouched;
//! * [`receive_lies`] — a scripted fake server that lies: each lie's message and exit code,
//!   bounded memory, the archive untouched;
//! * [`receive_slots`] — slot creation and dropping, feedback;
//! * [`receive_sync`] — `--synchronous`;
//! * [`receive_timeline`] — following a promotion to the next timeline;
//! * [`compress`] — `-Z` gzip, lz4 and zstd: the standard tools and `pg_receivewal` 15 as
//!   oracles, `kill -9`, cut `.partial` files, archives that change method;
//!
//! [`disk_faults`] (a read-only file system, permission denied, a `.partial` replaced while
//! `receive` runs) and [`disk_faults_sim`] (EIO and ENOSPC at every step, through the
//! engine over the crash-simulating file system),
//! [`bad_archive`] (garbage, wrong sizes, case, symlinks, another cluster's `.partial`,
//! damaged history files, through `receive`, `verify`, `dump` and `restore`),
//! [`bucket`] (`receive --archive s3://…` against a real S3 server),
//! [`daemon`] (`pgwalrus daemon` and `pgwalrus status`: several servers, parking, reload),
//! and [`verify`] (`pgwalrus verify` and `dump` over real WAL), with helpers in [`receive_support`] and [`support`].

mod bad_archive;
mod bucket;
mod check;
mod compress;
mod daemon;
mod disk_faults;
mod disk_faults_sim;
mod receive_basic;
mod receive_crash;
mod receive_errors;
mod receive_failover;
mod receive_interop;
mod receive_lies;
mod receive_network;
mod receive_shutdowns;
mod receive_slots;
mod receive_support;
mod receive_sync;
mod receive_timeline;
mod receive_verify;
mod restore;
mod support;
mod verify;
