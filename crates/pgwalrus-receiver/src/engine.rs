//! The engine's outer loop: sessions one after the other, with a capped exponential backoff
//! between failed ones, until a shutdown, the end position, or a reason to stop for good;
//! and [`spawn`], which runs it on a thread of its own.
//!
//! # Threads
//! Each engine runs on its own OS thread with its own current-thread tokio runtime
//! ([`spawn`]). In synchronous mode the writer works inline, on the engine's thread, and an
//! fsync blocks that thread: on a thread of its own it stalls only its own server's socket,
//! never another engine's. The asynchronous writer adds one more thread per engine while a
//! session streams. Callers that run [`run`] on a runtime of their own take that rule over.

use std::time::Duration;

use pgwalrus_archive::{ArchiveFs, StdFs};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::classify::SessionError;
use crate::clock::wall_clock;
use crate::error::{Error, StopKind, StopReason, Stopped};
use crate::settings::ReceiveSettings;
use crate::shutdown::Shutdown;
use crate::source::ConnectionSource;
use crate::start::{Carried, prepare};
use crate::status::{self, State, StatusReceiver, StatusSender};
use crate::stream::session;

/// Doubling delay between reconnects, capped; back to the start after a session that made
/// progress.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

/// A file system the engine can keep its archive on: [`StdFs`], or the crash simulator
/// ([`SimFs`](pgwalrus_archive::SimFs)) in tests.
pub trait EngineFs: ArchiveFs<File: Send> + Clone + Send + Sync + 'static {}

impl<F: ArchiveFs<File: Send> + Clone + Send + Sync + 'static> EngineFs for F {}

/// Runs the receive loop on the current task until a clean stop or a reason to stop.
///
/// Each session asks `source` for a new connection, prepares the start point and streams;
/// a failed session is retried after a pause (1 s doubling to 30 s by default, back to the
/// start after a session that wrote WAL), unless the settings say `no_loop` or the failure
/// is one retrying cannot fix. `shutdown` stops it cleanly at any point: what was received
/// is made durable and reported to the server, and the stream ends with CopyDone. The
/// snapshot in `status` is kept current throughout and says [`State::Stopped`] at the end.
///
/// The engine installs no signal handlers, never exits the process and never writes to
/// stderr; it logs through `tracing` (the per-segment line under
/// [`SEGMENT_LOG_TARGET`](crate::SEGMENT_LOG_TARGET)).
///
/// # Errors
/// A [`StopReason`] whose [`StopKind`] says why.
pub async fn run<S: ConnectionSource>(
    settings: ReceiveSettings,
    source: S,
    shutdown: Shutdown,
    status: StatusSender,
) -> Result<Stopped, StopReason> {
    run_on(StdFs::new(), settings, source, shutdown, status).await
}

/// [`run`] with the archive directory on the file system `fs` (the crash simulator in
/// tests: the same loop, cut off at any sync point).
///
/// # Errors
/// A [`StopReason`] whose [`StopKind`] says why.
pub async fn run_on<F: EngineFs, S: ConnectionSource>(
    fs: F,
    settings: ReceiveSettings,
    mut source: S,
    mut shutdown: Shutdown,
    status: StatusSender,
) -> Result<Stopped, StopReason> {
    status.send_modify(|s| {
        s.conninfo = source.conninfo();
        s.slot_name.clone_from(&settings.slot);
    });
    let result = receive(&fs, &settings, &mut source, &mut shutdown, &status).await;
    status.send_modify(|s| {
        s.state = State::Stopped;
        if let Err(reason) = &result {
            s.last_error = Some(reason.error.chain());
            s.last_error_time = Some(wall_clock());
        }
    });
    result
}

async fn receive<F: EngineFs, S: ConnectionSource>(
    fs: &F,
    settings: &ReceiveSettings,
    source: &mut S,
    shutdown: &mut Shutdown,
    status: &StatusSender,
) -> Result<Stopped, StopReason> {
    let mut backoff = Backoff::new(settings.backoff_initial, settings.backoff_max);
    let mut carried = Carried::default();
    let mut last_problem: Option<String> = None;
    loop {
        status.send_modify(|s| s.state = State::Starting);
        let stopped = Stopped::Shutdown {
            flushed: status.borrow().flushed_lsn,
        };
        let prepared = tokio::select! {
            prepared = prepare(fs, settings, source, &mut carried) => prepared,
            () = shutdown.triggered() => return Ok(stopped),
        };
        let outcome = match prepared {
            Ok(prepared) => session(fs, settings, prepared, shutdown, status).await,
            Err(e) => Err(e),
        };
        let (error, progressed, disk_full) = match outcome {
            Ok(stopped) => return Ok(stopped),
            Err(SessionError::Fatal(reason)) => return Err(reason),
            Err(SessionError::Retry {
                error,
                progressed,
                disk_full,
            }) => (error, progressed, disk_full),
        };
        if settings.no_loop {
            return Err(StopReason::new(StopKind::Connection, error));
        }
        if progressed {
            backoff.reset();
            last_problem = None;
        }
        let delay = backoff.next_delay();
        let problem = error.chain();
        status.send_modify(|s| {
            // A full disk is worth its own state: the operator has to free space.
            s.state = if disk_full {
                State::DiskFull
            } else {
                State::Waiting
            };
            s.last_error = Some(problem.clone());
            s.last_error_time = Some(wall_clock());
            s.reconnects += 1;
            s.unflushed_since = None;
        });
        // Log once per state change; a repeated failure goes to debug.
        if last_problem.as_deref() == Some(problem.as_str()) {
            debug!("{problem}; retrying in {}s", delay.as_secs_f32());
        } else {
            warn!("{problem}; retrying in {}s", delay.as_secs_f32());
            last_problem = Some(problem);
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.triggered() => {
                return Ok(Stopped::Shutdown { flushed: status.borrow().flushed_lsn });
            }
        }
    }
}

/// An engine running on a thread of its own, with its own current-thread runtime (see
/// [`spawn`]).
#[derive(Debug)]
pub struct Engine {
    status: StatusReceiver,
    done: oneshot::Receiver<Result<Stopped, StopReason>>,
    thread: std::thread::JoinHandle<()>,
}

/// Starts an engine on a new thread named `name`, with a current-thread runtime of its own.
///
/// One thread per engine is the rule: in synchronous mode the writer fsyncs inline on the
/// engine's thread, and on a thread of its own that stalls only its own server's socket,
/// never another engine's.
///
/// # Errors
/// The thread or its runtime could not be created.
pub fn spawn<S: ConnectionSource>(
    name: &str,
    settings: ReceiveSettings,
    source: S,
    shutdown: Shutdown,
) -> std::io::Result<Engine> {
    spawn_on(name, StdFs::new(), settings, source, shutdown)
}

/// [`spawn`] with the archive directory on the file system `fs`.
///
/// # Errors
/// The thread or its runtime could not be created.
pub fn spawn_on<F: EngineFs, S: ConnectionSource>(
    name: &str,
    fs: F,
    settings: ReceiveSettings,
    source: S,
    shutdown: Shutdown,
) -> std::io::Result<Engine> {
    let (status_tx, status_rx) = status::channel();
    spawn_with_status(name, fs, settings, source, shutdown, (status_tx, status_rx))
}

/// [`spawn_on`] publishing on a status channel the caller made beforehand (from
/// [`status::channel`]), for a caller that shows the status before the engine can start —
/// while it prepares the archive directory, say.
///
/// # Errors
/// The thread or its runtime could not be created.
pub fn spawn_with_status<F: EngineFs, S: ConnectionSource>(
    name: &str,
    fs: F,
    settings: ReceiveSettings,
    source: S,
    shutdown: Shutdown,
    (status_tx, status_rx): (StatusSender, StatusReceiver),
) -> std::io::Result<Engine> {
    let (done_tx, done_rx) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let result = runtime.block_on(run_on(fs, settings, source, shutdown, status_tx));
            let _ = done_tx.send(result);
        })?;
    Ok(Engine {
        status: status_rx,
        done: done_rx,
        thread,
    })
}

impl Engine {
    /// A reader of the engine's status snapshot.
    pub fn status(&self) -> StatusReceiver {
        self.status.clone()
    }

    /// Whether the engine has stopped.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the engine to stop (from any runtime) and joins its thread.
    ///
    /// # Errors
    /// Why it stopped, when it was not asked to.
    pub async fn wait(self) -> Result<Stopped, StopReason> {
        let result = self.done.await;
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
        result.unwrap_or_else(|_| Err(panicked()))
    }

    /// Blocks until the engine stops and joins its thread.
    ///
    /// # Errors
    /// Why it stopped, when it was not asked to.
    pub fn join(self) -> Result<Stopped, StopReason> {
        let _ = self.thread.join();
        let mut done = self.done;
        done.try_recv().unwrap_or_else(|_| Err(panicked()))
    }
}

fn panicked() -> StopReason {
    StopReason::new(
        StopKind::Io,
        Error::msg("the receive engine's thread panicked"),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use pgwalrus_client::Error as ClientError;

    use super::*;
    use crate::source::FromFn;

    type Attempts = Arc<Mutex<Vec<tokio::time::Instant>>>;

    /// A source whose every connection attempt fails with `error()`, noting when it was made.
    fn failing(attempts: &Attempts, error: fn() -> ClientError) -> impl ConnectionSource + use<> {
        let attempts = attempts.clone();
        FromFn::new(move || {
            attempts.lock().unwrap().push(tokio::time::Instant::now());
            async move { Err(error()) }
        })
    }

    fn closed() -> ClientError {
        ClientError::Closed {
            target: "db1:5432".to_owned(),
            last_error: None,
        }
    }

    fn settings() -> ReceiveSettings {
        ReceiveSettings::new("/nonexistent-archive")
    }

    #[tokio::test(start_paused = true)]
    async fn reconnects_back_off_doubling_to_the_cap_and_a_shutdown_ends_the_wait() {
        let attempts = Attempts::default();
        let (trigger, shutdown) = Shutdown::new();
        let (status_tx, status) = status::channel();
        let engine = tokio::spawn(run(
            settings(),
            failing(&attempts, closed),
            shutdown,
            status_tx,
        ));
        while attempts.lock().unwrap().len() < 8 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        {
            let s = status.borrow();
            assert_eq!(s.state, State::Waiting);
            assert!(
                s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("db1:5432")),
                "{s:?}"
            );
        }
        trigger.trigger();
        let stopped = engine.await.unwrap().expect("a clean stop");
        assert_eq!(
            stopped,
            Stopped::Shutdown {
                flushed: pgwalrus_wal::Lsn::INVALID
            }
        );
        assert_eq!(status.borrow().state, State::Stopped);
        let at = attempts.lock().unwrap().clone();
        let gaps: Vec<u64> = at.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
        assert_eq!(gaps[..7], [1, 2, 4, 8, 16, 30, 30]);
    }

    #[tokio::test(start_paused = true)]
    async fn without_loop_the_first_failure_stops_the_engine_as_a_connection_problem() {
        let attempts = Attempts::default();
        let mut once = settings();
        once.no_loop = true;
        let (status_tx, _status) = status::channel();
        let reason = run(
            once,
            failing(&attempts, closed),
            Shutdown::never(),
            status_tx,
        )
        .await
        .expect_err("stops");
        assert_eq!(reason.kind, StopKind::Connection);
        assert_eq!(attempts.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_retrying_cannot_fix_stops_at_once_with_its_reason() {
        let attempts = Attempts::default();
        let (status_tx, status) = status::channel();
        let reason = run(
            settings(),
            failing(&attempts, || ClientError::NoHosts),
            Shutdown::never(),
            status_tx,
        )
        .await
        .expect_err("stops");
        assert_eq!(reason.kind, StopKind::Config);
        assert_eq!(attempts.lock().unwrap().len(), 1);
        let s = status.borrow();
        assert_eq!(s.state, State::Stopped);
        assert_eq!(s.last_error.as_deref(), Some(reason.error.chain().as_str()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_while_connecting_stops_cleanly() {
        let (trigger, shutdown) = Shutdown::new();
        let (status_tx, status) = status::channel();
        let hanging = FromFn::new(|| {
            std::future::pending::<Result<pgwalrus_client::Connection, ClientError>>()
        });
        let engine = tokio::spawn(run(settings(), hanging, shutdown, status_tx));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(status.borrow().state, State::Starting);
        trigger.trigger();
        assert!(matches!(
            engine.await.unwrap(),
            Ok(Stopped::Shutdown { .. })
        ));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_starts_over_after_a_reset() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let delays: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
