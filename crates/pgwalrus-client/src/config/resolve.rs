//! [`Config::resolve`]: from [`ConnParams`] plus [`Environment`] to a validated [`Config`],
//! following libpq's `conninfo_add_defaults` and `pqConnectOptions2`.
//!
//! Each keyword takes, in order: its value in the parameters (even if empty), else its `PG*`
//! environment variable (even if empty), else libpq's default. An empty value then means
//! "the default" for names and paths, and is invalid for enumerations, as in libpq.
//!
//! Keywords fall in three groups:
//! - honoured: everything [`Config`] has a field for;
//! - accepted and ignored, because they cannot matter here: `client_encoding` (a physical
//!   replication session has no client encoding to set), `sslcompression` (modern TLS
//!   libraries never compress), `krbsrvname`, `gsslib`, `gssdelegation` (no GSSAPI),
//!   `servicefile` (only read with `service`), `gssencmode` other than `require`,
//!   `load_balance_hosts=disable`, `max_protocol_version`, harmless values of the TLS and
//!   protocol version bounds;
//! - refused with [`ConfigError::Unsupported`] when set to anything non-empty, because
//!   silently ignoring them could weaken security or connect somewhere unexpected.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::conninfo::keyword_spec;
use super::{
    ChannelBinding, Config, ConfigError, ConnParams, DEFAULT_PORT, DEFAULT_SOCKET_DIR, Environment,
    Host, HostSpec, Keepalives, ParamSource, ProcessEnv, ReplicationMode, RootCert, SslConfig,
    SslMode, SslNegotiation, TargetSessionAttrs,
};

/// Keywords refused whenever they are set to a non-empty value, with the reason.
const REFUSED: &[(&str, &str)] = &[
    ("service", "connection service files are not implemented"),
    ("requirepeer", "peer credential checks are not implemented"),
    (
        "require_auth",
        "authentication method restrictions are not implemented",
    ),
    ("sslcrl", "certificate revocation lists are not implemented"),
    (
        "sslcrldir",
        "certificate revocation lists are not implemented",
    ),
    ("sslpassword", "encrypted client keys are not implemented"),
    ("sslkeylogfile", "TLS key logging is not implemented"),
    (
        "scram_client_key",
        "SCRAM key passthrough is not implemented",
    ),
    (
        "scram_server_key",
        "SCRAM key passthrough is not implemented",
    ),
    ("oauth_issuer", "OAuth authentication is not implemented"),
    ("oauth_client_id", "OAuth authentication is not implemented"),
    (
        "oauth_client_secret",
        "OAuth authentication is not implemented",
    ),
    ("oauth_scope", "OAuth authentication is not implemented"),
];

/// A value and where it came from.
struct Setting {
    value: String,
    origin: ParamSource,
}

struct Resolver<'a> {
    params: &'a ConnParams,
    env: &'a dyn Environment,
}

impl Resolver<'_> {
    /// The parameter, else its environment variable.
    fn get(&self, keyword: &'static str) -> Option<Setting> {
        if let (Some(value), Some(origin)) = (self.params.get(keyword), self.params.origin(keyword))
        {
            return Some(Setting {
                value: value.to_owned(),
                origin,
            });
        }
        let var = keyword_spec(keyword)?.env?;
        let value = self.env.var(var)?;
        Some(Setting {
            value,
            origin: ParamSource::Environment { var },
        })
    }

    /// The value if set and non-empty.
    fn non_empty(&self, keyword: &'static str) -> Option<Setting> {
        self.get(keyword).filter(|s| !s.value.is_empty())
    }

    fn string(&self, keyword: &'static str) -> Option<String> {
        self.non_empty(keyword).map(|s| s.value)
    }

    /// An enumeration: absent means `default`, anything else must parse.
    fn enumeration<T: std::str::FromStr>(
        &self,
        keyword: &'static str,
        default: T,
    ) -> Result<(T, Option<ParamSource>), ConfigError> {
        match self.get(keyword) {
            None => Ok((default, None)),
            Some(s) => match s.value.parse() {
                Ok(v) => Ok((v, Some(s.origin))),
                Err(_) => Err(invalid(keyword, s)),
            },
        }
    }

    /// An integer as libpq's `pqParseIntParam` reads it: optional surrounding whitespace,
    /// optional sign, decimal digits, fits in a C `int`.
    fn int(&self, keyword: &'static str) -> Result<Option<(i32, ParamSource)>, ConfigError> {
        let Some(s) = self.get(keyword) else {
            return Ok(None);
        };
        match parse_c_int(&s.value) {
            Some(n) => Ok(Some((n, s.origin))),
            None => Err(ConfigError::InvalidInteger {
                keyword,
                value: s.value,
                origin: s.origin,
            }),
        }
    }

    /// Seconds, negative values clamped to zero (libpq's keepalive setters).
    fn seconds(&self, keyword: &'static str) -> Result<Option<Duration>, ConfigError> {
        Ok(self
            .int(keyword)?
            .map(|(n, _)| Duration::from_secs(u64::try_from(n).unwrap_or(0))))
    }

    fn home_file(&self, name: &str) -> Option<PathBuf> {
        let path = self.env.home_dir()?.join(".postgresql").join(name);
        self.env.path_exists(&path).then_some(path)
    }
}

fn invalid(keyword: &'static str, s: Setting) -> ConfigError {
    ConfigError::InvalidValue {
        keyword,
        value: s.value,
        origin: s.origin,
    }
}

fn unsupported(keyword: &'static str, origin: ParamSource, reason: &'static str) -> ConfigError {
    ConfigError::Unsupported {
        keyword,
        origin,
        reason,
    }
}

impl Config {
    /// Resolves `params` the way libpq would: parameters first, then the `PG*` environment
    /// variables for keywords not given, then libpq's defaults (`host` = the Unix socket in
    /// [`DEFAULT_SOCKET_DIR`], `port` = [`DEFAULT_PORT`], `user` = the operating-system user,
    /// `dbname` = the user, `passfile` = `~/.pgpass`, `sslmode=prefer`, and the client
    /// certificate, key and root certificate from `~/.postgresql/` when those files exist).
    ///
    /// A `replication` value is taken as given and defaults to [`ReplicationMode::Off`]; a
    /// physical replication client sets it (see
    /// [`ConnParams::for_physical_replication`]).
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] or [`ConfigError::InvalidInteger`] for a bad value;
    /// [`ConfigError::HostCountMismatch`] or [`ConfigError::PortCountMismatch`] when the host,
    /// hostaddr and port lists do not line up; [`ConfigError::WeakSslModeForSystemRoots`] and
    /// [`ConfigError::WeakSslModeForDirect`] as libpq; [`ConfigError::Unsupported`] for a
    /// libpq feature pgwalrus does not implement; [`ConfigError::NoUser`] when no user name
    /// can be found. Each names the keyword and where its value came from.
    #[doc(alias = "pqConnectOptions2")]
    pub fn resolve(params: &ConnParams, env: &dyn Environment) -> Result<Config, ConfigError> {
        let r = Resolver { params, env };
        refuse_unsupported(&r)?;

        let user = match r.string("user") {
            Some(user) => user,
            None => env
                .os_user()
                .filter(|u| !u.is_empty())
                .ok_or(ConfigError::NoUser)?,
        };
        let hosts = resolve_hosts(&r)?;
        let dbname = r.string("dbname").unwrap_or_else(|| user.clone());
        let passfile = r
            .string("passfile")
            .map(PathBuf::from)
            .or_else(|| env.home_dir().map(|home| home.join(".pgpass")));

        let connect_timeout = r.int("connect_timeout")?.and_then(|(secs, _)| {
            // libpq: at least two seconds, so that rounding cannot make it expire at once;
            // zero or negative means no timeout.
            u64::try_from(secs)
                .ok()
                .filter(|&s| s > 0)
                .map(|s| Duration::from_secs(s.max(2)))
        });
        let keepalives = Keepalives {
            enabled: match r.get("keepalives") {
                None => true,
                Some(s) => match parse_strtol_exact(&s.value) {
                    Some(n) => n != 0,
                    None => {
                        return Err(ConfigError::InvalidInteger {
                            keyword: "keepalives",
                            value: s.value,
                            origin: s.origin,
                        });
                    }
                },
            },
            idle: r.seconds("keepalives_idle")?,
            interval: r.seconds("keepalives_interval")?,
            count: r
                .int("keepalives_count")?
                .map(|(n, _)| u32::try_from(n).unwrap_or(0)),
        };
        // Milliseconds; libpq's setTCPUserTimeout clamps a negative value to zero, which
        // asks the kernel for its default.
        let tcp_user_timeout = r
            .int("tcp_user_timeout")?
            .map(|(ms, _)| Duration::from_millis(u64::try_from(ms).unwrap_or(0)));

        let (channel_binding, _) = r.enumeration("channel_binding", ChannelBinding::Prefer)?;
        let ssl = resolve_ssl(&r)?;
        let (target_session_attrs, _) =
            r.enumeration("target_session_attrs", TargetSessionAttrs::Any)?;
        check_ignored_enumerations(&r)?;
        let (replication, _) = r.enumeration("replication", ReplicationMode::Off)?;

        Ok(Config {
            hosts,
            user,
            password: r.string("password"),
            passfile,
            dbname: Some(dbname),
            application_name: r.string("application_name"),
            fallback_application_name: r.string("fallback_application_name"),
            options: r.string("options"),
            connect_timeout,
            keepalives,
            tcp_user_timeout,
            ssl,
            channel_binding,
            target_session_attrs,
            replication,
        })
    }

    /// Parses `conninfo` (either syntax) and resolves it against the process environment.
    ///
    /// # Errors
    /// As [`ConnParams::parse`] and [`Config::resolve`].
    pub fn from_conninfo(conninfo: &str) -> Result<Config, ConfigError> {
        Config::resolve(&ConnParams::parse(conninfo)?, &ProcessEnv)
    }
}

fn refuse_unsupported(r: &Resolver<'_>) -> Result<(), ConfigError> {
    for &(keyword, reason) in REFUSED {
        if let Some(s) = r.non_empty(keyword) {
            return Err(unsupported(keyword, s.origin, reason));
        }
    }
    Ok(())
}

/// Element `i` of an optional comma-separated list, or empty.
fn element(list: &Option<Vec<&str>>, i: usize) -> String {
    list.as_ref()
        .and_then(|l| l.get(i))
        .map_or_else(String::new, |s| (*s).to_owned())
}

/// Splits `host`, `hostaddr` and `port` into one [`HostSpec`] per host.
fn resolve_hosts(r: &Resolver<'_>) -> Result<Vec<HostSpec>, ConfigError> {
    let host = r.non_empty("host");
    let hostaddr = r.non_empty("hostaddr");
    let port = r.non_empty("port");
    let host_list: Option<Vec<&str>> = host.as_ref().map(|s| s.value.split(',').collect());
    let addr_list: Option<Vec<&str>> = hostaddr.as_ref().map(|s| s.value.split(',').collect());

    let count = match (&addr_list, &host_list) {
        (Some(addrs), Some(hosts)) if hosts.len() != addrs.len() => {
            return Err(ConfigError::HostCountMismatch {
                hosts: hosts.len(),
                hostaddrs: addrs.len(),
            });
        }
        (Some(list), _) | (None, Some(list)) => list.len(),
        (None, None) => 1,
    };
    let port_list: Option<Vec<&str>> = match &port {
        None => None,
        Some(s) => {
            let list: Vec<&str> = s.value.split(',').collect();
            if list.len() == 1 {
                Some(vec![list[0]; count])
            } else if list.len() == count {
                Some(list)
            } else {
                return Err(ConfigError::PortCountMismatch {
                    ports: list.len(),
                    hosts: count,
                    origin: s.origin,
                });
            }
        }
    };

    let mut specs = Vec::with_capacity(count);
    for i in 0..count {
        let addr_text = element(&addr_list, i);
        let hostaddr_ip = if addr_text.is_empty() {
            None
        } else {
            match addr_text.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    let origin = hostaddr
                        .as_ref()
                        .map_or(ParamSource::Explicit, |s| s.origin);
                    return Err(invalid(
                        "hostaddr",
                        Setting {
                            value: addr_text,
                            origin,
                        },
                    ));
                }
            }
        };
        let name = element(&host_list, i);
        let host = if !name.is_empty() {
            if name.starts_with('/') || name.starts_with('@') {
                Host::Unix(PathBuf::from(name))
            } else {
                Host::Tcp(name)
            }
        } else if !addr_text.is_empty() {
            // libpq then uses the address wherever it would use the name (.pgpass, messages).
            Host::Tcp(addr_text)
        } else {
            Host::Unix(PathBuf::from(DEFAULT_SOCKET_DIR))
        };
        let port_text = element(&port_list, i);
        let port = if port_text.is_empty() {
            DEFAULT_PORT
        } else {
            match parse_c_int(&port_text)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&n| n != 0)
            {
                Some(n) => n,
                None => {
                    let origin = port.as_ref().map_or(ParamSource::Explicit, |s| s.origin);
                    return Err(invalid(
                        "port",
                        Setting {
                            value: port_text,
                            origin,
                        },
                    ));
                }
            }
        };
        specs.push(HostSpec {
            host,
            hostaddr: hostaddr_ip,
            port,
        });
    }
    Ok(specs)
}

fn resolve_ssl(r: &Resolver<'_>) -> Result<SslConfig, ConfigError> {
    let rootcert = match r.non_empty("sslrootcert") {
        Some(s) if s.value == "system" => Some(RootCert::System),
        Some(s) => Some(RootCert::File(PathBuf::from(s.value))),
        None => r.home_file("root.crt").map(RootCert::File),
    };

    let mode = match r.get("sslmode") {
        Some(s) => s
            .value
            .parse::<SslMode>()
            .map_err(|_| invalid("sslmode", s))?,
        None => {
            // The deprecated PGREQUIRESSL: a value starting with "1" means require.
            if r.env
                .var("PGREQUIRESSL")
                .is_some_and(|v| v.starts_with('1'))
            {
                SslMode::Require
            } else if rootcert == Some(RootCert::System) {
                // sslrootcert=system strengthens the *default* mode only.
                SslMode::VerifyFull
            } else {
                SslMode::Prefer
            }
        }
    };

    let (negotiation, _) = r.enumeration("sslnegotiation", SslNegotiation::Postgres)?;
    if negotiation == SslNegotiation::Direct && !mode.requires_tls() {
        return Err(ConfigError::WeakSslModeForDirect { sslmode: mode });
    }
    if rootcert == Some(RootCert::System) && mode != SslMode::VerifyFull {
        return Err(ConfigError::WeakSslModeForSystemRoots { sslmode: mode });
    }

    check_tls_versions(r)?;

    let (cert_mode, cert_mode_origin) = r.enumeration("sslcertmode", CertMode::Allow)?;
    let (cert, key) = match cert_mode {
        CertMode::Disable => (None, None),
        CertMode::Allow => (
            r.string("sslcert")
                .map(PathBuf::from)
                .or_else(|| r.home_file("postgresql.crt")),
            r.string("sslkey")
                .map(PathBuf::from)
                .or_else(|| r.home_file("postgresql.key")),
        ),
        CertMode::Require => {
            return Err(unsupported(
                "sslcertmode",
                cert_mode_origin.unwrap_or(ParamSource::Explicit),
                "sslcertmode=require is not implemented",
            ));
        }
    };

    // libpq sends SNI when the value starts with "1"; any other value, even "true", is off.
    let sni = r.get("sslsni").is_none_or(|s| s.value.starts_with('1'));

    Ok(SslConfig {
        mode,
        rootcert,
        cert,
        key,
        negotiation,
        sni,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertMode {
    Disable,
    Allow,
    Require,
}

impl std::str::FromStr for CertMode {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "disable" => Ok(Self::Disable),
            "allow" => Ok(Self::Allow),
            "require" => Ok(Self::Require),
            _ => Err(()),
        }
    }
}

/// `ssl_min_protocol_version` / `ssl_max_protocol_version`, validated like libpq
/// (case-insensitive `TLSv1`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`; empty means unset; the default
/// minimum is `TLSv1.2`), then checked against what pgwalrus's TLS stack speaks: TLS 1.2 and
/// 1.3, both always offered. Bounds that admit both are accepted; bounds that would exclude
/// either are refused, since honouring them would need a setting [`SslConfig`] lacks.
fn check_tls_versions(r: &Resolver<'_>) -> Result<(), ConfigError> {
    let version = |keyword: &'static str| -> Result<Option<(u8, ParamSource)>, ConfigError> {
        let Some(s) = r.non_empty(keyword) else {
            return Ok(None);
        };
        let rank = match s.value.to_ascii_lowercase().as_str() {
            "tlsv1" => 0,
            "tlsv1.1" => 1,
            "tlsv1.2" => 2,
            "tlsv1.3" => 3,
            _ => return Err(invalid(keyword, s)),
        };
        Ok(Some((rank, s.origin)))
    };
    let min = version("ssl_min_protocol_version")?;
    let max = version("ssl_max_protocol_version")?;
    if let (Some((lo, _)), Some((hi, _))) = (min, max)
        && lo > hi
    {
        return Err(ConfigError::InvalidSslProtocolRange);
    }
    if let Some((3, origin)) = min {
        return Err(unsupported(
            "ssl_min_protocol_version",
            origin,
            "a minimum above TLSv1.2 cannot be enforced yet",
        ));
    }
    if let Some((hi, origin)) = max
        && hi < 3
    {
        return Err(unsupported(
            "ssl_max_protocol_version",
            origin,
            "a maximum below TLSv1.3 cannot be enforced yet",
        ));
    }
    Ok(())
}

/// Keywords validated like libpq but without a [`Config`] field.
fn check_ignored_enumerations(r: &Resolver<'_>) -> Result<(), ConfigError> {
    if let Some(s) = r.get("gssencmode") {
        match s.value.as_str() {
            "disable" | "prefer" => {}
            // What libpq built without GSSAPI says too.
            "require" => {
                return Err(unsupported(
                    "gssencmode",
                    s.origin,
                    "GSSAPI encryption is not implemented",
                ));
            }
            _ => return Err(invalid("gssencmode", s)),
        }
    }
    if let Some(s) = r.get("load_balance_hosts") {
        match s.value.as_str() {
            "disable" => {}
            "random" => {
                return Err(unsupported(
                    "load_balance_hosts",
                    s.origin,
                    "random host order is not implemented",
                ));
            }
            _ => return Err(invalid("load_balance_hosts", s)),
        }
    }
    let protocol = |keyword: &'static str| -> Result<Option<(bool, ParamSource)>, ConfigError> {
        let Some(s) = r.non_empty(keyword) else {
            return Ok(None);
        };
        match s.value.as_str() {
            "3.0" => Ok(Some((false, s.origin))),
            "3.2" | "latest" => Ok(Some((true, s.origin))),
            _ => Err(invalid(keyword, s)),
        }
    };
    protocol("max_protocol_version")?;
    if let Some((true, origin)) = protocol("min_protocol_version")? {
        return Err(unsupported(
            "min_protocol_version",
            origin,
            "only protocol version 3.0 is implemented",
        ));
    }
    Ok(())
}

/// C `strtol` on the whole string with nothing after the digits (libpq's `useKeepalives`):
/// leading whitespace and a sign allowed, no digits reads as 0.
fn parse_strtol_exact(s: &str) -> Option<i64> {
    let t = s.trim_start_matches(|c: char| c.is_ascii() && super::conninfo::is_space(c as u8));
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() {
        // strtol consumed nothing, so the end pointer is the start of the string.
        return s.is_empty().then_some(0);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = digits.bytes().try_fold(0i64, |acc, b| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
    });
    // On overflow strtol saturates, which is still non-zero.
    let n = n.unwrap_or(i64::MAX);
    Some(if negative { -n } else { n })
}

/// libpq's `pqParseIntParam`: whitespace around an optionally signed decimal that fits in a
/// C `int`.
fn parse_c_int(s: &str) -> Option<i32> {
    let t = s.trim_matches(|c: char| c.is_ascii() && super::conninfo::is_space(c as u8));
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unsigned = t.strip_prefix('+').unwrap_or(t);
    unsigned.parse::<i32>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::path::Path;

    #[derive(Default)]
    struct FakeEnv {
        vars: HashMap<&'static str, String>,
        home: Option<PathBuf>,
        user: Option<String>,
        files: HashSet<PathBuf>,
    }

    impl FakeEnv {
        fn new() -> Self {
            Self {
                home: Some("/home/walrus".into()),
                user: Some("walrus".into()),
                ..Self::default()
            }
        }

        fn var(mut self, name: &'static str, value: &str) -> Self {
            self.vars.insert(name, value.to_owned());
            self
        }

        fn file(mut self, path: &str) -> Self {
            self.files.insert(PathBuf::from(path));
            self
        }
    }

    impl Environment for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn home_dir(&self) -> Option<PathBuf> {
            self.home.clone()
        }
        fn os_user(&self) -> Option<String> {
            self.user.clone()
        }
        fn path_exists(&self, path: &Path) -> bool {
            self.files.contains(path)
        }
    }

    fn resolve_with(conninfo: &str, env: &FakeEnv) -> Result<Config, ConfigError> {
        Config::resolve(&ConnParams::parse(conninfo)?, env)
    }

    fn ok(conninfo: &str, env: &FakeEnv) -> Config {
        resolve_with(conninfo, env).unwrap_or_else(|e| panic!("{conninfo:?}: {e}"))
    }

    fn fails(conninfo: &str, env: &FakeEnv) -> ConfigError {
        match resolve_with(conninfo, env) {
            Ok(c) => panic!("{conninfo:?} resolved to {c:?}"),
            Err(e) => e,
        }
    }

    fn unix(dir: &str, port: u16) -> HostSpec {
        HostSpec {
            host: Host::Unix(dir.into()),
            hostaddr: None,
            port,
        }
    }

    fn tcp(name: &str, port: u16) -> HostSpec {
        HostSpec {
            host: Host::Tcp(name.into()),
            hostaddr: None,
            port,
        }
    }

    #[test]
    fn defaults_with_an_empty_environment() {
        let c = ok("", &FakeEnv::new());
        assert_eq!(c.hosts, vec![unix(DEFAULT_SOCKET_DIR, 5432)]);
        assert_eq!(c.user, "walrus");
        assert_eq!(c.dbname.as_deref(), Some("walrus"));
        assert_eq!(c.password, None);
        assert_eq!(c.passfile, Some(PathBuf::from("/home/walrus/.pgpass")));
        assert_eq!(c.application_name, None);
        assert_eq!(c.options, None);
        assert_eq!(c.connect_timeout, None);
        assert_eq!(c.keepalives, Keepalives::default());
        assert_eq!(c.tcp_user_timeout, None);
        assert_eq!(c.ssl, SslConfig::default());
        assert_eq!(c.channel_binding, ChannelBinding::Prefer);
        assert_eq!(c.target_session_attrs, TargetSessionAttrs::Any);
        assert_eq!(c.replication, ReplicationMode::Off);
    }

    #[test]
    fn no_home_means_no_passfile() {
        let env = FakeEnv {
            home: None,
            ..FakeEnv::new()
        };
        assert_eq!(ok("", &env).passfile, None);
    }

    #[test]
    fn no_user_anywhere_is_an_error() {
        let env = FakeEnv {
            user: None,
            ..FakeEnv::new()
        };
        assert!(matches!(fails("", &env), ConfigError::NoUser));
        assert_eq!(ok("user=u", &env).user, "u");
        assert_eq!(
            ok(
                "",
                &FakeEnv {
                    user: None,
                    ..FakeEnv::new()
                }
                .var("PGUSER", "e")
            )
            .user,
            "e"
        );
    }

    #[test]
    fn environment_fills_what_the_string_leaves_unset() {
        let env = FakeEnv::new()
            .var("PGHOST", "envhost")
            .var("PGPORT", "6543")
            .var("PGUSER", "envuser")
            .var("PGPASSWORD", "envpw")
            .var("PGPASSFILE", "/etc/pgpass")
            .var("PGDATABASE", "envdb")
            .var("PGAPPNAME", "envapp")
            .var("PGOPTIONS", "-c x=y")
            .var("PGCONNECT_TIMEOUT", "10")
            .var("PGSSLMODE", "require")
            .var("PGSSLROOTCERT", "/ca.pem")
            .var("PGSSLCERT", "/c.crt")
            .var("PGSSLKEY", "/c.key")
            .var("PGCHANNELBINDING", "require")
            .var("PGSSLNEGOTIATION", "direct")
            .var("PGTARGETSESSIONATTRS", "primary")
            .var("PGSSLSNI", "0");
        let c = ok("", &env);
        assert_eq!(c.hosts, vec![tcp("envhost", 6543)]);
        assert_eq!(c.user, "envuser");
        assert_eq!(c.password.as_deref(), Some("envpw"));
        assert_eq!(c.passfile, Some(PathBuf::from("/etc/pgpass")));
        assert_eq!(c.dbname.as_deref(), Some("envdb"));
        assert_eq!(c.application_name.as_deref(), Some("envapp"));
        assert_eq!(c.options.as_deref(), Some("-c x=y"));
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(10)));
        assert_eq!(c.ssl.mode, SslMode::Require);
        assert_eq!(c.ssl.rootcert, Some(RootCert::File("/ca.pem".into())));
        assert_eq!(c.ssl.cert, Some(PathBuf::from("/c.crt")));
        assert_eq!(c.ssl.key, Some(PathBuf::from("/c.key")));
        assert_eq!(c.ssl.negotiation, SslNegotiation::Direct);
        assert!(!c.ssl.sni);
        assert_eq!(c.channel_binding, ChannelBinding::Require);
        assert_eq!(c.target_session_attrs, TargetSessionAttrs::Primary);

        // The string wins over the environment.
        let c = ok("host=strhost user=struser sslmode=verify-full", &env);
        assert_eq!(c.hosts, vec![tcp("strhost", 6543)]);
        assert_eq!(c.user, "struser");
        assert_eq!(c.ssl.mode, SslMode::VerifyFull);
    }

    #[test]
    fn hostaddr_comes_from_pghostaddr() {
        let env = FakeEnv::new().var("PGHOSTADDR", "192.0.2.7");
        let c = ok("host=db", &env);
        assert_eq!(
            c.hosts[0].hostaddr,
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
        );
        assert_eq!(c.hosts[0].host, Host::Tcp("db".into()));
    }

    #[test]
    fn explicit_overrides_beat_the_string_and_the_environment() {
        let env = FakeEnv::new().var("PGPORT", "1111");
        let mut params =
            ConnParams::parse("host=a port=2222 user=x").unwrap_or_else(|e| panic!("{e}"));
        params.set("host", "b").unwrap_or_else(|e| panic!("{e}"));
        params.set("port", "3333").unwrap_or_else(|e| panic!("{e}"));
        params.set("user", "y").unwrap_or_else(|e| panic!("{e}"));
        let c = Config::resolve(&params, &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.hosts, vec![tcp("b", 3333)]);
        assert_eq!(c.user, "y");
    }

    #[test]
    fn empty_value_blocks_the_environment_and_means_default() {
        let env = FakeEnv::new()
            .var("PGHOST", "envhost")
            .var("PGUSER", "envuser");
        let c = ok("host='' user=''", &env);
        assert_eq!(c.hosts, vec![unix(DEFAULT_SOCKET_DIR, 5432)]);
        assert_eq!(c.user, "walrus");
        // Whereas pg_receivewal drops empty values, so the environment applies.
        let params = ConnParams::parse("host='' user=''")
            .unwrap_or_else(|e| panic!("{e}"))
            .for_physical_replication();
        let c = Config::resolve(&params, &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.hosts, vec![tcp("envhost", 5432)]);
        assert_eq!(c.user, "envuser");
        assert_eq!(c.dbname.as_deref(), Some("replication"));
        assert_eq!(c.replication, ReplicationMode::Physical);
    }

    #[test]
    fn empty_environment_variable_counts_as_set() {
        let env = FakeEnv::new().var("PGHOST", "");
        assert_eq!(ok("", &env).hosts, vec![unix(DEFAULT_SOCKET_DIR, 5432)]);
        let env = FakeEnv::new().var("PGSSLMODE", "");
        let e = fails("", &env);
        assert!(matches!(
            e,
            ConfigError::InvalidValue {
                keyword: "sslmode",
                origin: ParamSource::Environment { var: "PGSSLMODE" },
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "invalid sslmode value: \"\" (from environment variable PGSSLMODE)"
        );
    }

    #[test]
    fn multiple_hosts_with_one_port_share_it() {
        let c = ok("host=a,b,/tmp port=5433", &FakeEnv::new());
        assert_eq!(
            c.hosts,
            vec![tcp("a", 5433), tcp("b", 5433), unix("/tmp", 5433)]
        );
    }

    #[test]
    fn multiple_hosts_zip_with_ports_and_empty_entries_mean_default() {
        let c = ok("host=a,,c port=1,,3", &FakeEnv::new());
        assert_eq!(
            c.hosts,
            vec![tcp("a", 1), unix(DEFAULT_SOCKET_DIR, 5432), tcp("c", 3)]
        );
        let c = ok("postgresql://a:1,b", &FakeEnv::new());
        assert_eq!(c.hosts, vec![tcp("a", 1), tcp("b", 5432)]);
    }

    #[test]
    fn port_count_mismatch_names_port() {
        let e = fails("host=a,b,c port=1,2", &FakeEnv::new());
        assert!(matches!(
            e,
            ConfigError::PortCountMismatch {
                ports: 2,
                hosts: 3,
                origin: ParamSource::ConnString { position: 16 }
            }
        ));
        assert_eq!(e.keyword(), Some("port"));
        assert_eq!(e.position(), Some(16));
        // A port list with a single host is a mismatch too.
        assert!(matches!(
            fails("port=1,2", &FakeEnv::new()),
            ConfigError::PortCountMismatch { hosts: 1, .. }
        ));
    }

    #[test]
    fn hostaddr_sets_the_host_count() {
        let c = ok("hostaddr=192.0.2.1,2001:db8::1 port=5433", &FakeEnv::new());
        assert_eq!(
            c.hosts,
            vec![
                HostSpec {
                    host: Host::Tcp("192.0.2.1".into()),
                    hostaddr: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                    port: 5433
                },
                HostSpec {
                    host: Host::Tcp("2001:db8::1".into()),
                    hostaddr: Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
                    port: 5433
                },
            ]
        );
        let c = ok("host=a,b hostaddr=192.0.2.1,", &FakeEnv::new());
        assert_eq!(c.hosts[0].host, Host::Tcp("a".into()));
        assert!(c.hosts[0].hostaddr.is_some());
        assert_eq!(c.hosts[1], tcp("b", 5432));
    }

    #[test]
    fn host_and_hostaddr_counts_must_agree() {
        let e = fails("host=a,b,c hostaddr=192.0.2.1,192.0.2.2", &FakeEnv::new());
        assert!(matches!(
            e,
            ConfigError::HostCountMismatch {
                hosts: 3,
                hostaddrs: 2
            }
        ));
        assert_eq!(
            e.to_string(),
            "could not match 3 host names to 2 hostaddr values"
        );
    }

    #[test]
    fn bad_hostaddr_and_ports_name_the_element_and_position() {
        let e = fails("host=a hostaddr=db.example", &FakeEnv::new());
        assert!(matches!(
            &e,
            ConfigError::InvalidValue { keyword: "hostaddr", value, origin: ParamSource::ConnString { position: 16 } }
                if value == "db.example"
        ));
        for bad in ["0", "65536", "x", "-1", "5432x", "99999999999"] {
            let e = fails(&format!("host=a,b port=1,{bad}"), &FakeEnv::new());
            assert!(
                matches!(&e, ConfigError::InvalidValue { keyword: "port", value, .. } if value == bad),
                "{bad}: {e}"
            );
            assert_eq!(e.position(), Some(14), "{bad}");
        }
        // pqParseIntParam allows surrounding whitespace and a plus sign.
        assert_eq!(ok("port=' +5433 '", &FakeEnv::new()).hosts[0].port, 5433);
    }

    #[test]
    fn unix_socket_hosts() {
        let c = ok("host=/var/lib/postgresql,@abstract", &FakeEnv::new());
        assert_eq!(
            c.hosts,
            vec![unix("/var/lib/postgresql", 5432), unix("@abstract", 5432)]
        );
        let c = ok(
            "postgresql://%2Fvar%2Frun%2Fpostgresql:5433/db",
            &FakeEnv::new(),
        );
        assert_eq!(c.hosts, vec![unix("/var/run/postgresql", 5433)]);
        assert_eq!(c.dbname.as_deref(), Some("db"));
    }

    #[test]
    fn ipv6_uri_host_is_tcp() {
        let c = ok("postgresql://[::1]:5433", &FakeEnv::new());
        assert_eq!(c.hosts, vec![tcp("::1", 5433)]);
    }

    #[test]
    fn connect_timeout_like_libpq() {
        let env = FakeEnv::new();
        let timeout = |v: &str| ok(&format!("connect_timeout='{v}'"), &env).connect_timeout;
        assert_eq!(timeout("10"), Some(Duration::from_secs(10)));
        assert_eq!(timeout("1"), Some(Duration::from_secs(2)));
        assert_eq!(timeout("2"), Some(Duration::from_secs(2)));
        assert_eq!(timeout("0"), None);
        assert_eq!(timeout("-5"), None);
        assert_eq!(timeout(" 7 "), Some(Duration::from_secs(7)));
        for bad in ["", "ten", "1.5", "5s", "2147483648"] {
            let e = fails(&format!("connect_timeout='{bad}'"), &env);
            assert!(
                matches!(
                    e,
                    ConfigError::InvalidInteger {
                        keyword: "connect_timeout",
                        ..
                    }
                ),
                "{bad}"
            );
            assert_eq!(e.position(), Some(16), "{bad}");
        }
    }

    #[test]
    fn keepalives_like_libpq() {
        let env = FakeEnv::new();
        let c = ok(
            "keepalives=0 keepalives_idle=30 keepalives_interval=-3 keepalives_count=4",
            &env,
        );
        assert_eq!(
            c.keepalives,
            Keepalives {
                enabled: false,
                idle: Some(Duration::from_secs(30)),
                interval: Some(Duration::from_secs(0)),
                count: Some(4),
            }
        );
        assert!(ok("keepalives=1", &env).keepalives.enabled);
        assert!(ok("keepalives=' 2'", &env).keepalives.enabled);
        // strtol of an empty string is 0, so libpq turns keepalives off.
        assert!(!ok("keepalives=''", &env).keepalives.enabled);
        for bad in ["on", "1 ", "x"] {
            let e = fails(&format!("keepalives='{bad}'"), &env);
            assert!(
                matches!(
                    e,
                    ConfigError::InvalidInteger {
                        keyword: "keepalives",
                        ..
                    }
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            fails("keepalives_count=many", &env),
            ConfigError::InvalidInteger {
                keyword: "keepalives_count",
                ..
            }
        ));
    }

    #[test]
    fn tcp_user_timeout_in_milliseconds_like_libpq() {
        let env = FakeEnv::new();
        let timeout = |conninfo: &str| ok(conninfo, &env).tcp_user_timeout;
        assert_eq!(timeout(""), None);
        assert_eq!(
            timeout("tcp_user_timeout=10000"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            timeout("tcp_user_timeout=' 250 '"),
            Some(Duration::from_millis(250))
        );
        // Zero asks for the system default; libpq clamps a negative value to it.
        assert_eq!(timeout("tcp_user_timeout=0"), Some(Duration::ZERO));
        assert_eq!(timeout("tcp_user_timeout=-5"), Some(Duration::ZERO));
        // Kept with keepalives off too; whether it reaches the socket is `transport`'s rule.
        assert_eq!(
            timeout("keepalives=0 tcp_user_timeout=3000"),
            Some(Duration::from_secs(3))
        );
        for bad in ["1s", "many", "99999999999"] {
            assert!(
                matches!(
                    fails(&format!("tcp_user_timeout={bad}"), &env),
                    ConfigError::InvalidInteger {
                        keyword: "tcp_user_timeout",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn replication_keyword() {
        let env = FakeEnv::new();
        for (value, mode) in [
            ("true", ReplicationMode::Physical),
            ("on", ReplicationMode::Physical),
            ("yes", ReplicationMode::Physical),
            ("1", ReplicationMode::Physical),
            ("database", ReplicationMode::Database),
            ("false", ReplicationMode::Off),
            ("off", ReplicationMode::Off),
            ("no", ReplicationMode::Off),
            ("0", ReplicationMode::Off),
            ("", ReplicationMode::Off),
        ] {
            assert_eq!(
                ok(&format!("replication='{value}'"), &env).replication,
                mode,
                "{value}"
            );
        }
        let e = fails("replication=physical", &env);
        assert!(matches!(
            e,
            ConfigError::InvalidValue {
                keyword: "replication",
                ..
            }
        ));
        assert_eq!(e.position(), Some(12));
    }

    #[test]
    fn enumerations_are_validated_with_position() {
        let env = FakeEnv::new();
        for (keyword, bad) in [
            ("sslmode", "verify"),
            ("channel_binding", "required"),
            ("sslnegotiation", "tls"),
            ("target_session_attrs", "writable"),
            ("gssencmode", "maybe"),
            ("load_balance_hosts", "shuffle"),
            ("sslcertmode", "sometimes"),
            ("ssl_min_protocol_version", "SSLv3"),
            ("max_protocol_version", "4.0"),
        ] {
            let e = fails(&format!("host=a {keyword}={bad}"), &env);
            assert!(
                matches!(&e, ConfigError::InvalidValue { keyword: k, value, .. } if *k == keyword && value == bad),
                "{keyword}: {e}"
            );
            assert_eq!(e.position(), Some(8 + keyword.len()), "{keyword}");
            assert!(e.to_string().contains(keyword), "{e}");
        }
    }

    #[test]
    fn target_session_attrs_values() {
        let env = FakeEnv::new();
        for (v, t) in [
            ("any", TargetSessionAttrs::Any),
            ("read-write", TargetSessionAttrs::ReadWrite),
            ("read-only", TargetSessionAttrs::ReadOnly),
            ("primary", TargetSessionAttrs::Primary),
            ("standby", TargetSessionAttrs::Standby),
            ("prefer-standby", TargetSessionAttrs::PreferStandby),
        ] {
            assert_eq!(
                ok(&format!("target_session_attrs={v}"), &env).target_session_attrs,
                t
            );
        }
    }

    #[test]
    fn sslrootcert_system_defaults_mode_to_verify_full() {
        let env = FakeEnv::new();
        let c = ok("sslrootcert=system", &env);
        assert_eq!(c.ssl.rootcert, Some(RootCert::System));
        assert_eq!(c.ssl.mode, SslMode::VerifyFull);
        let e = fails("sslrootcert=system sslmode=verify-ca", &env);
        assert!(matches!(
            e,
            ConfigError::WeakSslModeForSystemRoots {
                sslmode: SslMode::VerifyCa
            }
        ));
        assert_eq!(
            e.to_string(),
            "weak sslmode \"verify-ca\" may not be used with sslrootcert=system (use \"verify-full\")"
        );
        // An explicit mode from the environment is explicit too.
        let env = FakeEnv::new().var("PGSSLMODE", "require");
        assert!(matches!(
            fails("sslrootcert=system", &env),
            ConfigError::WeakSslModeForSystemRoots { .. }
        ));
    }

    #[test]
    fn pgrequiressl_is_honoured_when_sslmode_is_unset() {
        let env = FakeEnv::new().var("PGREQUIRESSL", "1");
        assert_eq!(ok("", &env).ssl.mode, SslMode::Require);
        assert_eq!(ok("sslmode=disable", &env).ssl.mode, SslMode::Disable);
        let env = FakeEnv::new().var("PGREQUIRESSL", "0");
        assert_eq!(ok("", &env).ssl.mode, SslMode::Prefer);
        let env = FakeEnv::new()
            .var("PGREQUIRESSL", "1")
            .var("PGSSLMODE", "allow");
        assert_eq!(ok("", &env).ssl.mode, SslMode::Allow);
    }

    #[test]
    fn direct_negotiation_needs_a_strict_mode() {
        let env = FakeEnv::new();
        for mode in ["require", "verify-ca", "verify-full"] {
            let c = ok(&format!("sslnegotiation=direct sslmode={mode}"), &env);
            assert_eq!(c.ssl.negotiation, SslNegotiation::Direct);
        }
        for mode in ["disable", "allow", "prefer"] {
            let e = fails(&format!("sslnegotiation=direct sslmode={mode}"), &env);
            assert!(
                matches!(e, ConfigError::WeakSslModeForDirect { .. }),
                "{mode}"
            );
        }
        // The default mode (prefer) is too weak as well.
        assert!(matches!(
            fails("sslnegotiation=direct", &env),
            ConfigError::WeakSslModeForDirect {
                sslmode: SslMode::Prefer
            }
        ));
    }

    #[test]
    fn default_certificate_files_only_when_present() {
        let env = FakeEnv::new();
        let c = ok("sslmode=verify-full", &env);
        assert_eq!((c.ssl.rootcert, c.ssl.cert, c.ssl.key), (None, None, None));

        let env = FakeEnv::new()
            .file("/home/walrus/.postgresql/root.crt")
            .file("/home/walrus/.postgresql/postgresql.crt")
            .file("/home/walrus/.postgresql/postgresql.key");
        let c = ok("sslmode=verify-ca", &env);
        assert_eq!(
            c.ssl.rootcert,
            Some(RootCert::File("/home/walrus/.postgresql/root.crt".into()))
        );
        assert_eq!(
            c.ssl.cert,
            Some(PathBuf::from("/home/walrus/.postgresql/postgresql.crt"))
        );
        assert_eq!(
            c.ssl.key,
            Some(PathBuf::from("/home/walrus/.postgresql/postgresql.key"))
        );

        // Explicit settings win; empty ones mean the default.
        let c = ok("sslrootcert=/ca.pem sslcert='' sslkey=/k", &env);
        assert_eq!(c.ssl.rootcert, Some(RootCert::File("/ca.pem".into())));
        assert_eq!(
            c.ssl.cert,
            Some(PathBuf::from("/home/walrus/.postgresql/postgresql.crt"))
        );
        assert_eq!(c.ssl.key, Some(PathBuf::from("/k")));

        // sslcertmode=disable never sends a client certificate.
        let c = ok("sslcertmode=disable sslcert=/c", &env);
        assert_eq!((c.ssl.cert, c.ssl.key), (None, None));
        assert!(ok("sslcertmode=allow", &env).ssl.cert.is_some());
    }

    #[test]
    fn sslsni_follows_libpq_first_character_rule() {
        let env = FakeEnv::new();
        assert!(ok("", &env).ssl.sni);
        assert!(ok("sslsni=1", &env).ssl.sni);
        assert!(!ok("sslsni=0", &env).ssl.sni);
        assert!(!ok("sslsni=true", &env).ssl.sni);
        assert!(!ok("sslsni=''", &env).ssl.sni);
    }

    #[test]
    fn empty_strings_are_unset_for_names() {
        let env = FakeEnv::new();
        let c = ok(
            "password='' application_name='' options='' dbname='' passfile=''",
            &env,
        );
        assert_eq!(c.password, None);
        assert_eq!(c.application_name, None);
        assert_eq!(c.options, None);
        assert_eq!(c.dbname.as_deref(), Some("walrus"));
        assert_eq!(c.passfile, Some(PathBuf::from("/home/walrus/.pgpass")));
        let c = ok("fallback_application_name=pg_receivewal", &env);
        assert_eq!(
            c.fallback_application_name.as_deref(),
            Some("pg_receivewal")
        );
    }

    #[test]
    fn unsupported_features_are_refused_with_their_origin() {
        let env = FakeEnv::new();
        for (keyword, value) in [
            ("service", "mydb"),
            ("requirepeer", "postgres"),
            ("require_auth", "scram-sha-256"),
            ("sslcrl", "/crl.pem"),
            ("sslcrldir", "/crls"),
            ("sslpassword", "k"),
            ("sslkeylogfile", "/keys"),
            ("scram_client_key", "x"),
            ("oauth_issuer", "https://issuer.example"),
            ("oauth_client_secret", "s"),
            ("gssencmode", "require"),
            ("load_balance_hosts", "random"),
            ("sslcertmode", "require"),
            ("ssl_min_protocol_version", "TLSv1.3"),
            ("ssl_max_protocol_version", "TLSv1.2"),
            ("min_protocol_version", "3.2"),
        ] {
            let e = fails(&format!("{keyword}={value}"), &env);
            assert!(
                matches!(&e, ConfigError::Unsupported { keyword: k, origin: ParamSource::ConnString { .. }, .. } if *k == keyword),
                "{keyword}: {e}"
            );
            let message = e.to_string();
            assert!(message.contains(keyword), "{message}");
            // Secrets never appear in messages.
            if matches!(
                keyword,
                "sslpassword" | "oauth_client_secret" | "scram_client_key"
            ) {
                assert!(!message.contains(&format!("\"{value}\"")), "{message}");
            }
        }
        let e = fails("", &FakeEnv::new().var("PGSERVICE", "prod"));
        assert!(matches!(
            e,
            ConfigError::Unsupported {
                keyword: "service",
                origin: ParamSource::Environment { var: "PGSERVICE" },
                ..
            }
        ));
        assert!(matches!(
            fails("", &FakeEnv::new().var("PGSSLCRL", "/x")),
            ConfigError::Unsupported {
                keyword: "sslcrl",
                ..
            }
        ));
    }

    #[test]
    fn harmless_libpq_keywords_are_accepted() {
        let env = FakeEnv::new()
            .var("PGCLIENTENCODING", "UTF8")
            .var("PGKRBSRVNAME", "postgres")
            .var("PGSSLCOMPRESSION", "1");
        ok(
            "client_encoding=auto sslcompression=0 gssencmode=prefer gsslib=gssapi gssdelegation=0 \
             load_balance_hosts=disable tcp_user_timeout=0 ssl_min_protocol_version=TLSv1.2 \
             ssl_max_protocol_version=tlsv1.3 min_protocol_version=3.0 max_protocol_version=latest \
             servicefile=/x service='' sslcrl='' sslcertmode=allow",
            &env,
        );
        ok("gssencmode=disable ssl_min_protocol_version=TLSv1", &env);
    }

    #[test]
    fn tls_version_range_must_be_ordered() {
        let e = fails(
            "ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2",
            &FakeEnv::new(),
        );
        assert!(matches!(e, ConfigError::InvalidSslProtocolRange));
    }

    #[test]
    fn from_conninfo_uses_the_process_environment() {
        // Only keywords the environment cannot override, so the result is deterministic.
        let c = Config::from_conninfo(
            "host=db1 port=5433 user=u dbname=d password=p sslmode=disable passfile=/pw \
             channel_binding=disable target_session_attrs=any sslnegotiation=postgres \
             connect_timeout=5 application_name=a options=o sslrootcert=/r sslcert=/c sslkey=/k sslsni=1 \
             sslcertmode=allow gssencmode=disable load_balance_hosts=disable hostaddr='' service='' \
             requirepeer='' require_auth='' sslcrl='' sslcrldir='' ssl_min_protocol_version='' \
             ssl_max_protocol_version='' min_protocol_version='' max_protocol_version=''",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.hosts, vec![tcp("db1", 5433)]);
        assert_eq!(c.user, "u");
        assert!(matches!(
            Config::from_conninfo("db1"),
            Err(ConfigError::MissingEquals { .. })
        ));
    }

    #[test]
    fn strtol_and_int_parsers() {
        assert_eq!(parse_strtol_exact(""), Some(0));
        assert_eq!(parse_strtol_exact("  -3"), Some(-3));
        assert_eq!(parse_strtol_exact("+7"), Some(7));
        assert_eq!(parse_strtol_exact("99999999999999999999"), Some(i64::MAX));
        assert_eq!(parse_strtol_exact("-"), None);
        assert_eq!(parse_strtol_exact("  "), None);
        assert_eq!(parse_strtol_exact("1 "), None);
        assert_eq!(parse_c_int(" -12 "), Some(-12));
        assert_eq!(parse_c_int("+0"), Some(0));
        assert_eq!(parse_c_int("2147483647"), Some(i32::MAX));
        assert_eq!(parse_c_int("2147483648"), None);
        assert_eq!(parse_c_int("+-1"), None);
        assert_eq!(parse_c_int(""), None);
        assert_eq!(parse_c_int("é"), None);
    }

    #[test]
    fn passfile_lookup_uses_dbname_and_localhost_rule() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path =
            std::env::temp_dir().join(format!("pgwalrus-resolve-pgpass-{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(
            b"localhost:5432:replication:walrus:local\ndb1:5433:replication:walrus:remote\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        drop(f);
        let params = ConnParams::parse(&format!(
            "host=,db1 port=5432,5433 passfile={}",
            path.display()
        ))
        .unwrap_or_else(|e| panic!("{e}"))
        .for_physical_replication();
        let c = Config::resolve(&params, &FakeEnv::new()).unwrap_or_else(|e| panic!("{e}"));
        let local = c.passfile_lookup(&c.hosts[0]);
        let remote = c.passfile_lookup(&c.hosts[1]);
        let _ = std::fs::remove_file(&path);
        assert_eq!(local.password.as_deref(), Some("local"));
        assert_eq!(remote.password.as_deref(), Some("remote"));
        let no_file = Config {
            passfile: None,
            ..c.clone()
        };
        assert!(no_file.passfile_lookup(&c.hosts[0]).password.is_none());
    }
}
