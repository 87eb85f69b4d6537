//! Entry points for fuzzing: the `cargo fuzz` targets of `fuzz/` are one-liners over these,
//! and the saved corpora are replayed through them by this crate's tests (the regression
//! run on stable). Arbitrary bytes in; a panic is a bug.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use pgwalrus_wal::WalSegSize;

use crate::compress::{Compression, StreamEnd, decode, held_bytes};
use crate::inventory::Inventory;

/// A compressed `.partial` as a crash (or anything else) left it: how many WAL bytes does it
/// hold? Never more than the limit; the bytes handed over are exactly the count, the same
/// every time; a clean stream cut short holds a prefix of its content. The first byte picks
/// the method.
pub fn compressed_partial(data: &[u8]) {
    // One 16 MiB segment: what the archive asks of a `.partial`.
    const LIMIT: u64 = 16 << 20;
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let method = Compression::ALL[usize::from(selector) % Compression::ALL.len()];
    let held = held_bytes(method, file, LIMIT).expect("a byte slice never fails to read");
    assert!(held.bytes <= LIMIT);
    let mut out = Vec::new();
    let again = decode(method, file, LIMIT, |b| out.extend_from_slice(b)).expect("slice");
    assert_eq!(again, held);
    assert_eq!(out.len() as u64, held.bytes);
    if held.end == StreamEnd::OverLimit {
        assert_eq!(held.bytes, LIMIT);
    }
    // Cut short, a clean stream holds a prefix of its content. (Not asked of damaged
    // input: a zstd frame whose header promises another content size fails at the end of
    // its last block, taking that block's bytes along, which a shorter cut may still hand
    // over.)
    if held.end == StreamEnd::Finished {
        let half = &file[..file.len() / 2];
        let mut prefix = Vec::new();
        decode(method, half, LIMIT, |b| prefix.extend_from_slice(b)).expect("slice");
        assert!(out.starts_with(&prefix));
    }
}

/// The archive's name listing: a directory listing (one name per line, any bytes, in any
/// order; the first byte picks the segment size) makes the same [`Inventory`] whatever the
/// order; every name it keeps prints back to a name that was listed, once, and segments
/// stay in name order.
pub fn inventory_names(data: &[u8]) {
    let Some((&selector, listing)) = data.split_first() else {
        return;
    };
    let size = WalSegSize::ALL[usize::from(selector) % WalSegSize::ALL.len()];
    let lines: Vec<&[u8]> = listing.split(|&b| b == b'\n').collect();
    let names = || lines.iter().map(|n| OsString::from_vec(n.to_vec()));
    let dir = Path::new("/archive");
    let inventory = Inventory::from_names(dir, names(), size);
    assert_eq!(inventory, Inventory::from_names(dir, names().rev(), size));

    let listed: BTreeSet<&[u8]> = lines.iter().copied().collect();
    let kept: Vec<String> = inventory
        .segments
        .iter()
        .map(ToString::to_string)
        .chain(inventory.histories.iter().map(ToString::to_string))
        .chain(inventory.temps.iter().map(ToString::to_string))
        .collect();
    for name in &kept {
        assert!(listed.contains(name.as_bytes()), "{name} was not listed");
    }
    if listed.len() == lines.len() {
        // A real directory lists each name once.
        let distinct: BTreeSet<&String> = kept.iter().collect();
        assert_eq!(distinct.len(), kept.len());
    }
    let segments: Vec<String> = inventory.segments.iter().map(ToString::to_string).collect();
    assert!(segments.is_sorted());
    for history in &inventory.histories {
        assert!(inventory.history(history.tli()).is_some());
    }
}

#[cfg(test)]
mod tests {
    use pgwalrus_wal::fuzz::replay;

    #[test]
    fn the_fuzz_corpora_replay_without_a_panic() {
        replay("compressed_partial", super::compressed_partial);
        replay("inventory_names", super::inventory_names);
    }
}
