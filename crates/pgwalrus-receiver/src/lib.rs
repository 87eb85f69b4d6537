//! The pgwalrus receive engine: one WAL receive loop as a value. It streams WAL from a
//! PostgreSQL server over the physical replication protocol into an archive directory —
//! start point, cluster guard, timelines, feedback, durability, verification — over
//! connections the caller chooses how to make, stops when told to, and publishes its state
//! as a snapshot instead of printing. `pgwalrus receive` is one host of it; a backup tool
//! that holds its own connection to the server, or a daemon archiving many servers, are
//! others.
//!
//! # Layout
//! - [`run`] and [`spawn`] (`engine.rs`): sessions one after another with backoff; one
//!   thread and current-thread runtime per engine.
//! - [`ReceiveSettings`] (`settings.rs`): what to do, a plain comparable value.
//! - [`ConnectionSource`] (`source.rs`): where connections come from — settings
//!   ([`FromConfig`]), streams the caller opens ([`FromStreams`]), or connections the caller
//!   made and authenticated itself ([`FromFn`] with [`Connection::adopt`](pgwalrus_client::Connection::adopt)).
//! - [`Shutdown`] (`shutdown.rs`): the stop request, a value.
//! - [`ReceiverStatus`] (`status.rs`): the snapshot, the facts of `pg_stat_wal_receiver`
//!   and the archive's.
//! - [`StopReason`], [`StopKind`], [`Stopped`] (`error.rs`): how an engine ends.
//! - `start.rs`: a session's start (identify, cluster guard, histories, slot, start point).
//! - `stream.rs`: a session's streaming loop; `classify.rs`: retry or stop.
//! - [`policy`]: the sans-IO feedback policy; [`timelines`]: the sans-IO timeline rules.
//! - [`writer`]: the blocking file work (a thread, or inline in synchronous mode);
//!   `timed_fs.rs`: the stopwatch on its fsyncs; `verify.rs`: the streaming record check.
//!
//! # Example
//!
//! ```no_run
//! use pgwalrus_client::config::Config;
//! use pgwalrus_receiver::{FromConfig, ReceiveSettings, Shutdown, StopKind};
//!
//! let config = Config::from_conninfo("host=db1 user=archiver replication=true")?;
//! let mut settings = ReceiveSettings::new("/var/lib/walarchive");
//! settings.slot = Some("archive".to_owned());
//! let (trigger, shutdown) = Shutdown::new();
//! let engine = pgwalrus_receiver::spawn("archive-db1", settings, FromConfig::new(config), shutdown)?;
//! let status = engine.status();
//! // … later: read `status.borrow().flushed_lsn`, then stop it.
//! trigger.trigger();
//! match engine.join() {
//!     Ok(stopped) => println!("stopped: {stopped:?}"),
//!     Err(reason) if reason.kind == StopKind::OtherCluster => eprintln!("wrong archive: {reason}"),
//!     Err(reason) => eprintln!("{}: {}", reason.kind, reason.error.chain()),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod classify;
mod clock;
mod engine;
mod error;
pub mod policy;
mod settings;
mod shutdown;
mod source;
mod start;
pub mod status;
mod stream;
mod timed_fs;
pub mod timelines;
mod verify;
pub mod writer;

pub use engine::{Engine, EngineFs, run, run_on, spawn, spawn_on, spawn_with_status};
pub use error::{Error, StopKind, StopReason, Stopped};
pub use settings::{FlushCap, ReceiveSettings};
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use source::{ConnectionSource, FromConfig, FromFn, FromStreams, masked_conninfo};
pub use status::{FsyncHistogram, ReceiverStatus, State, StatusReceiver, StatusSender};
pub use stream::SEGMENT_LOG_TARGET;
