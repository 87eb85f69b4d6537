//! The live progress line of `receive` on a terminal (position, timeline, segment, rate,
//! bytes behind the server): one reader of the engine's status snapshot, redrawn in place on
//! stderr every [`REDRAW_EVERY`]. Without a terminal the engine's own per-segment log line
//! serves instead, and `-q` shows nothing. Time comes in as an argument.

use std::io::Write as _;
use std::time::{Duration, Instant};

use pgwalrus_receiver::{ReceiverStatus, State, StatusReceiver};
use pgwalrus_wal::Lsn;
use pgwalrus_wal::names::SegmentName;

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing (`-q`).
    Quiet,
    /// The engine's log line per completed segment (not a terminal).
    Log,
    /// A live line redrawn in place on stderr (a terminal).
    Live,
}

/// How often the live line is redrawn.
pub const REDRAW_EVERY: Duration = Duration::from_millis(250);
const MIB: f64 = 1024.0 * 1024.0;

/// The live line's state: the rate over the last second or so.
#[derive(Debug)]
pub struct Progress {
    mode: ProgressMode,
    status: StatusReceiver,
    window: Option<(Instant, Lsn)>,
    rate: f64,
    drawn: bool,
}

impl Progress {
    /// A progress line reading `status`.
    pub fn new(mode: ProgressMode, status: StatusReceiver) -> Self {
        Self {
            mode,
            status,
            window: None,
            rate: 0.0,
            drawn: false,
        }
    }

    /// Whether there is a live line to redraw.
    pub fn is_live(&self) -> bool {
        self.mode == ProgressMode::Live
    }

    /// Redraws the line from the current snapshot (a terminal only); ends it while the
    /// engine is not streaming, so its log lines start on a fresh line.
    pub fn tick(&mut self, now: Instant) {
        if self.mode != ProgressMode::Live {
            return;
        }
        let status = self.status.borrow().clone();
        if status.state != State::Streaming {
            self.window = None;
            self.finish();
            return;
        }
        self.measure(&status, now);
        if let Some(line) = line(&status, self.rate) {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(line.as_bytes());
            let _ = err.flush();
            self.drawn = true;
        }
    }

    fn measure(&mut self, status: &ReceiverStatus, now: Instant) {
        let received = status.received_lsn;
        match self.window {
            Some((since, from)) => {
                let elapsed = now.saturating_duration_since(since);
                if elapsed >= Duration::from_secs(1) {
                    let bytes = received.checked_distance(from).unwrap_or(0);
                    self.rate = bytes as f64 / elapsed.as_secs_f64();
                    self.window = Some((now, received));
                }
            }
            None => self.window = Some((now, received)),
        }
    }

    /// Ends the live line so later output starts on a fresh line.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = std::io::stderr().lock().write_all(b"\n");
            self.drawn = false;
        }
    }
}

/// The live line for `status` (`None` before streaming began).
fn line(status: &ReceiverStatus, rate: f64) -> Option<String> {
    let tli = status.received_tli?;
    let seg_size = status.segment_size?;
    let received = status.received_lsn;
    let segment = SegmentName::containing(tli, received, seg_size);
    let behind = status
        .latest_end_lsn
        .checked_distance(received)
        .unwrap_or(0);
    Some(format!(
        "\r{received} (timeline {tli}, segment {segment})  {:7.1} MiB/s  {:8.1} MiB behind ",
        rate / MIB,
        behind as f64 / MIB
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwalrus_wal::{TimeLineId, WalSegSize};

    #[test]
    fn the_line_shows_position_segment_rate_and_distance_to_the_server() {
        let mut status = ReceiverStatus::default();
        assert_eq!(line(&status, 0.0), None);
        status.received_tli = Some(TimeLineId::ONE);
        status.segment_size = Some(WalSegSize::DEFAULT);
        status.received_lsn = Lsn(0x300_0000);
        status.latest_end_lsn = Lsn(0x320_0000);
        let text = line(&status, 3.0 * MIB).unwrap();
        assert!(
            text.contains("0/3000000 (timeline 1, segment 000000010000000000000003)"),
            "{text}"
        );
        assert!(text.contains("3.0 MiB/s"), "{text}");
        assert!(text.contains("2.0 MiB behind"), "{text}");
    }
}
