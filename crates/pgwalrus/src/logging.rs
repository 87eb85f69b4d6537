//! Log output: human-readable lines on stderr, `-v` for more, `-q` for errors only. On a
//! terminal the receive engine's per-segment line is left out: the live progress line shows
//! the same.

use tracing::Level;
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::prelude::*;

/// Installs the global subscriber. Called once, from `main`; `json` writes one JSON object
/// per line (the daemon's `log_format = "json"`).
pub fn init(verbose: u8, quiet: bool, json: bool) {
    let level = match (quiet, verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => Level::INFO,
        (false, 1) => Level::DEBUG,
        (false, _) => Level::TRACE,
    };
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let live = terminal && !json;
    let format = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(verbose > 1 || json);
    let layer = if json {
        format.json().boxed()
    } else {
        format.with_ansi(terminal).boxed()
    };
    let layer = layer
        .with_filter(LevelFilter::from_level(level))
        .with_filter(filter_fn(move |meta| {
            !(live && meta.target() == pgwalrus_receiver::SEGMENT_LOG_TARGET)
        }))
        // The object store logs each retry it makes itself (a pooled connection the server
        // closed, a 503) at INFO; what matters reaches us as its error, which pgwalrus logs
        // once. Its own lines show with -v.
        .with_filter(filter_fn(move |meta| {
            verbose > 0
                || *meta.level() <= Level::WARN
                || !meta.target().starts_with("object_store")
        }));
    tracing_subscriber::registry().with(layer).init();
}
