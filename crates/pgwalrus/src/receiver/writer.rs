//! The writer: owns the [`ArchiveWriter`] and does every blocking file operation of a
//! stream, in one of two modes chosen by what the stream needs most.
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
use std::thread::JoinHandle;

use bytes::Bytes;
use pgwalrus_archive::{ArchiveWriter, CompressionSpec, Durability, Error as ArchiveError, StdFs};
use pgwalrus_wal::names::SegmentName;
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};

use tokio::sync::mpsc;

/// Chunks the queue holds before the network side waits. The server sends at most 128 KiB
/// per message, so this bounds queued WAL to about 4 MiB.
pub const QUEUE_DEPTH: usize = 32;

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
    /// Durable up to here without being asked (segment completion, group flush).
    Flushed(Lsn),
    /// Handed to the operating system up to here (sent after each drained batch).
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
        thread: Option<JoinHandle<()>>,
    },
    Inline {
        state: Box<WriterState>,
        events: VecDeque<Event>,
        /// WAL was written since the last group flush.
        wrote: bool,
        stopped: bool,
    },
}

impl WriterHandle {
    /// Starts a writer thread for `dir`, compressing new segments as `compression` says.
    /// It fsyncs when asked ([`Command::Sync`]) and when a segment completes.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn spawn(
        dir: PathBuf,
        seg_size: WalSegSize,
        durability: Durability,
        compression: CompressionSpec,
    ) -> std::io::Result<WriterHandle> {
        let (cmd_tx, cmd_rx) = mpsc::channel(QUEUE_DEPTH);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        // Compression runs on this thread, behind the bounded queue: the network side never
        // waits on the compressor except through the queue.
        let state = WriterState::new(dir, seg_size, durability, false, compression);
        let thread = std::thread::Builder::new()
            .name("pgwalrus-writer".into())
            .spawn(move || run(state, cmd_rx, &ev_tx))?;
        Ok(WriterHandle {
            mode: Mode::Thread {
                commands: cmd_tx,
                events: ev_rx,
                thread: Some(thread),
            },
        })
    }

    /// A writer that works on the caller's thread, for synchronous mode (fsync at every
    /// [`WriterHandle::group_flush`]).
    pub fn inline(
        dir: PathBuf,
        seg_size: WalSegSize,
        durability: Durability,
        compression: CompressionSpec,
    ) -> WriterHandle {
        WriterHandle {
            mode: Mode::Inline {
                state: Box::new(WriterState::new(
                    dir,
                    seg_size,
                    durability,
                    true,
                    compression,
                )),

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
                state,
                events,
                wrote,
                stopped,
            } => {
                if *stopped {
                    return Err(Stopped);
                }
                *wrote |= matches!(command, Command::Data { .. });
                if let Err(e) = state.handle(command, &mut |event| events.push_back(event)) {
                    events.push_back(Event::Failed(e));
                    *stopped = true;
                }
                Ok(())
            }
        }
    }

    /// The next event; `None` once the writer has stopped and every event was taken.
    /// Inline, waits forever when there is none (events only come from commands).
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

    /// Inline: the group flush — fsync, then [`Event::Written`] and [`Event::Flushed`].
    pub fn group_flush(&mut self) {
        if let Mode::Inline {
            state,
            events,
            wrote,
            stopped,
        } = &mut self.mode
            && std::mem::take(wrote)
            && !*stopped
            && let Err(e) = state.after_batch(&mut |event| events.push_back(event))
        {
            events.push_back(Event::Failed(e));
            *stopped = true;
        }
    }

    /// Inline: there is work for an idle moment ([`WriterHandle::idle_work`]). Always
    /// `false` for a thread.
    pub fn idle_due(&self) -> bool {
        match &self.mode {
            Mode::Inline { state, stopped, .. } => !*stopped && state.writer.zero_ahead_due(),
            Mode::Thread { .. } => false,
        }
    }

    /// Inline, while the stream is idle: zero-ahead in the open segment (see
    /// [`ArchiveWriter::zero_ahead`]), reported as [`Event::Flushed`] if it made more WAL
    /// durable.
    pub fn idle_work(&mut self) {
        if let Mode::Inline {
            state,
            events,
            stopped,
            ..
        } = &mut self.mode
        {
            let before = state.writer.flush_lsn();
            match state.writer.zero_ahead() {
                Ok(flushed) if flushed > before => events.push_back(Event::Flushed(flushed)),
                Ok(_) => {}
                // Zero-ahead is only an optimisation; the WAL written is unchanged, and a
                // real shortage of space shows on the next WAL write.
                Err(e) if !e.is_poisoning() => {
                    tracing::debug!("zero-ahead stopped for this segment: {e}");
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

/// The archive writer and what either mode does with each command.
#[derive(Debug)]
struct WriterState {
    writer: ArchiveWriter<StdFs>,
    synchronous: bool,
}

impl WriterState {
    fn new(
        dir: PathBuf,
        seg_size: WalSegSize,
        durability: Durability,
        synchronous: bool,
        compression: CompressionSpec,
    ) -> Self {
        WriterState {
            writer: ArchiveWriter::new(StdFs::new(), dir, seg_size, durability)
                .with_compression(compression)
                .with_zero_ahead(synchronous),
            synchronous,
        }
    }

    fn handle(
        &mut self,
        command: Command,
        emit: &mut impl FnMut(Event),
    ) -> Result<(), ArchiveError> {
        let writer = &mut self.writer;
        match command {
            Command::History { tli, content } => {
                let path = writer.write_history(tli, &content)?;
                emit(Event::HistoryWritten(path));
            }
            Command::Start { tli, lsn } => writer.start(tli, lsn)?,
            Command::Data { tli, lsn, bytes } => {
                let flush_before = writer.flush_lsn();
                let written = writer.write(tli, lsn, &bytes)?;
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

    /// After a batch that wrote WAL: say how far it was handed to the OS, and in
    /// synchronous mode make it durable (one fsync for the whole batch).
    fn after_batch(&mut self, emit: &mut impl FnMut(Event)) -> Result<(), ArchiveError> {
        let writer = &mut self.writer;
        if self.synchronous && writer.write_lsn() > writer.flush_lsn() {
            // Both events after the fsync, so the network side takes them in one wake-up (a
            // write position alone sends no status in synchronous mode).
            let flushed = writer.sync()?;
            emit(Event::Written(writer.write_lsn()));
            emit(Event::Flushed(flushed));
        } else {
            emit(Event::Written(writer.write_lsn()));
        }
        Ok(())
    }
}

fn run(
    mut state: WriterState,
    mut commands: mpsc::Receiver<Command>,
    events: &mpsc::UnboundedSender<Event>,
) {
    let mut emit = |event| {
        let _ = events.send(event);
    };
    while let Some(first) = commands.blocking_recv() {
        let mut next = Some(first);
        let mut wrote = false;
        // Drain what is already queued before syncing: one fsync for all of it.
        while let Some(command) = next.take() {
            wrote |= matches!(command, Command::Data { .. });
            if let Err(e) = state.handle(command, &mut emit) {
                emit(Event::Failed(e));
                return;
            }
            next = commands.try_recv().ok();
        }
        if wrote && let Err(e) = state.after_batch(&mut emit) {
            emit(Event::Failed(e));
            return;
        }
    }
}
