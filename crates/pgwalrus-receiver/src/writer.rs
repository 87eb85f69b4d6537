//! The writer: owns the stream's [`WalSink`] (the local [`ArchiveWriter`](pgwalrus_archive::ArchiveWriter),
//! on whatever file system) and does every blocking operation on it, in one of two modes
//! chosen by what the stream needs most.
//!
//! * **Thread** (the default): a dedicated thread behind a bounded command queue, so the
//!   network side never waits on the disk or the compressor except through the queue
//!   (back-pressure, bounded memory), and receiving overlaps writing.
//! * **Inline** (`--synchronous`): the file operations run on the caller's thread, at the
//!   moment a command is given. In synchronous mode every commit on the primary waits for
//!   received → written → fsynced → acknowledged, one step after the other, so a second
//!   thread only adds two cross-thread wake-ups to that path (on the 2-vCPU benchmark VM
//!   they cost about 10% of the commit rate, with one client or four; the project's
//!   `docs/benchmarks.md`).
//!
//! Both report what they did as the same [`Event`]s. Inline, the caller asks for the group
//! flush ([`WriterHandle::group_flush`]) once no more WAL is waiting on the socket, so one
//! fsync covers every chunk that arrived while the previous one ran; and when the stream is
//! idle, for the archive writer's zero-ahead ([`WriterHandle::idle_work`]), which keeps the
//! next commits' fsyncs free of block allocation.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use pgwalrus_archive::{Error as ArchiveError, WalSink};
use pgwalrus_wal::names::SegmentName;
use pgwalrus_wal::{Lsn, TimeLineId};

use tokio::sync::mpsc;

/// Chunks the queue holds before the network side waits. The server sends at most 128 KiB
/// per message, so this bounds queued WAL to about 4 MiB.
pub const QUEUE_DEPTH: usize = 32;

/// Inline: written but unflushed WAL at which the group flush stops waiting for the socket
/// to go quiet ([`WriterHandle::flush_overdue`]) — the thread's queue bound, so a commit
/// amid a bulk load waits for no more WAL ahead of it in either mode.
pub const FLUSH_OVERDUE: u64 = QUEUE_DEPTH as u64 * 128 * 1024;

/// A request to the writer.
#[derive(Debug)]
pub enum Command {
    /// Write a timeline's history file durably (before any of its segments).
    History {
        /// The timeline.
        tli: TimeLineId,
        /// The file's content as `TIMELINE_HISTORY` returned it.
        content: Bytes,
    },
    /// Streaming (re)starts at `lsn` on `tli` (a segment boundary).
    Start {
        /// Timeline.
        tli: TimeLineId,
        /// Segment-aligned start.
        lsn: Lsn,
    },
    /// WAL bytes starting at `lsn`.
    Data {
        /// Timeline.
        tli: TimeLineId,
        /// Position of the first byte.
        lsn: Lsn,
        /// The bytes (a slice of the socket buffer; no copy).
        bytes: Bytes,
    },
    /// Fsync what was written and answer with [`Event::Synced`].
    Sync,
    /// Fsync and close the open segment, leaving it `.partial` ([`Event::Closed`]).
    ClosePartial,
}

/// What the writer reports.
#[derive(Debug)]
pub enum Event {
    /// Answer to [`Command::Sync`]: durable up to here.
    Synced(Lsn),
    /// Durable up to here without being asked (segment completion, group flush,
    /// zero-ahead).
    Flushed(Lsn),
    /// Handed to the operating system up to here (inline, at each group flush; a thread
    /// publishes its position for [`WriterHandle::written`] instead).
    Written(Lsn),
    /// A segment was completed under its final name.
    Completed(SegmentName),
    /// A history file was written.
    HistoryWritten(PathBuf),
    /// Answer to [`Command::ClosePartial`]: durable up to here, segment closed.
    Closed(Lsn),
    /// The archive failed; the writer has stopped. Nothing after the last durable position
    /// can be trusted to be on disk.
    Failed(ArchiveError),
}

/// The writer has stopped; why is in its last [`Event::Failed`].
#[derive(Debug)]
pub struct Stopped;

/// Handle to a stream's writer, in either mode (see the [module documentation](self)).
#[derive(Debug)]
pub struct WriterHandle {
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Thread {
        commands: mpsc::Sender<Command>,
        events: mpsc::UnboundedReceiver<Event>,
        /// How far WAL was handed to the OS, stored after each drained batch: read when
        /// needed instead of sent as an event, which would wake the network side once per
        /// batch for nothing but a number (measured: docs/benchmarks.md).
        written: Arc<AtomicU64>,
        thread: Option<JoinHandle<()>>,
    },
    Inline {
        writer: Box<dyn WalSink>,
        events: VecDeque<Event>,
        /// WAL was written since the last group flush.
        wrote: bool,
        stopped: bool,
    },
}

impl WriterHandle {
    /// Starts a writer thread that owns `sink`. It fsyncs when asked ([`Command::Sync`]) and
    /// when a segment completes.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn spawn(sink: Box<dyn WalSink>) -> std::io::Result<WriterHandle> {
        let (cmd_tx, cmd_rx) = mpsc::channel(QUEUE_DEPTH);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let written = Arc::new(AtomicU64::new(Lsn::INVALID.0));
        let written_by_thread = Arc::clone(&written);
        // Compression runs on this thread, behind the bounded queue: the network side never
        // waits on the compressor except through the queue.
        let thread = std::thread::Builder::new()
            .name("pgwalrus-writer".into())
            .spawn(move || run(sink, cmd_rx, &ev_tx, &written_by_thread))?;
        Ok(WriterHandle {
            mode: Mode::Thread {
                commands: cmd_tx,
                events: ev_rx,
                written,
                thread: Some(thread),
            },
        })
    }

    /// A writer that works on the caller's thread, for synchronous mode (fsync at every
    /// [`WriterHandle::group_flush`]; give it a sink with zero-ahead on).
    pub fn inline(sink: Box<dyn WalSink>) -> WriterHandle {
        WriterHandle {
            mode: Mode::Inline {
                writer: sink,
                events: VecDeque::new(),
                wrote: false,
                stopped: false,
            },
        }
    }

    /// Queues `command` (thread), or carries it out now (inline). A failure while carrying
    /// it out is reported as [`Event::Failed`], not here.
    ///
    /// # Errors
    /// [`Stopped`]: the writer stopped earlier; its reason is among the events.
    pub async fn send(&mut self, command: Command) -> Result<(), Stopped> {
        match &mut self.mode {
            Mode::Thread { commands, .. } => commands.send(command).await.map_err(|_| Stopped),
            Mode::Inline {
                writer,
                events,
                wrote,
                stopped,
            } => {
                if *stopped {
                    return Err(Stopped);
                }
                *wrote |= matches!(command, Command::Data { .. });
                if let Err(e) = handle(writer.as_mut(), command, &mut |event| {
                    events.push_back(event)
                }) {
                    events.push_back(Event::Failed(e));
                    *stopped = true;
                }
                Ok(())
            }
        }
    }

    /// Thread: how far WAL was handed to the OS (it reports no [`Event::Written`]).
    /// `None` inline, which reports its written position as an event at each group flush.
    pub fn written(&self) -> Option<Lsn> {
        match &self.mode {
            Mode::Thread { written, .. } => Some(Lsn(written.load(Ordering::Acquire))),
            Mode::Inline { .. } => None,
        }
    }

    /// The next event; `None` once the writer has stopped and every event was taken.
    /// Inline, waits forever when there is none: inline events only come from calls on
    /// this handle ([`WriterHandle::send`], [`WriterHandle::group_flush`],
    /// [`WriterHandle::idle_work`]), never while waiting.
    pub async fn recv(&mut self) -> Option<Event> {
        match &mut self.mode {
            Mode::Thread { events, .. } => events.recv().await,
            Mode::Inline {
                events, stopped, ..
            } => match events.pop_front() {
                Some(event) => Some(event),
                None if *stopped => None,
                None => std::future::pending().await,
            },
        }
    }

    /// Inline: WAL was written since the last group flush (the caller should flush once
    /// nothing more is waiting). Always `false` for a thread, which flushes on its own.
    pub fn flush_due(&self) -> bool {
        matches!(
            self.mode,
            Mode::Inline {
                wrote: true,
                stopped: false,
                ..
            }
        )
    }

    /// Inline: WAL keeps arriving and at least [`FLUSH_OVERDUE`] bytes of it were written
    /// since the last durable position; the caller should flush now rather than once the
    /// socket goes quiet. Always `false` for a thread.
    pub fn flush_overdue(&self) -> bool {
        match &self.mode {
            Mode::Inline {
                writer,
                wrote: true,
                stopped: false,
                ..
            } => writer.write_lsn().0.saturating_sub(writer.flush_lsn().0) >= FLUSH_OVERDUE,
            _ => false,
        }
    }

    /// Inline: the group flush — fsync, then [`Event::Written`] and [`Event::Flushed`]
    /// (both after the fsync: a write position alone sends no status in synchronous mode).
    pub fn group_flush(&mut self) {
        if let Mode::Inline {
            writer,
            events,
            wrote,
            stopped,
        } = &mut self.mode
            && std::mem::take(wrote)
            && !*stopped
        {
            let before = writer.flush_lsn();
            match writer.sync() {
                Ok(flushed) => {
                    events.push_back(Event::Written(writer.write_lsn()));
                    if flushed > before {
                        events.push_back(Event::Flushed(flushed));
                    }
                }
                Err(e) => {
                    events.push_back(Event::Failed(e));
                    *stopped = true;
                }
            }
        }
    }

    /// Inline: there is work for an idle moment ([`WriterHandle::idle_work`]). Always
    /// `false` for a thread.
    pub fn idle_due(&self) -> bool {
        match &self.mode {
            Mode::Inline {
                writer, stopped, ..
            } => !*stopped && writer.zero_ahead_due(),
            Mode::Thread { .. } => false,
        }
    }

    /// Inline, while the stream is idle: zero-ahead in the open segment (see
    /// [`WalSink::zero_ahead`]), reported as [`Event::Flushed`] if it made more WAL
    /// durable.
    pub fn idle_work(&mut self) {
        if let Mode::Inline {
            writer,
            events,
            stopped,
            ..
        } = &mut self.mode
        {
            let before = writer.flush_lsn();
            match writer.zero_ahead() {
                Ok(flushed) if flushed > before => events.push_back(Event::Flushed(flushed)),
                Ok(_) => {}
                // Zero-ahead is only an optimisation; the WAL written is unchanged, and a
                // real shortage of space shows on the next WAL write.
                Err(e) if !e.is_poisoning() => {
                    tracing::debug!(
                        "zero-ahead stopped for this segment: {}",
                        pgwalrus_client::error_chain(&e)
                    );
                }
                Err(e) => {
                    events.push_back(Event::Failed(e));
                    *stopped = true;
                }
            }
        }
    }

    /// Ends the writer: a thread finishes what was queued and is joined.
    pub fn shutdown(self) {
        if let Mode::Thread {
            commands,
            events,
            thread,
            ..
        } = self.mode
        {
            // Dropping the last sender ends the thread's loop once the queue is drained.
            drop(commands);
            if let Some(thread) = thread {
                let _ = thread.join();
            }
            drop(events);
        }
    }
}

/// What either mode does with a command.
fn handle(
    writer: &mut dyn WalSink,
    command: Command,
    emit: &mut impl FnMut(Event),
) -> Result<(), ArchiveError> {
    match command {
        Command::History { tli, content } => {
            let path = writer.write_history(tli, &content)?;
            emit(Event::HistoryWritten(path));
        }
        Command::Start { tli, lsn } => writer.start(tli, lsn)?,
        Command::Data { tli, lsn, bytes } => {
            let flush_before = writer.flush_lsn();
            let completed_before = writer.last_completed();
            let written = match writer.write(tli, lsn, &bytes) {
                Ok(written) => written,
                Err(e) => {
                    // A chunk that completed its segment and then could not start the next
                    // one (a full disk): the completion is durable and is reported like any
                    // other — logged, counted, and the flush position with it. A chunk is
                    // shorter than a segment, so it completes at most one.
                    let completed = writer.last_completed();
                    if let Some(name) = completed.filter(|_| completed != completed_before) {
                        emit(Event::Completed(name));
                    }
                    if writer.flush_lsn() > flush_before {
                        emit(Event::Flushed(writer.flush_lsn()));
                    }
                    return Err(e);
                }
            };
            for name in written.completed() {
                emit(Event::Completed(name));
            }
            if writer.flush_lsn() > flush_before {
                emit(Event::Flushed(writer.flush_lsn()));
            }
        }
        Command::Sync => emit(Event::Synced(writer.sync()?)),
        Command::ClosePartial => {
            let lsn = if writer.timeline().is_some() {
                writer.close_partial()?
            } else {
                writer.flush_lsn()
            };
            emit(Event::Closed(lsn));
        }
    }
    Ok(())
}

fn run(
    mut writer: Box<dyn WalSink>,
    mut commands: mpsc::Receiver<Command>,
    events: &mpsc::UnboundedSender<Event>,
    written: &AtomicU64,
) {
    let mut emit = |event| {
        let _ = events.send(event);
    };
    while let Some(command) = commands.blocking_recv() {
        let data = matches!(command, Command::Data { .. });
        if let Err(e) = handle(writer.as_mut(), command, &mut emit) {
            emit(Event::Failed(e));
            return;
        }
        // Published before any later command's event (a sync's answer covers it).
        if data {
            written.store(writer.write_lsn().0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwalrus_archive::{ArchiveWriter, Durability, StdFs};
    use pgwalrus_testkit::TempDir;
    use pgwalrus_wal::WalSegSize;

    const START: Lsn = Lsn(0x300_0000);
    const CHUNK: usize = 128 * 1024;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn tli() -> TimeLineId {
        TimeLineId::new(1).unwrap()
    }

    /// An inline writer for `dir`, streaming started at [`START`].
    async fn started(dir: std::path::PathBuf) -> WriterHandle {
        let sink = ArchiveWriter::new(StdFs::new(), dir, WalSegSize::DEFAULT, Durability::Fsync)
            .with_zero_ahead(true);
        let mut w = WriterHandle::inline(Box::new(sink));
        w.send(Command::Start {
            tli: tli(),
            lsn: START,
        })
        .await
        .unwrap();
        w
    }

    async fn data(w: &mut WriterHandle, at: &mut Lsn, byte: u8) {
        let bytes = Bytes::from(vec![byte; CHUNK]);
        w.send(Command::Data {
            tli: tli(),
            lsn: *at,
            bytes,
        })
        .await
        .unwrap();
        *at = Lsn(at.0 + CHUNK as u64);
    }

    #[test]
    fn inline_writer_flushes_in_groups_when_due_or_overdue_and_zeroes_ahead_when_idle() {
        let tmp = TempDir::new("inline-writer");
        let mut w = block_on(started(tmp.path().to_owned()));
        block_on(async {
            assert!(!w.flush_due() && !w.idle_due());
            let mut at = START;
            data(&mut w, &mut at, 1).await;
            // Written, not yet durable; nothing is said before the group flush (the session loop
            // polls it before the idle work, which is due too: a new segment).
            assert!(w.flush_due() && !w.flush_overdue() && w.idle_due());
            w.group_flush();
            assert!(matches!(w.recv().await, Some(Event::Written(l)) if l == at));
            assert!(matches!(w.recv().await, Some(Event::Flushed(l)) if l == at));
            assert!(!w.flush_due());
            // Idle now: zero-ahead is due once, and makes nothing new durable.
            assert!(w.idle_due());
            w.idle_work();
            assert!(!w.idle_due());
            // A stream that never pauses: overdue after FLUSH_OVERDUE bytes.
            let chunks = usize::try_from(FLUSH_OVERDUE).unwrap() / CHUNK;
            for i in 0..chunks {
                assert!(!w.flush_overdue(), "overdue after {i} chunks");
                data(&mut w, &mut at, 2).await;
            }
            assert!(w.flush_overdue());
            w.group_flush();
            assert!(matches!(w.recv().await, Some(Event::Written(l)) if l == at));
            assert!(matches!(w.recv().await, Some(Event::Flushed(l)) if l == at));
            assert!(!w.flush_overdue() && !w.flush_due());
            w.send(Command::ClosePartial).await.unwrap();
            assert!(matches!(w.recv().await, Some(Event::Closed(l)) if l == at));
        });
        w.shutdown();
        let partial = std::fs::read(tmp.path().join("000000010000000000000003.partial")).unwrap();
        let written = CHUNK + usize::try_from(FLUSH_OVERDUE).unwrap();
        assert_eq!(partial.len() as u64, WalSegSize::DEFAULT.as_u64());
        assert!(partial[..CHUNK].iter().all(|&b| b == 1));
        assert!(partial[CHUNK..written].iter().all(|&b| b == 2));
        assert!(partial[written..].iter().all(|&b| b == 0));
    }

    /// Both modes: a chunk that completes a segment and then meets a full disk creating the
    /// next one reports the completion (and the flush position) before the failure.
    #[test]
    fn a_completion_before_a_failed_segment_creation_is_reported() {
        use pgwalrus_archive::SimFs;
        use pgwalrus_archive::fs::{Failpoint, Fault, SimOp};
        for threaded in [false, true] {
            let fs = SimFs::new();
            fs.create_dir("/archive");
            fs.fail(Failpoint::new(SimOp::Create, Fault::NoSpace).on_path_containing("0000000004"));
            let sink = ArchiveWriter::new(
                fs.clone(),
                "/archive",
                WalSegSize::DEFAULT,
                Durability::Fsync,
            );
            let mut w = if threaded {
                WriterHandle::spawn(Box::new(sink)).unwrap()
            } else {
                WriterHandle::inline(Box::new(sink))
            };
            let events = block_on(async {
                w.send(Command::Start {
                    tli: tli(),
                    lsn: START,
                })
                .await
                .unwrap();
                // Segment 3 but its last CHUNK/2 bytes, then a chunk holding those and the
                // first CHUNK/2 of segment 4.
                let seg = WalSegSize::DEFAULT.as_u64();
                let mut at = START;
                while at.0 + (CHUNK as u64) < START.0 + seg {
                    data(&mut w, &mut at, 1).await;
                }
                w.send(Command::Data {
                    tli: tli(),
                    lsn: at,
                    bytes: Bytes::from(vec![1; CHUNK / 2]),
                })
                .await
                .unwrap();
                at = Lsn(at.0 + CHUNK as u64 / 2);
                let _ = w
                    .send(Command::Data {
                        tli: tli(),
                        lsn: at,
                        bytes: Bytes::from(vec![2; CHUNK]),
                    })
                    .await;
                let mut events = Vec::new();
                while let Some(event) = w.recv().await {
                    let failed = matches!(event, Event::Failed(_));
                    events.push(event);
                    if failed {
                        break;
                    }
                }
                events
            });
            w.shutdown();
            let seg_end = Lsn(START.0 + WalSegSize::DEFAULT.as_u64());
            let relevant: Vec<&Event> = events
                .iter()
                .filter(|e| !matches!(e, Event::Written(_)))
                .collect();
            assert!(
                matches!(
                    relevant.as_slice(),
                    [Event::Completed(name), Event::Flushed(l), Event::Failed(e)]
                        if name.to_string() == "000000010000000000000003"
                            && *l == seg_end
                            && e.is_no_space()
                ),
                "threaded {threaded}: {events:?}"
            );
        }
    }

    #[test]
    fn a_writer_thread_publishes_how_far_it_wrote_without_an_event() {
        let tmp = TempDir::new("thread-written");
        let sink = ArchiveWriter::new(
            StdFs::new(),
            tmp.path().to_owned(),
            WalSegSize::DEFAULT,
            Durability::Fsync,
        );
        let mut w = WriterHandle::spawn(Box::new(sink)).unwrap();
        block_on(async {
            w.send(Command::Start {
                tli: tli(),
                lsn: START,
            })
            .await
            .unwrap();
            let mut at = START;
            for byte in 1..=3 {
                data(&mut w, &mut at, byte).await;
            }
            // The answer to a sync comes after the data: by then the position is published.
            w.send(Command::Sync).await.unwrap();
            let event = w.recv().await;
            assert!(
                matches!(event, Some(Event::Synced(l)) if l == at),
                "{event:?}"
            );
            assert_eq!(w.written(), Some(at));
        });
        w.shutdown();
    }

    #[test]
    fn inline_writer_reports_a_failure_once_then_refuses_commands() {
        let tmp = TempDir::new("inline-writer-fail");
        block_on(async {
            let mut w = started(tmp.path().join("not-there")).await;
            let mut at = START;
            // The first byte creates the segment in a directory that does not exist.
            data(&mut w, &mut at, 1).await;
            assert!(matches!(w.recv().await, Some(Event::Failed(_))));
            assert!(w.recv().await.is_none());
            assert!(w.send(Command::Sync).await.is_err());
            assert!(!w.flush_due() && !w.flush_overdue() && !w.idle_due());
        });
    }
}
