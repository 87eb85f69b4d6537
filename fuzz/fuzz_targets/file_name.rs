//! Archive file names found in a directory: never a panic; a parsed name prints back to the
//! same text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgwalrus_wal::WalSegSize;
use pgwalrus_wal::names::FileName;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for size in WalSegSize::ALL {
        if let Ok(name) = FileName::parse(text, size) {
            assert_eq!(name.to_string(), text);
        }
    }
});
