//! WAL page headers read from archive files: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgwalrus_wal::page::PageHeader;

fuzz_target!(|data: &[u8]| {
    let _ = PageHeader::parse(data);
});
