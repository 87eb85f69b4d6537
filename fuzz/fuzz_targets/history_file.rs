//! Timeline history files from the server or the archive: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgwalrus_wal::TimeLineId;
use pgwalrus_wal::history::TimelineHistory;

fuzz_target!(|data: &[u8]| {
    if let Some((&first, rest)) = data.split_first() {
        if let Ok(tli) = TimeLineId::new(u32::from(first).max(1)) {
            let _ = TimelineHistory::parse(tli, rest);
        }
    }
});
