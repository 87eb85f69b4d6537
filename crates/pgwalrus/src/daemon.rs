//! `pgwalrus daemon -c FILE`: archives every server of a configuration file from one
//! process. Each server runs its own receive engine (its own thread and runtime); the
//! supervisor here starts them, parks a server whose engine stopped for a reason retrying
//! cannot fix (the others go on), reloads the file on SIGHUP or `POST /reload` (only what
//! changed is restarted; unchanged servers keep their replication connection), and serves
//! `/status`, `/metrics` and `/healthz` over HTTP.
//!
//! # Layout
//! - [`config`]: the TOML file, validated, resolved per server.
//! - [`supervisor`]: the servers and their engines; reload by name.
//! - [`http`]: the HTTP endpoint.
//! - [`report`]: the status rows (JSON, text) and the Prometheus metrics.
//! - [`systemd`]: `Type=notify` (ready, reloading, stopping, watchdog).

pub mod config;
pub mod http;
pub mod report;
pub mod supervisor;
pub mod systemd;

use std::path::Path;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info};

use crate::exit::Exit;
use crate::failure::{Failure, Outcome};
use supervisor::{Request, Supervisor};

/// How often each server's retention runs.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// How often each server's slot and archive free space are looked at.
const OBSERVE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `pgwalrus daemon -c FILE` (or only validates it with `--check`).
///
/// # Errors
/// Exit 2 for a configuration that does not validate; exit 5 when the endpoint cannot
/// listen or the runtime cannot start.
pub fn run(file: &Path, check: bool) -> Outcome {
    let loaded = config::load(file).map_err(|e| Failure::new(Exit::Config, e))?;
    if check {
        info!(
            "configuration \"{}\" is valid: {} server(s), listening on {}",
            file.display(),
            loaded.servers.len(),
            loaded.listen
        );
        return Ok(());
    }
    let runtime = crate::connection::runtime()?;
    runtime.block_on(serve(file, loaded))
}

async fn serve(file: &Path, loaded: config::DaemonConfig) -> Outcome {
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: std::io::Error| Failure::new(Exit::Io, anyhow::Error::new(e).context(what))
    };
    let mut hangup =
        signal(SignalKind::hangup()).map_err(io("could not install signal handlers"))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(io("could not install signal handlers"))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(io("could not install signal handlers"))?;
    let listener = tokio::net::TcpListener::bind(loaded.listen)
        .await
        .map_err(io(&format!("could not listen on {}", loaded.listen)))?;
    let (requests, mut incoming) = mpsc::channel(16);
    let mut supervisor = Supervisor::new(loaded.clone());
    let view = supervisor.view();
    tokio::spawn(http::serve(
        listener,
        view,
        requests,
        loaded.http_token.clone().map(std::sync::Arc::from),
    ));
    let systemd = systemd::Notifier::from_env();
    let mut watchdog = systemd::watchdog_interval().map(tokio::time::interval);
    let mut retention = tokio::time::interval(RETENTION_EVERY);
    let mut observation = tokio::time::interval(OBSERVE_EVERY);
    info!(
        "daemon started: {} server(s), status on http://{}/status",
        loaded.servers.len(),
        loaded.listen
    );
    supervisor.start_all();
    let ready = |n: usize| format!("READY=1\nSTATUS=archiving {n} server(s)");
    systemd.notify(&ready(loaded.servers.len()));
    loop {
        tokio::select! {
            ended = supervisor.next_end() => supervisor.on_end(ended),
            _ = retention.tick() => supervisor.retain(),
            _ = observation.tick() => supervisor.observe(),
            _ = hangup.recv() => {
                systemd.reloading();
                let _ = reload(file, &mut supervisor);
                systemd.notify(&ready(supervisor.len()));
            }
            () = async {
                match watchdog.as_mut() {
                    Some(w) => {
                        w.tick().await;
                    }
                    None => std::future::pending().await,
                }
            } => systemd.notify("WATCHDOG=1"),
            request = incoming.recv() => match request {
                Some(Request::Reload(reply)) => {
                    systemd.reloading();
                    let result = reload(file, &mut supervisor);
                    systemd.notify(&ready(supervisor.len()));
                    let _ = reply.send(result);
                }
                Some(Request::Retry(name, reply)) => {
                    let _ = reply.send(supervisor.retry(&name));
                }
                None => {}
            },
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
    }
    systemd.notify("STOPPING=1\nSTATUS=stopping every server");
    info!("stopping every server");
    supervisor.stop_all().await;
    info!("daemon stopped");
    Ok(())
}

/// Re-reads the file and applies it; a file that does not validate changes nothing.
fn reload(file: &Path, supervisor: &mut Supervisor) -> Result<String, String> {
    match config::load(file) {
        Ok(new) => {
            let summary = supervisor.apply(new);
            info!("configuration reloaded: {summary}");
            Ok(summary)
        }
        Err(e) => {
            error!("configuration not reloaded, the running one stays: {e}");
            Err(e.to_string())
        }
    }
}
