//! Progress output of `receive`: on a terminal a live line on stderr (position, segment,
//! rate, bytes behind the server); otherwise one log line per completed segment; nothing
//! with `-q`. Time comes in as an argument.

use std::io::Write as _;
use std::time::{Duration, Instant};

use pgwalrus_wal::names::SegmentName;
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};
use tracing::info;

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing (`-q`).
    Quiet,
    /// A log line per completed segment (not a terminal).
    Log,
    /// A live line redrawn in place on stderr (a terminal).
    Live,
}

const REDRAW_EVERY: Duration = Duration::from_millis(250);
const MIB: f64 = 1024.0 * 1024.0;

/// Progress state.
#[derive(Debug)]
pub struct Progress {
    mode: ProgressMode,
    tli: Option<TimeLineId>,
    seg_size: Option<WalSegSize>,
    received: Lsn,
    server_end: Lsn,
    window_start: Option<Instant>,
    window_bytes: u64,
    rate: f64,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl Progress {
    /// A fresh progress reporter.
    pub fn new(mode: ProgressMode) -> Self {
        Self {
            mode,
            tli: None,
            seg_size: None,
            received: Lsn::INVALID,
            server_end: Lsn::INVALID,
            window_start: None,
            window_bytes: 0,
            rate: 0.0,
            last_draw: None,
            drawn: false,
        }
    }

    /// Streaming (re)started.
    pub fn start(&mut self, tli: TimeLineId, start: Lsn, seg_size: WalSegSize) {
        self.tli = Some(tli);
        self.seg_size = Some(seg_size);
        self.received = start;
    }

    /// The server's end of WAL, from a keepalive.
    pub fn on_server_end(&mut self, end: Lsn) {
        self.server_end = self.server_end.max(end);
    }

    /// `len` bytes received, ending at `end`.
    pub fn on_data(&mut self, end: Lsn, server_end: Lsn, len: usize, now: Instant) {
        self.received = end;
        self.on_server_end(server_end);
        self.window_bytes += len as u64;
        let window_start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(window_start);
        if elapsed >= Duration::from_secs(1) {
            self.rate = self.window_bytes as f64 / elapsed.as_secs_f64();
            self.window_start = Some(now);
            self.window_bytes = 0;
        }
        if self.mode == ProgressMode::Live
            && self
                .last_draw
                .is_none_or(|t| now.saturating_duration_since(t) >= REDRAW_EVERY)
        {
            self.last_draw = Some(now);
            self.draw();
        }
    }

    /// A segment was completed.
    pub fn on_completed(&mut self, name: &SegmentName) {
        if self.mode == ProgressMode::Log {
            info!("completed segment {name}");
        }
    }

    fn draw(&mut self) {
        let (Some(tli), Some(seg_size)) = (self.tli, self.seg_size) else {
            return;
        };
        let segment = SegmentName::containing(tli, self.received, seg_size);
        let behind = self.server_end.checked_distance(self.received).unwrap_or(0);
        let line = format!(
            "\r{} (timeline {tli}, segment {segment})  {:7.1} MiB/s  {:8.1} MiB behind ",
            self.received,
            self.rate / MIB,
            behind as f64 / MIB
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
        self.drawn = true;
    }

    /// Ends the live line so later output starts on a fresh line.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = std::io::stderr().lock().write_all(b"\n");
            self.drawn = false;
        }
    }
}
