//! Entry points for fuzzing: the `cargo fuzz` targets of `fuzz/` are one-liners over these,
//! and the saved corpora are replayed through them by this crate's tests (the regression
//! run on stable). Arbitrary bytes in; a panic is a bug.

use crate::config::ConnParams;

/// Connection strings and URIs from the command line or environment: what parses
/// re-formats and parses to the same parameters.
pub fn conninfo(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(params) = ConnParams::parse(text) {
        let again =
            ConnParams::parse(&params.to_conninfo_string()).expect("formatted conninfo parses");
        assert_eq!(params, again);
    }
}

#[cfg(test)]
mod tests {
    use pgwalrus_wal::fuzz::replay;

    #[test]
    fn the_fuzz_corpora_replay_without_a_panic() {
        replay("conninfo", super::conninfo);
    }
}
