//! A command's failure: the error chain to print, and the exit code it maps to. Commands
//! decide the code where they understand the error; `main` prints the chain once.

use std::fmt;

use crate::exit::Exit;

/// An error and its exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code for this failure.
    pub exit: Exit,
    /// The error, with its source chain.
    pub error: anyhow::Error,
}

impl Failure {
    /// Pairs an error with an exit code.
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit,
            error: error.into(),
        }
    }

    /// A failure from a message.
    pub fn msg(
        exit: Exit,
        message: impl fmt::Display + fmt::Debug + Send + Sync + 'static,
    ) -> Self {
        Self {
            exit,
            error: anyhow::Error::msg(message),
        }
    }
}

impl fmt::Display for Failure {
    /// The whole chain, `outer: inner: root`, skipping a cause whose text the message
    /// before it already contains (errors that describe their source inline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = String::new();
        for cause in self.error.chain() {
            let text = cause.to_string();
            // io errors print as "Connection refused (os error 111)"; compare without the errno.
            let bare = text
                .split(" (os error")
                .next()
                .unwrap_or(&text)
                .to_lowercase();
            if shown.to_lowercase().contains(&bare) {
                continue;
            }
            if !shown.is_empty() {
                shown.push_str(": ");
            }
            shown.push_str(&text);
        }
        f.write_str(&shown)
    }
}

/// Result of a command.
pub type Outcome = Result<(), Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_is_printed_once() {
        let io = std::io::Error::from_raw_os_error(111);
        let f = Failure::new(
            Exit::Connection,
            anyhow::Error::new(io).context("connection to h:1 failed: connection refused"),
        );
        assert_eq!(
            f.to_string(),
            "connection to h:1 failed: connection refused"
        );
        let f = Failure::new(Exit::Io, anyhow::anyhow!("root").context("outer"));
        assert_eq!(f.to_string(), "outer: root");
    }
}
