//! Connection settings, resolved the way libpq resolves them.
//!
//! [`Config`] is the validated result: every keyword parsed, environment variables and
//! defaults applied, the host list expanded. Parsing of conninfo strings and URIs, the `PG*`
//! environment and `.pgpass` live in the sibling modules; this module owns only the types.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Fully resolved connection settings for one logical connection attempt (which may try
/// several hosts in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Hosts to try, in order. Never empty once resolved.
    pub hosts: Vec<HostSpec>,
    /// Role name. libpq's default is the operating-system user name.
    pub user: String,
    /// Password given explicitly (`password=` keyword or `PGPASSWORD`).
    pub password: Option<String>,
    /// Password file (`passfile=`, `PGPASSFILE`, default `~/.pgpass`); consulted per host when
    /// the server asks for a password and none was given.
    pub passfile: Option<PathBuf>,
    /// Database name; for a physical replication connection only used for `pg_hba.conf` and
    /// `.pgpass` matching (pg_receivewal sends `replication`).
    pub dbname: Option<String>,
    /// `application_name` sent in the startup packet.
    pub application_name: Option<String>,
    /// Used when `application_name` is not set.
    pub fallback_application_name: Option<String>,
    /// `options=` command-line options for the backend.
    pub options: Option<String>,
    /// Maximum wait per host for the connection to be made, TLS and authentication included.
    pub connect_timeout: Option<Duration>,
    /// TCP keepalive settings.
    pub keepalives: Keepalives,
    /// TLS settings.
    pub ssl: SslConfig,
    /// SCRAM channel binding policy.
    pub channel_binding: ChannelBinding,
    /// Which kind of server is acceptable when several hosts are listed.
    pub target_session_attrs: TargetSessionAttrs,
    /// The `replication` startup parameter.
    pub replication: ReplicationMode,
}

/// One host to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Host name (TCP) or socket directory (Unix).
    pub host: Host,
    /// Numeric address to connect to instead of resolving `host` (libpq's `hostaddr`); the
    /// host name is still used for certificate verification and `.pgpass`.
    pub hostaddr: Option<IpAddr>,
    /// Port; for Unix sockets it selects the socket file `.s.PGSQL.<port>`.
    pub port: u16,
}

/// Where a host lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A TCP host name or address.
    Tcp(String),
    /// A directory holding the server's Unix socket (`host` starting with `/`).
    Unix(PathBuf),
}

/// TCP keepalive settings (libpq's `keepalives*` keywords).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keepalives {
    /// `keepalives` (default on).
    pub enabled: bool,
    /// `keepalives_idle`.
    pub idle: Option<Duration>,
    /// `keepalives_interval`.
    pub interval: Option<Duration>,
    /// `keepalives_count`.
    pub count: Option<u32>,
}

impl Default for Keepalives {
    fn default() -> Self {
        Self { enabled: true, idle: None, interval: None, count: None }
    }
}

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslConfig {
    /// `sslmode` (default `prefer`).
    pub mode: SslMode,
    /// `sslrootcert`; `None` means libpq's default `~/.postgresql/root.crt` if it exists.
    pub rootcert: Option<RootCert>,
    /// `sslcert`; `None` means `~/.postgresql/postgresql.crt` if it exists.
    pub cert: Option<PathBuf>,
    /// `sslkey`; `None` means `~/.postgresql/postgresql.key` if it exists.
    pub key: Option<PathBuf>,
    /// `sslnegotiation` (17+ servers accept `direct`).
    pub negotiation: SslNegotiation,
    /// `sslsni` (default on): send the host name in the TLS handshake.
    pub sni: bool,
}

impl Default for SslConfig {
    fn default() -> Self {
        Self {
            mode: SslMode::Prefer,
            rootcert: None,
            cert: None,
            key: None,
            negotiation: SslNegotiation::Postgres,
            sni: true,
        }
    }
}

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first, TLS if the server insists.
    Allow,
    /// TLS first, plain if the server does not offer it.
    Prefer,
    /// TLS, no certificate checks (unless a root certificate is present, as libpq).
    Require,
    /// TLS, the server certificate must chain to a trusted root.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

/// Trusted roots for server certificate verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of CA certificates.
    File(PathBuf),
    /// The operating system's trust store (`sslrootcert=system`, implies `verify-full`).
    System,
}

/// libpq's `channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBinding {
    /// Never use channel binding.
    Disable,
    /// Use it when TLS and SCRAM-SHA-256-PLUS are both available (default).
    Prefer,
    /// Fail unless the server authenticates with SCRAM-SHA-256-PLUS.
    Require,
}

/// libpq's `sslnegotiation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslNegotiation {
    /// SSLRequest first, then TLS (every server version).
    Postgres,
    /// TLS straight away with ALPN `postgresql` (servers 17+).
    Direct,
}

/// libpq's `target_session_attrs` (the subset that matters for replication).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetSessionAttrs {
    /// Any server.
    Any,
    /// A server that accepts writes (not in recovery, not default read-only).
    ReadWrite,
    /// A server that does not accept writes.
    ReadOnly,
    /// A primary (not in hot standby).
    Primary,
    /// A standby (in hot standby).
    Standby,
    /// A standby if any host is one, else any.
    PreferStandby,
}

/// The `replication` startup parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicationMode {
    /// Ordinary SQL session.
    Off,
    /// Physical walsender (`replication=true`).
    Physical,
    /// Logical walsender (`replication=database`).
    Database,
}
