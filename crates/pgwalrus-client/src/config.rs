//! Connection settings, resolved the way libpq resolves them.
//!
//! [`Config`] is the validated result: every keyword parsed, environment variables and
//! defaults applied, the host list expanded. Parsing of conninfo strings and URIs, the `PG*`
//! environment and `.pgpass` live in the submodules; this file owns the types.
//!
//! # Layout
//! - `conninfo` (re-exported here): [`ConnParams`], the ordered keyword/value list, and the
//!   `key=value` connection-string syntax.
//! - `uri`: the `postgresql://` URI syntax, into and out of [`ConnParams`].
//! - `env` (re-exported here): the [`Environment`] seam (`PG*` variables, home directory,
//!   operating-system user) and [`ProcessEnv`].
//! - `resolve`: [`Config::resolve`], layering parameters, environment and defaults the way
//!   libpq does.
//! - [`pgpass`]: the password file.
//! - `error` (re-exported here): [`ConfigError`].
//!
//! # Example
//! ```
//! use pgwalrus_client::config::{Config, ConnParams, Environment, Host};
//! # use std::path::PathBuf;
//! # struct NoEnv;
//! # impl Environment for NoEnv {
//! #     fn var(&self, _: &str) -> Option<String> { None }
//! #     fn home_dir(&self) -> Option<PathBuf> { None }
//! #     fn os_user(&self) -> Option<String> { Some("walrus".into()) }
//! # }
//! let mut params = ConnParams::parse("postgresql://archiver@db1:5433,db2/?sslmode=require")?;
//! params.set("application_name", "pgwalrus")?;
//! let config = Config::resolve(&params, &NoEnv)?;
//! assert_eq!(config.hosts[0].host, Host::Tcp("db1".into()));
//! assert_eq!(config.hosts[1].port, 5432);
//! assert_eq!(config.user, "archiver");
//! # Ok::<(), pgwalrus_client::config::ConfigError>(())
//! ```

mod conninfo;
mod env;
mod error;
pub mod pgpass;
mod resolve;
mod uri;

pub use conninfo::{ConnParams, ParamSource};
pub use env::{Environment, ProcessEnv};
pub use error::ConfigError;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Port used when none is given (libpq's compiled-in `DEF_PGPORT`).
#[doc(alias = "DEF_PGPORT")]
pub const DEFAULT_PORT: u16 = 5432;

/// Directory of the server socket used when no host is given. This is the value Debian and
/// its derivatives compile into their libpq; upstream's default is `/tmp`.
#[doc(alias = "DEFAULT_PGSOCKET_DIR")]
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

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
    /// `tcp_user_timeout`: how long data sent may stay unacknowledged before the kernel
    /// drops the connection (`TCP_USER_TIMEOUT`, Linux). `None` leaves the socket alone;
    /// zero (also what a negative value becomes, as in libpq) sets the system default.
    /// TCP only, and — libpq again — only applied when keepalives are on.
    pub tcp_user_timeout: Option<Duration>,
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

impl HostSpec {
    /// How errors and logs name this host: `host:port`, `[v6]:port`, the address when only
    /// `hostaddr` is given, or the socket path.
    pub fn label(&self) -> String {
        crate::transport::host_label(self)
    }
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
        Self {
            enabled: true,
            idle: None,
            interval: None,
            count: None,
        }
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

/// Implements `as_str`, `Display` and `FromStr` for a keyword-valued enum; values are matched
/// exactly (case-sensitively), as libpq's `strcmp` does.
macro_rules! keyword_enum {
    ($ty:ident, $keyword:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The libpq spelling of this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ConfigError;

            /// Parses the libpq spelling.
            ///
            /// # Errors
            /// [`ConfigError::InvalidValue`] for anything else (including the empty string).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(ConfigError::InvalidValue {
                        keyword: $keyword,
                        value: s.to_owned(),
                        origin: ParamSource::Explicit,
                    }),
                }
            }
        }
    };
}

keyword_enum!(SslMode, "sslmode", {
    Disable => "disable",
    Allow => "allow",
    Prefer => "prefer",
    Require => "require",
    VerifyCa => "verify-ca",
    VerifyFull => "verify-full",
});

keyword_enum!(ChannelBinding, "channel_binding", {
    Disable => "disable",
    Prefer => "prefer",
    Require => "require",
});

keyword_enum!(SslNegotiation, "sslnegotiation", {
    Postgres => "postgres",
    Direct => "direct",
});

keyword_enum!(TargetSessionAttrs, "target_session_attrs", {
    Any => "any",
    ReadWrite => "read-write",
    ReadOnly => "read-only",
    Primary => "primary",
    Standby => "standby",
    PreferStandby => "prefer-standby",
});

impl SslMode {
    /// Whether this mode refuses a connection without TLS (`require` and the `verify-*`
    /// modes).
    pub fn requires_tls(self) -> bool {
        matches!(self, Self::Require | Self::VerifyCa | Self::VerifyFull)
    }
}

impl ReplicationMode {
    /// The value sent as the `replication` startup parameter, or `None` for an ordinary
    /// session (libpq then omits the parameter).
    pub fn startup_value(self) -> Option<&'static str> {
        match self {
            Self::Off => None,
            Self::Physical => Some("true"),
            Self::Database => Some("database"),
        }
    }
}

impl FromStr for ReplicationMode {
    type Err = ConfigError;

    /// Parses a `replication` value the way the server does: `database`, or a boolean as
    /// PostgreSQL's `parse_bool` accepts it (`true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`,
    /// case-insensitive, unique prefixes allowed). The empty string means [`Self::Off`],
    /// because libpq does not send an empty `replication` parameter at all.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] for anything else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(Self::Off);
        }
        if s == "database" {
            return Ok(Self::Database);
        }
        match parse_bool(s) {
            Some(true) => Ok(Self::Physical),
            Some(false) => Ok(Self::Off),
            None => Err(ConfigError::InvalidValue {
                keyword: "replication",
                value: s.to_owned(),
                origin: ParamSource::Explicit,
            }),
        }
    }
}

/// PostgreSQL's `parse_bool`: case-insensitive prefixes of `true`, `false`, `yes`, `no`;
/// `on`; `of`/`off`; `1`; `0`.
fn parse_bool(s: &str) -> Option<bool> {
    let lower = s.to_ascii_lowercase();
    let is_prefix_of = |word: &str| !lower.is_empty() && word.starts_with(lower.as_str());
    match lower.as_bytes().first()? {
        b't' if is_prefix_of("true") => Some(true),
        b'f' if is_prefix_of("false") => Some(false),
        b'y' if is_prefix_of("yes") => Some(true),
        b'n' if is_prefix_of("no") => Some(false),
        b'o' if lower == "on" => Some(true),
        b'o' if lower == "of" || lower == "off" => Some(false),
        b'1' if lower.len() == 1 => Some(true),
        b'0' if lower.len() == 1 => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_libpq_spelling() {
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(mode.as_str().parse::<SslMode>().ok(), Some(mode));
        }
        for cb in [
            ChannelBinding::Disable,
            ChannelBinding::Prefer,
            ChannelBinding::Require,
        ] {
            assert_eq!(cb.to_string().parse::<ChannelBinding>().ok(), Some(cb));
        }
        for n in [SslNegotiation::Postgres, SslNegotiation::Direct] {
            assert_eq!(n.to_string().parse::<SslNegotiation>().ok(), Some(n));
        }
        for t in [
            TargetSessionAttrs::Any,
            TargetSessionAttrs::ReadWrite,
            TargetSessionAttrs::ReadOnly,
            TargetSessionAttrs::Primary,
            TargetSessionAttrs::Standby,
            TargetSessionAttrs::PreferStandby,
        ] {
            assert_eq!(t.to_string().parse::<TargetSessionAttrs>().ok(), Some(t));
        }
    }

    #[test]
    fn enum_values_are_case_sensitive_like_libpq() {
        assert!("Require".parse::<SslMode>().is_err());
        assert!("".parse::<SslMode>().is_err());
        let err = "verify_full".parse::<SslMode>().err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("invalid sslmode value: \"verify_full\" (set explicitly)".to_owned())
        );
    }

    #[test]
    fn replication_values_follow_the_server() {
        for yes in ["true", "on", "yes", "1", "TRUE", "t", "tr", "y", "On"] {
            assert_eq!(
                yes.parse::<ReplicationMode>().ok(),
                Some(ReplicationMode::Physical),
                "{yes}"
            );
        }
        for no in ["false", "off", "no", "0", "", "f", "of", "n", "OFF"] {
            assert_eq!(
                no.parse::<ReplicationMode>().ok(),
                Some(ReplicationMode::Off),
                "{no}"
            );
        }
        assert_eq!(
            "database".parse::<ReplicationMode>().ok(),
            Some(ReplicationMode::Database)
        );
        for bad in ["o", "2", "truee", "Database", "physical"] {
            assert!(bad.parse::<ReplicationMode>().is_err(), "{bad}");
        }
        assert_eq!(ReplicationMode::Physical.startup_value(), Some("true"));
        assert_eq!(ReplicationMode::Off.startup_value(), None);
    }

    #[test]
    fn requires_tls_only_for_require_and_verify() {
        assert!(!SslMode::Prefer.requires_tls());
        assert!(SslMode::Require.requires_tls());
        assert!(SslMode::VerifyFull.requires_tls());
    }
}
