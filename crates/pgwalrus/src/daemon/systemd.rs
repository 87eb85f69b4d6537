//! systemd's notify protocol, spoken directly (no libsystemd): datagrams to
//! `$NOTIFY_SOCKET` saying `READY=1` once every server was started, `RELOADING=1` (with
//! `MONOTONIC_USEC`) and `READY=1` around a reload, `STOPPING=1` at shutdown, `STATUS=…` for
//! `systemctl status`, and `WATCHDOG=1` every half of `$WATCHDOG_USEC` while the supervisor
//! loop runs. Without `$NOTIFY_SOCKET` every call does nothing. The unit file in the repo
//! (`scripts/pgwalrus.service`) uses `Type=notify`.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use tracing::debug;

/// Where notifications go, when systemd asked for them.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
}

impl Notifier {
    /// From the environment (`$NOTIFY_SOCKET`).
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|p| !p.is_empty())
            .and_then(|path| UnixDatagram::unbound().ok().map(|s| (s, path)));
        Notifier { socket }
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines); failures are logged at debug
    /// level only: a notification is never a reason to stop archiving.
    pub fn notify(&self, state: &str) {
        let Some((socket, path)) = &self.socket else {
            return;
        };
        let sent = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt as _;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
            }
            None => socket.send_to(state.as_bytes(), path),
        };
        if let Err(e) = sent {
            debug!("could not notify systemd at {path}: {e}");
        }
    }

    /// `RELOADING=1` with the monotonic time systemd expects for `Type=notify-reload`.
    pub fn reloading(&self) {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let usec = now.tv_sec as u128 * 1_000_000 + now.tv_nsec as u128 / 1_000;
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is set for this
/// process (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.trim() != std::process::id().to_string()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
