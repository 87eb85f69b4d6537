//! The writer thread: owns the [`ArchiveWriter`] and does every blocking file operation, so
//! the network side never waits on the disk except through the bounded command queue
//! (back-pressure, bounded memory). It reports durable positions back as events.
//!
//! Group flush: in synchronous mode the thread drains every command already queued, then
//! fsyncs once — one fsync covers every chunk that arrived while the previous one ran.

use std::path::PathBuf;
use std::thread::JoinHandle;

use bytes::Bytes;
use pgwalrus_archive::{ArchiveWriter, CompressionSpec, Durability, Error as ArchiveError, StdFs};
use pgwalrus_wal::names::SegmentName;
use pgwalrus_wal::{DecodeError, Lsn, TimeLineId, WalSegSize};

use super::inspect::StreamInspector;
use tokio::sync::mpsc;

/// Chunks the queue holds before the network side waits. The server sends at most 128 KiB
/// per message, so this bounds queued WAL to about 4 MiB.
pub const QUEUE_DEPTH: usize = 32;

/// A request to the writer thread.
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

/// What the writer thread reports.
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
    /// The server sent WAL that fails verification (the chunk completing the bad record was
    /// not written); the thread has stopped.
    Corrupt(DecodeError),
    /// The archive failed; the thread has stopped. Nothing after the last durable position
    /// can be trusted to be on disk.
    Failed(ArchiveError),
}

/// Handle to a running writer thread.
#[derive(Debug)]
pub struct WriterHandle {
    /// Commands in.
    pub commands: mpsc::Sender<Command>,
    /// Events out.
    pub events: mpsc::UnboundedReceiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// Starts the writer thread for `dir`, compressing new segments as `compression` says.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn spawn(
        dir: PathBuf,
        seg_size: WalSegSize,
        durability: Durability,
        synchronous: bool,
        compression: CompressionSpec,
        verify_system_id: Option<u64>,
    ) -> std::io::Result<WriterHandle> {
        let (cmd_tx, cmd_rx) = mpsc::channel(QUEUE_DEPTH);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        // Compression runs here, on the writer thread, behind the bounded queue: the network
        // side never waits on the compressor except through the queue.
        let writer = ArchiveWriter::new(StdFs::new(), dir, seg_size, durability)
            .with_compression(compression);
        let thread = std::thread::Builder::new()
            .name("pgwalrus-writer".into())
            .spawn(move || {
                let inspector = verify_system_id.map(|id| StreamInspector::new(id, seg_size));
                run(writer, inspector, cmd_rx, ev_tx, synchronous);
            })?;
        Ok(WriterHandle {
            commands: cmd_tx,
            events: ev_rx,
            thread: Some(thread),
        })
    }

    /// Closes the command queue and waits for the thread to finish what was queued.
    pub fn shutdown(self) {
        let WriterHandle {
            commands,
            events,
            thread,
        } = self;
        // Dropping the last sender ends the thread's loop once the queue is drained.
        drop(commands);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        drop(events);
    }
}

/// Why the writer thread stopped.
enum Stop {
    Archive(ArchiveError),
    Corrupt(DecodeError),
}

impl From<ArchiveError> for Stop {
    fn from(e: ArchiveError) -> Self {
        Stop::Archive(e)
    }
}

impl Stop {
    fn event(self) -> Event {
        match self {
            Stop::Archive(e) => Event::Failed(e),
            Stop::Corrupt(e) => Event::Corrupt(e),
        }
    }
}

fn run(
    mut writer: ArchiveWriter<StdFs>,
    mut inspector: Option<StreamInspector>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<Event>,
    synchronous: bool,
) {
    while let Some(first) = commands.blocking_recv() {
        let mut next = Some(first);
        let mut wrote = false;
        // Drain what is already queued before syncing: one fsync for all of it.
        while let Some(command) = next.take() {
            if matches!(command, Command::Data { .. }) {
                wrote = true;
            }
            if let Err(stop) = handle(&mut writer, inspector.as_mut(), command, &events) {
                let _ = events.send(stop.event());
                return;
            }
            next = commands.try_recv().ok();
        }
        if wrote {
            let _ = events.send(Event::Written(writer.write_lsn()));
        }
        if synchronous && wrote && writer.write_lsn() > writer.flush_lsn() {
            match writer.sync() {
                Ok(lsn) => {
                    let _ = events.send(Event::Flushed(lsn));
                }
                Err(e) => {
                    let _ = events.send(Event::Failed(e));
                    return;
                }
            }
        }
    }
}

fn handle(
    writer: &mut ArchiveWriter<StdFs>,
    inspector: Option<&mut StreamInspector>,
    command: Command,
    events: &mpsc::UnboundedSender<Event>,
) -> Result<(), Stop> {
    match command {
        Command::History { tli, content } => {
            let path = writer.write_history(tli, &content)?;
            let _ = events.send(Event::HistoryWritten(path));
        }
        Command::Start { tli, lsn } => {
            writer.start(tli, lsn)?;
            if let Some(inspector) = inspector {
                inspector.start(writer.dir(), tli, lsn);
            }
        }
        Command::Data { tli, lsn, bytes } => {
            // Checked before it is written: the chunk that completes a corrupt record never
            // reaches the archive.
            if let Some(inspector) = inspector {
                inspector.check(&bytes).map_err(Stop::Corrupt)?;
            }
            let flush_before = writer.flush_lsn();
            let written = writer.write(tli, lsn, &bytes)?;
            for name in written.completed() {
                let _ = events.send(Event::Completed(name));
            }
            if writer.flush_lsn() > flush_before {
                let _ = events.send(Event::Flushed(writer.flush_lsn()));
            }
        }
        Command::Sync => {
            let lsn = writer.sync()?;
            let _ = events.send(Event::Synced(lsn));
        }
        Command::ClosePartial => {
            let lsn = if writer.timeline().is_some() {
                writer.close_partial()?
            } else {
                writer.flush_lsn()
            };
            let _ = events.send(Event::Closed(lsn));
        }
    }
    Ok(())
}
