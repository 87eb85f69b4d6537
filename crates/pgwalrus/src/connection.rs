//! The app's side of connecting: settings from the command line (with the `-W` prompt),
//! the runtime connections run on, and the mapping from client errors to exit codes.

use pgwalrus_client::Error as ClientError;
use pgwalrus_client::config::Config;

use crate::cli::ConnArgs;
use crate::exit::Exit;
use crate::failure::Failure;

/// Resolves the connection settings, prompting for a password with `-W`.
///
/// # Errors
/// A configuration failure (exit 2) naming the keyword and position at fault.
pub fn resolve(args: &ConnArgs) -> Result<Config, Failure> {
    let mut config = args.resolve().map_err(|e| Failure::new(Exit::Config, e))?;
    if args.password {
        let prompt = format!("Password for user {}: ", config.user);
        let password = rpassword::prompt_password(prompt).map_err(|e| {
            Failure::new(
                Exit::Config,
                anyhow::Error::new(e).context("could not read the password"),
            )
        })?;
        config.password = Some(password);
    }
    Ok(config)
}

/// The exit code for a client error: errors that retrying cannot fix
/// ([`ClientError::is_permanent`]: authentication, privilege, TLS settings or certificate
/// checks, unsupported server) are 2, the rest is "server unreachable" (1).
pub fn exit_for(error: &ClientError) -> Exit {
    if error.is_permanent() {
        Exit::Config
    } else {
        Exit::Connection
    }
}

/// Wraps a client error with its exit code.
pub fn failure(error: ClientError) -> Failure {
    Failure::new(exit_for(&error), error)
}

/// The runtime every networked command runs on: one thread for the network (file I/O has
/// threads of its own), so a receiver uses one core for protocol work at most.
///
/// # Errors
/// Exit 5 when the runtime cannot be created (out of threads or file descriptors).
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                Exit::Io,
                anyhow::Error::new(e).context("could not start the runtime"),
            )
        })
}
