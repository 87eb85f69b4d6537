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
    mut source: S,
    mut shutdown: Shutdown,
    status: StatusSender,
) -> Result<Stopped, StopReason> {
    status.send_modify(|s| {
        s.conninfo = source.conninfo();
        s.slot_name.clone_from(&settings.slot);
    });
    let result = receive(&settings, &mut source, &mut shutdown, &status).await;
    status.send_modify(|s| {
        s.state = State::Stopped;
        if let Err(reason) = &result {
            s.last_error = Some(reason.error.chain());
            s.last_error_time = Some(wall_clock());
        }
    });
    result
}

async fn receive<S: ConnectionSource>(
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
            prepared = prepare(settings, source, &mut carried) => prepared,
            () = shutdown.triggered() => return Ok(stopped),
        };
        let outcome = match prepared {
            Ok(prepared) => session(settings, prepared, shutdown, status).await,
            Err(e) => Err(e),
        };
        let (error, progressed) = match outcome {
            Ok(stopped) => return Ok(stopped),
            Err(SessionError::Fatal(reason)) => return Err(reason),
            Err(SessionError::Retry { error, progressed }) => (error, progressed),
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
            s.state = State::Waiting;
            s.last_error = Some(problem.clone());
            s.last_error_time = Some(wall_clock());
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

/// An engine running on a thread of its own (see the [module documentation](self)).
#[derive(Debug)]
pub struct Engine {
    status: StatusReceiver,
    done: oneshot::Receiver<Result<Stopped, StopReason>>,
    thread: std::thread::JoinHandle<()>,
}

/// Starts an engine on a new thread named `name`, with a current-thread runtime of its own.
///
/// # Errors
/// The thread or its runtime could not be created.
pub fn spawn<S: ConnectionSource>(
    name: &str,
    settings: ReceiveSettings,
    source: S,
    shutdown: Shutdown,
) -> std::io::Result<Engine> {
    let (status_tx, status_rx) = status::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let result = runtime.block_on(run(settings, source, shutdown, status_tx));
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
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_starts_over_after_a_reset() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let delays: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
