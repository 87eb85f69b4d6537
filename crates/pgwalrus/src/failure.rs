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
    /// How `main` prints it.
    pub report: Report,
}

/// How a failure is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Report {
    /// `pgwalrus: error: …`.
    #[default]
    Error,
    /// `pgwalrus: …`, no `error:`: an answer the caller expects routinely, such as
    /// `restore`'s "not in the archive" for the files PostgreSQL probes for (several per
    /// recovery), which its log should not show as errors.
    Info,
}

impl Failure {
    /// Pairs an error with an exit code.
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit,
            error: error.into(),
            report: Report::Error,
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
            report: Report::Error,
        }
    }

    /// The same failure, printed without `error:` ([`Report::Info`]).
    #[must_use]
    pub fn informational(self) -> Self {
        Self {
            report: Report::Info,
            ..self
        }
    }
}

impl fmt::Display for Failure {
    /// The whole chain, `outer: inner: root`. No message repeats its source (the libraries'
    /// errors leave their causes to the chain), so each cause shows once.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// Result of a command.
pub type Outcome = Result<(), Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_is_printed_once() {
        let refused = || std::io::Error::from_raw_os_error(111);
        let f = Failure::new(
            Exit::Connection,
            anyhow::Error::new(refused()).context("connection to h:1 failed"),
        );
        assert_eq!(
            f.to_string(),
            format!("connection to h:1 failed: {}", refused())
        );
        let f = Failure::new(Exit::Io, anyhow::anyhow!("root").context("outer"));
        assert_eq!(f.to_string(), "outer: root");
        // No text is compared: a message that repeated its cause would show it twice.
        let f = Failure::new(Exit::Io, anyhow::anyhow!("root").context("outer: root"));
        assert_eq!(f.to_string(), "outer: root: root");
    }

    #[test]
    fn a_library_error_shows_its_cause_once() {
        let dir = std::env::temp_dir().join(format!("pgwalrus-failure-{}", std::process::id()));
        let name = pgwalrus_wal::names::FileName::parse(
            "000000010000000000000001",
            pgwalrus_wal::WalSegSize::DEFAULT,
        )
        .unwrap();
        let e = pgwalrus_archive::reader::read_file(&pgwalrus_archive::StdFs::new(), &dir, &name)
            .unwrap_err();
        // "No such file or directory (os error 2)", printed once, after the message.
        let os = std::error::Error::source(&e).unwrap().to_string();
        let f = Failure::new(Exit::Io, e);
        let text = f.to_string();
        assert!(
            text.starts_with("could not open ") && text.ends_with(&format!(": {os}")),
            "{text}"
        );
        assert_eq!(text.matches(&os).count(), 1, "{text}");
    }
}
