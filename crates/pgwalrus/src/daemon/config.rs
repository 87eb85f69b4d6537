//! The daemon's configuration file (TOML): global settings, defaults for every per-server
//! key, and one `[[server]]` table per server. Parsed strictly — an unknown key or a bad
//! value is refused with the file, line and key — and resolved into one engine's settings
//! and connection settings per server, comparable for equality so a reload can tell what
//! changed.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pgwalrus_archive::{CompressionSpec, Durability};
use pgwalrus_client::config::{Config, ConnParams, ProcessEnv};
use pgwalrus_receiver::ReceiveSettings;
use serde::Deserialize;

/// Where the HTTP endpoint listens unless the file says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7433";

/// Per-server keys, as written (in `[defaults]` or a `[[server]]` table).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerKeys {
    name: Option<String>,
    conninfo: Option<String>,
    password_file: Option<PathBuf>,
    slot: Option<String>,
    create_slot: Option<bool>,
    archive: Option<PathBuf>,
    compression: Option<String>,
    synchronous: Option<bool>,
    verify: Option<bool>,
    fsync: Option<bool>,
    status_interval: Option<u64>,
    receive_timeout: Option<u64>,
    flush_interval: Option<u64>,
    min_free_space: Option<toml::Value>,
    keep_time: Option<String>,
    keep_size: Option<String>,
    spool: Option<PathBuf>,
    ship_partial_interval: Option<u64>,
    flush_after_shipped: Option<bool>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_profile: Option<String>,
    s3_addressing_style: Option<String>,
    s3_single_writer: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    http_token_file: Option<PathBuf>,
    log_format: Option<String>,
    #[serde(default)]
    defaults: ServerKeys,
    #[serde(default)]
    server: Vec<toml::Spanned<ServerKeys>>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// The HTTP endpoint (`/status`, `/metrics`, `/healthz`).
    pub listen: SocketAddr,
    /// The bearer token every request but `/healthz` must carry, when one is configured
    /// (read from `http_token_file`; never shown).
    pub http_token: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// The servers, in file order.
    pub servers: Vec<ServerConfig>,
}

/// One server to archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Its name (unique in the file): the key of status rows, metric labels and reloads.
    pub name: String,
    /// What the engine does.
    pub settings: ReceiveSettings,
    /// How it connects (password included when one was found; never shown).
    pub conn: Config,
    /// Retention of its archive (nothing is removed without a rule).
    pub keep: pgwalrus_archive::retention::Keep,
    /// With `archive = "s3://…"`: where to ship (the engine's directory is then `spool`).
    pub ship: Option<crate::archiver::ShipConfig>,
}

/// A configuration that cannot be used: where and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong, naming the key.
    pub message: String,
}

/// Reads and validates the configuration file at `path`.
///
/// # Errors
/// [`ConfigError`] naming the file, the line and the key at fault.
pub fn load(path: &Path) -> Result<DaemonConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: None,
        message: format!("could not read the configuration file: {e}"),
    })?;
    parse(&path.display().to_string(), &text)
}

/// Validates configuration `text` read from `file`.
///
/// # Errors
/// [`ConfigError`] naming the file, the line and the key at fault.
pub fn parse(file: &str, text: &str) -> Result<DaemonConfig, ConfigError> {
    let line_of = |offset: usize| Some(text[..offset.min(text.len())].matches('\n').count() + 1);
    let fail = |line: Option<usize>, message: String| ConfigError {
        file: file.to_owned(),
        line,
        message,
    };
    let parsed: File = toml::from_str(text).map_err(|e| {
        let line = e.span().and_then(|s| line_of(s.start));
        fail(line, e.message().to_owned())
    })?;
    let listen = parsed
        .listen
        .as_deref()
        .unwrap_or(DEFAULT_LISTEN)
        .parse()
        .map_err(|e| fail(None, format!("key \"listen\": not an address:port ({e})")))?;
    let log_format = match parsed.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(fail(
                None,
                format!("key \"log_format\": \"{other}\" is neither \"text\" nor \"json\""),
            ));
        }
    };
    let http_token = match &parsed.http_token_file {
        None => None,
        Some(path) => {
            let token = std::fs::read_to_string(path).map_err(|e| {
                fail(
                    None,
                    format!(
                        "key \"http_token_file\": could not read \"{}\": {e}",
                        path.display()
                    ),
                )
            })?;
            let token = token.trim().to_owned();
            if token.is_empty() {
                return Err(fail(
                    None,
                    format!("key \"http_token_file\": \"{}\" is empty", path.display()),
                ));
            }
            Some(token)
        }
    };
    let mut names = BTreeSet::new();
    let mut servers = Vec::new();
    for table in &parsed.server {
        let line = line_of(table.span().start);
        let keys = table.get_ref();
        let server = resolve(&parsed.defaults, keys).map_err(|m| fail(line, m))?;
        if !names.insert(server.name.clone()) {
            return Err(fail(
                line,
                format!("key \"name\": server \"{}\" is defined twice", server.name),
            ));
        }
        servers.push(server);
    }
    Ok(DaemonConfig {
        listen,
        http_token,
        log_format,
        servers,
    })
}

/// One `[[server]]` table over the `[defaults]`.
fn resolve(defaults: &ServerKeys, keys: &ServerKeys) -> Result<ServerConfig, String> {
    let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
    let name = keys
        .name
        .clone()
        .ok_or("a [[server]] table needs the key \"name\"")?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "key \"name\": \"{name}\" may hold only letters, digits, '-', '_' and '.'"
        ));
    }
    let within = |what: &str| format!("server \"{name}\", key \"{what}\"");
    let conninfo = pick(&keys.conninfo, &defaults.conninfo)
        .ok_or_else(|| format!("{}: missing", within("conninfo")))?;
    let archive = keys
        .archive
        .clone()
        .or_else(|| defaults.archive.as_ref().map(|d| d.join(&name)))
        .ok_or_else(|| format!("{}: missing", within("archive")))?;
    // `archive` is a directory, or an object-storage URL with a local `spool`.
    let (archive, ship) = match archive.to_str().filter(|a| a.starts_with("s3://")) {
        None => (archive, None),
        Some(url) => {
            let url = pgwalrus_bucket::BucketUrl::parse(url)
                .map_err(|e| format!("{}: {e}", within("archive")))?;
            let spool = keys
                .spool
                .clone()
                .or_else(|| defaults.spool.as_ref().map(|d| d.join(&name)))
                .ok_or_else(|| {
                    format!(
                        "{}: missing (an s3:// archive needs a local spool directory)",
                        within("spool")
                    )
                })?;
            let mut bucket = pgwalrus_bucket::BucketSettings::new(url);
            bucket.endpoint = pick(&keys.s3_endpoint, &defaults.s3_endpoint);
            bucket.region = pick(&keys.s3_region, &defaults.s3_region);
            bucket.profile = pick(&keys.s3_profile, &defaults.s3_profile);
            if let Some(style) = pick(&keys.s3_addressing_style, &defaults.s3_addressing_style) {
                bucket.addressing_style = style
                    .parse()
                    .map_err(|e| format!("{}: {e}", within("s3_addressing_style")))?;
            }
            bucket.single_writer = keys
                .s3_single_writer
                .or(defaults.s3_single_writer)
                .unwrap_or(false);
            let interval = keys
                .ship_partial_interval
                .or(defaults.ship_partial_interval)
                .unwrap_or(10);
            let ship = crate::archiver::ShipConfig {
                bucket,
                partial_interval: (interval > 0).then(|| Duration::from_secs(interval)),
                flush_after_shipped: keys
                    .flush_after_shipped
                    .or(defaults.flush_after_shipped)
                    .unwrap_or(false),
            };
            (spool, Some(ship))
        }
    };
    if ship.is_none() {
        for (key, set) in [
            ("spool", keys.spool.is_some()),
            (
                "ship_partial_interval",
                keys.ship_partial_interval.is_some(),
            ),
            ("s3_endpoint", keys.s3_endpoint.is_some()),
            ("s3_region", keys.s3_region.is_some()),
            ("s3_profile", keys.s3_profile.is_some()),
            ("s3_addressing_style", keys.s3_addressing_style.is_some()),
            ("s3_single_writer", keys.s3_single_writer.is_some()),
        ] {
            if set {
                return Err(format!("{}: only with an s3:// archive", within(key)));
            }
        }
    }
    let mut params =
        ConnParams::parse(&conninfo).map_err(|e| format!("{}: {e}", within("conninfo")))?;
    if params.get("fallback_application_name").is_none() {
        params
            .set(
                "fallback_application_name",
                format!("pgwalrus-{name}").as_str(),
            )
            .map_err(|e| format!("{}: {e}", within("conninfo")))?;
    }
    let params = params.for_physical_replication();
    let mut conn = Config::resolve(&params, &ProcessEnv)
        .map_err(|e| format!("{}: {e}", within("conninfo")))?;
    if let Some(file) = keys
        .password_file
        .as_ref()
        .or(defaults.password_file.as_ref())
    {
        let password = std::fs::read_to_string(file).map_err(|e| {
            format!(
                "{}: could not read \"{}\": {e}",
                within("password_file"),
                file.display()
            )
        })?;
        conn.password = Some(password.trim_end_matches(['\n', '\r']).to_owned());
    }
    let compression = match pick(&keys.compression, &defaults.compression) {
        None => CompressionSpec::NONE,
        Some(text) => text
            .parse::<CompressionSpec>()
            .map_err(|e| format!("{}: {e}", within("compression")))?,
    };
    let flag = |a: Option<bool>, b: Option<bool>, default: bool| a.or(b).unwrap_or(default);
    let seconds = |a: Option<u64>, b: Option<u64>, default: u64| {
        let s = a.or(b).unwrap_or(default);
        (s > 0).then(|| Duration::from_secs(s))
    };
    let mut settings = ReceiveSettings::new(archive);
    settings.slot = pick(&keys.slot, &defaults.slot);
    settings.create_slot = flag(keys.create_slot, defaults.create_slot, false);
    // A daemon restarts: a slot it created before is fine.
    settings.if_not_exists = true;
    if settings.create_slot && settings.slot.is_none() {
        return Err(format!(
            "{}: create_slot needs a slot",
            within("create_slot")
        ));
    }
    settings.synchronous = flag(keys.synchronous, defaults.synchronous, false);
    settings.verify = flag(keys.verify, defaults.verify, true);
    settings.durability = if flag(keys.fsync, defaults.fsync, true) {
        Durability::Fsync
    } else {
        Durability::NoSync
    };
    settings.compression = compression;
    settings.status_interval = seconds(keys.status_interval, defaults.status_interval, 10);
    settings.receive_timeout = seconds(keys.receive_timeout, defaults.receive_timeout, 60);
    settings.flush_interval = seconds(keys.flush_interval, defaults.flush_interval, 1);
    settings.min_free_space = match keys
        .min_free_space
        .as_ref()
        .or(defaults.min_free_space.as_ref())
    {
        None => 0,
        Some(value) => bytes(value).map_err(|e| format!("{}: {e}", within("min_free_space")))?,
    };
    let keep = pgwalrus_archive::retention::Keep {
        time: pick(&keys.keep_time, &defaults.keep_time)
            .map(|t| crate::units::parse_duration(&t))
            .transpose()
            .map_err(|e| format!("{}: {e}", within("keep_time")))?,
        size: pick(&keys.keep_size, &defaults.keep_size)
            .map(|t| crate::units::parse_size(&t))
            .transpose()
            .map_err(|e| format!("{}: {e}", within("keep_size")))?,
    };
    Ok(ServerConfig {
        name,
        settings,
        conn,
        keep,
        ship,
    })
}

/// A size: a number of bytes, or a string with PostgreSQL's units (`"512MB"`).
fn bytes(value: &toml::Value) -> Result<u64, String> {
    match value {
        toml::Value::Integer(n) => u64::try_from(*n).map_err(|_| format!("{n} is negative")),
        toml::Value::String(text) => crate::units::parse_size(text),
        other => Err(format!("{other} is not a size like \"512MB\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen = "127.0.0.1:9999"

[defaults]
archive = "/var/lib/pgwalrus"
slot = "pgwalrus"
create_slot = true
compression = "zstd"

[[server]]
name = "coordinator"
conninfo = "host=db0 user=archiver"

[[server]]
name = "worker-1"
conninfo = "host=db1 port=5433 user=archiver"
archive = "/srv/w1"
compression = "none"
synchronous = true
status_interval = 0
"#;

    #[test]
    fn servers_take_the_defaults_and_override_them() {
        let c = parse("pgwalrus.toml", GOOD).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999".parse().unwrap());
        assert_eq!(c.servers.len(), 2);
        let (a, b) = (&c.servers[0], &c.servers[1]);
        assert_eq!(a.name, "coordinator");
        assert_eq!(a.settings.dir, Path::new("/var/lib/pgwalrus/coordinator"));
        assert_eq!(a.settings.slot.as_deref(), Some("pgwalrus"));
        assert!(a.settings.create_slot && a.settings.if_not_exists);
        assert_ne!(a.settings.compression, CompressionSpec::NONE);
        assert_eq!(a.conn.dbname.as_deref(), Some("replication"));
        assert_eq!(b.settings.dir, Path::new("/srv/w1"));
        assert_eq!(b.settings.compression, CompressionSpec::NONE);
        assert!(b.settings.synchronous);
        assert_eq!(b.settings.status_interval, None);
        assert_eq!(b.conn.hosts[0].port, 5433);
        // Equal files give equal servers: a reload sees nothing changed.
        assert_eq!(parse("x", GOOD).unwrap(), c);
    }

    #[test]
    fn an_s3_archive_takes_a_spool_and_the_s3_keys() {
        let text = r#"
[defaults]
archive = "s3://wal-archive/fleet"
spool = "/var/spool/pgwalrus"
s3_endpoint = "http://127.0.0.1:9000"

[[server]]
name = "db1"
conninfo = "host=db1"
ship_partial_interval = 0
s3_addressing_style = "path"

[[server]]
name = "db2"
conninfo = "host=db2"
archive = "/srv/db2"
"#;
        let c = parse("f.toml", text).unwrap();
        let (a, b) = (&c.servers[0], &c.servers[1]);
        assert_eq!(a.settings.dir, Path::new("/var/spool/pgwalrus/db1"));
        let ship = a.ship.as_ref().unwrap();
        assert_eq!(ship.bucket.url.to_string(), "s3://wal-archive/fleet/db1");
        assert_eq!(
            ship.bucket.endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(ship.partial_interval, None);
        assert!(b.ship.is_none());
        assert_eq!(b.settings.dir, Path::new("/srv/db2"));

        let no_spool =
            "[[server]]\nname = \"a\"\nconninfo = \"host=h\"\narchive = \"s3://bkt/a\"\n";
        let e = parse("f.toml", no_spool).unwrap_err();
        assert!(e.to_string().contains("key \"spool\": missing"), "{e}");
        let stray = "[[server]]\nname = \"a\"\nconninfo = \"host=h\"\narchive = \"/a\"\ns3_region = \"x\"\n";
        let e = parse("f.toml", stray).unwrap_err();
        assert!(e.to_string().contains("only with an s3:// archive"), "{e}");
        let bad_url = "[[server]]\nname = \"a\"\nconninfo = \"host=h\"\narchive = \"s3://B/a\"\nspool = \"/s\"\n";
        assert!(parse("f.toml", bad_url).is_err());
    }

    #[test]
    fn sizes_are_numbers_or_strings_with_units() {
        assert_eq!(
            bytes(&toml::Value::String("512MB".to_owned())),
            Ok(512 << 20)
        );
        assert_eq!(bytes(&toml::Value::Integer(4096)), Ok(4096));
        assert!(bytes(&toml::Value::Integer(-1)).is_err());
        assert!(bytes(&toml::Value::Boolean(true)).is_err());
    }

    #[test]
    fn the_sample_file_in_the_repository_is_valid() {
        let c = parse(
            "pgwalrus.sample.toml",
            include_str!("../../../../pgwalrus.sample.toml"),
        )
        .unwrap();
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(c.servers[1].settings.synchronous);
    }

    #[test]
    fn mistakes_are_refused_with_file_line_and_key() {
        let unknown =
            "[[server]]\nname = \"a\"\nconninfo = \"host=h\"\narchive = \"/a\"\nslots = \"x\"\n";
        let e = parse("f.toml", unknown).unwrap_err();
        assert_eq!(e.file, "f.toml");
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("slots"), "{e}");

        let twice = "[[server]]\nname = \"a\"\nconninfo = \"host=h\"\narchive = \"/a\"\n\n[[server]]\nname = \"a\"\nconninfo = \"host=h\"\narchive = \"/b\"\n";
        let e = parse("f.toml", twice).unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.to_string().contains("defined twice"), "{e}");

        let bad = "[[server]]\nname = \"a\"\nconninfo = \"host=h\"\narchive = \"/a\"\ncompression = \"brotli\"\n";
        let e = parse("f.toml", bad).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("f.toml:1: server \"a\", key \"compression\""),
            "{e}"
        );

        let no_archive = "[[server]]\nname = \"a\"\nconninfo = \"host=h\"\n";
        let e = parse("f.toml", no_archive).unwrap_err();
        assert!(e.to_string().contains("key \"archive\": missing"), "{e}");

        let typo = "listen = 7433\n";
        let e = parse("f.toml", typo).unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
    }
}
