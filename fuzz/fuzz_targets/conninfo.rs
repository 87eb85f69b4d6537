//! Connection strings and URIs from the command line or environment: never a panic; what
//! parses re-formats and parses to the same parameters.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgwalrus_client::config::ConnParams;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(params) = ConnParams::parse(text) {
        let again = ConnParams::parse(&params.to_conninfo_string()).expect("formatted conninfo parses");
        assert_eq!(params, again);
    }
});
