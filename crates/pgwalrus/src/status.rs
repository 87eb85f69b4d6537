//! `pgwalrus status`: asks a running daemon (its HTTP endpoint) what its servers are doing
//! and prints one block per server, or the JSON; `--reload` and `--retry SERVER` ask it to
//! act instead.

use std::io::Write as _;

use crate::cli::StatusArgs;
use crate::daemon::{config, http, report};
use crate::exit::Exit;
use crate::failure::{Failure, Outcome};

/// Runs `pgwalrus status`.
///
/// # Errors
/// Exit 1 when the daemon cannot be reached or refuses; exit 2 for a configuration file that
/// does not validate.
pub fn run(args: &StatusArgs) -> Outcome {
    let loaded = match &args.config {
        Some(file) => Some(config::load(file).map_err(|e| Failure::new(Exit::Config, e))?),
        None => None,
    };
    let address = match (&args.address, &loaded) {
        (Some(address), _) => address.clone(),
        (None, Some(c)) => c.listen.to_string(),
        (None, None) => config::DEFAULT_LISTEN.to_owned(),
    };
    let token = match (&args.token_file, &loaded) {
        (Some(path), _) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    Failure::new(
                        Exit::Config,
                        anyhow::Error::new(e)
                            .context(format!("could not read \"{}\"", path.display())),
                    )
                })?
                .trim()
                .to_owned(),
        ),
        (None, Some(c)) => c.http_token.clone(),
        (None, None) => None,
    };
    let token = token.as_deref();
    let runtime = crate::connection::runtime()?;
    let unreachable = |e: std::io::Error| {
        Failure::new(
            Exit::Connection,
            anyhow::Error::new(e).context(format!("could not reach the daemon at {address}")),
        )
    };
    let answer = runtime.block_on(async {
        if args.reload {
            http::post(&address, "/reload", token).await
        } else if let Some(server) = &args.retry {
            http::post(&address, &format!("/servers/{server}/retry"), token).await
        } else {
            http::get(&address, "/status", token).await
        }
    });
    let answer = answer.map_err(unreachable)?;
    if answer.code != 200 {
        return Err(Failure::msg(
            Exit::Connection,
            format!(
                "the daemon at {address} refused: {}",
                answer.body.trim_end()
            ),
        ));
    }
    let mut out = std::io::stdout().lock();
    let text = if args.reload || args.retry.is_some() || args.json {
        answer.body
    } else {
        let value: serde_json::Value = serde_json::from_str(&answer.body).map_err(|e| {
            Failure::new(
                Exit::Connection,
                anyhow::Error::new(e).context(format!("the daemon at {address} sent no JSON")),
            )
        })?;
        report::status_text(&value)
    };
    let _ = out.write_all(text.as_bytes());
    Ok(())
}
