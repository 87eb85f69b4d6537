//! [`connect`]: libpq's host-list walk on top of [`Connection::handshake`].
//!
//! Hosts are tried in order, and each resolved address of a host in order (`hostaddr`
//! replaces resolution). `connect_timeout` bounds each address attempt as a whole — TCP
//! connect, TLS, authentication and the `target_session_attrs` check — as libpq applies it
//! to each address. `sslmode=allow` and `prefer` retry once on a new connection, with and
//! without TLS respectively, when the server rejects the first attempt during startup, as
//! libpq does. If nothing succeeds the error lists every attempt.

use std::future::Future;

use crate::config::{Config, HostSpec, SslMode, TargetSessionAttrs};
use crate::connection::Connection;
use crate::error::{Error, chain};
use crate::handshake::{AttemptError, TlsAttempt, handshake_with};
use crate::transport::{Endpoint, endpoint_label, host_label, open, resolve};

/// Connects to the first suitable server of `config`'s host list.
///
/// # Errors
/// With one attempt, that attempt's error; with several, [`Error::AllFailed`] listing
/// each (its predicates such as [`Error::is_auth_failure`] look through the list).
/// [`Error::NoHosts`] for an empty host list.
pub async fn connect(config: &Config) -> Result<Connection, Error> {
    if config.hosts.is_empty() {
        return Err(Error::NoHosts);
    }
    let passes: &[TargetSessionAttrs] = match config.target_session_attrs {
        // libpq: first look for a standby among all hosts, then take any.
        TargetSessionAttrs::PreferStandby => {
            &[TargetSessionAttrs::Standby, TargetSessionAttrs::Any]
        }
        TargetSessionAttrs::Any => &[TargetSessionAttrs::Any],
        TargetSessionAttrs::ReadWrite => &[TargetSessionAttrs::ReadWrite],
        TargetSessionAttrs::ReadOnly => &[TargetSessionAttrs::ReadOnly],
        TargetSessionAttrs::Primary => &[TargetSessionAttrs::Primary],
        TargetSessionAttrs::Standby => &[TargetSessionAttrs::Standby],
    };
    let mut failures = Vec::new();
    for &attrs in passes {
        for host in &config.hosts {
            let endpoints = match with_timeout(config, host_label(host), resolve(host)).await {
                Ok(Ok(e)) => e,
                Ok(Err(error)) => {
                    failures.push(match &host.host {
                        crate::config::Host::Tcp(name) => Error::Resolve {
                            host: name.clone(),
                            error,
                        },
                        crate::config::Host::Unix(_) => Error::Connect {
                            target: host_label(host),
                            error,
                        },
                    });
                    continue;
                }
                Err(timeout) => {
                    failures.push(timeout);
                    continue;
                }
            };
            for endpoint in &endpoints {
                match connect_endpoint(config, host, endpoint, attrs).await {
                    Ok(conn) => return Ok(conn),
                    Err(errors) => {
                        for e in &errors {
                            tracing::debug!(error = %chain(e), "connection attempt failed");
                        }
                        failures.extend(errors);
                    }
                }
            }
        }
    }
    if failures.len() == 1 {
        Err(failures.remove(0))
    } else {
        Err(Error::AllFailed { attempts: failures })
    }
}

/// One address: the first attempt, and libpq's `allow`/`prefer` retry.
async fn connect_endpoint(
    config: &Config,
    host: &HostSpec,
    endpoint: &Endpoint,
    attrs: TargetSessionAttrs,
) -> Result<Connection, Vec<Error>> {
    let first = TlsAttempt::first(config);
    let failure = match attempt(config, host, endpoint, first, attrs).await {
        Ok(conn) => return Ok(conn),
        Err(f) => f,
    };
    let rejected_at_startup =
        matches!(&failure.error, Error::Startup { source, .. } if source.server_error().is_some());
    let retry = match (config.ssl.mode, failure.tls_used) {
        (SslMode::Allow, false)
            if rejected_at_startup && !matches!(endpoint, Endpoint::Unix(_)) =>
        {
            Some(TlsAttempt::Require)
        }
        (SslMode::Prefer, true) if rejected_at_startup => Some(TlsAttempt::Plain),
        _ => None,
    };
    let Some(retry) = retry else {
        return Err(vec![failure.error]);
    };
    tracing::debug!(error = %chain(&failure.error), ?retry, "retrying with the other TLS choice, as libpq does for sslmode={}", config.ssl.mode);
    match attempt(config, host, endpoint, retry, attrs).await {
        Ok(conn) => Ok(conn),
        Err(second) => Err(vec![failure.error, second.error]),
    }
}

/// One connection attempt under `connect_timeout`.
async fn attempt(
    config: &Config,
    host: &HostSpec,
    endpoint: &Endpoint,
    tls: TlsAttempt,
    attrs: TargetSessionAttrs,
) -> Result<Connection, AttemptError> {
    let target = endpoint_label(host, endpoint);
    let work = async {
        let (stream, socket) = open(endpoint, &config.keepalives, config.tcp_user_timeout)
            .await
            .map_err(|error| AttemptError {
                error: Error::Connect {
                    target: target.clone(),
                    error,
                },
                tls_used: false,
            })?;
        let mut conn = handshake_with(stream, config, host, target.clone(), tls).await?;
        conn.socket = socket;
        let tls_used = conn.tls().is_some();
        if let Err(error) = check_session_attrs(&mut conn, attrs).await {
            let _ = conn.close().await;
            return Err(AttemptError { error, tls_used });
        }
        Ok(conn)
    };
    match with_timeout(config, target.clone(), work).await {
        Ok(result) => result,
        Err(error) => Err(AttemptError {
            error,
            tls_used: false,
        }),
    }
}

async fn with_timeout<T>(
    config: &Config,
    target: String,
    work: impl Future<Output = T>,
) -> Result<T, Error> {
    match config.connect_timeout {
        None => Ok(work.await),
        Some(timeout) => tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| Error::Timeout { target, timeout }),
    }
}

/// libpq's `target_session_attrs` check, from the `in_hot_standby` and
/// `default_transaction_read_only` reports of 14+ servers, falling back to `SHOW`.
async fn check_session_attrs(
    conn: &mut Connection,
    attrs: TargetSessionAttrs,
) -> Result<(), Error> {
    let (want, reason) = match attrs {
        TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby => return Ok(()),
        TargetSessionAttrs::ReadWrite => ((Check::ReadOnly, false), "session is read-only"),
        TargetSessionAttrs::ReadOnly => ((Check::ReadOnly, true), "session is not read-only"),
        TargetSessionAttrs::Primary => {
            ((Check::HotStandby, false), "server is in hot standby mode")
        }
        TargetSessionAttrs::Standby => (
            (Check::HotStandby, true),
            "server is not in hot standby mode",
        ),
    };
    let hot_standby = setting(conn, "in_hot_standby", "in_hot_standby").await?;
    let actual = match want.0 {
        Check::HotStandby => hot_standby,
        // Read-only if in recovery or if transactions default to read-only.
        Check::ReadOnly => {
            hot_standby
                || setting(
                    conn,
                    "default_transaction_read_only",
                    "transaction_read_only",
                )
                .await?
        }
    };
    if actual == want.1 {
        Ok(())
    } else {
        Err(Error::SessionAttrs {
            target: conn.target().to_owned(),
            reason,
        })
    }
}

enum Check {
    HotStandby,
    ReadOnly,
}

/// A boolean setting from the server's reports, or else `SHOW fallback` (which both SQL
/// and walsender sessions accept).
async fn setting(
    conn: &mut Connection,
    reported: &'static str,
    fallback: &'static str,
) -> Result<bool, Error> {
    let value = match conn.parameter(reported) {
        Some(v) => v.to_owned(),
        None => conn.show(fallback).await?,
    };
    Ok(value == "on")
}
