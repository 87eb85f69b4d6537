//! Command-line syntax (clap) and its resolution into validated settings. Flags mirror
//! pg_receivewal and libpq where they overlap: `-d` takes a full connection string, `-h -p -U`
//! override it, `-w`/`-W` control password prompting, `-?` is help (since `-h` is the host).

use clap::{ArgAction, Args, Parser, Subcommand};

use pgwalrus_archive::compress::{CompressionSpec, SpecError};
use pgwalrus_client::config::{Config, ConfigError, ConnParams, ProcessEnv};

use crate::exit::HELP_TABLE;

/// Continuous WAL archiving for PostgreSQL over the physical replication protocol.
#[derive(Debug, Parser)]
#[command(name = "pgwalrus", version, disable_help_flag = true, after_help = HELP_TABLE)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Show help.
    #[arg(short = '?', long = "help", action = ArgAction::Help, global = true)]
    pub help: Option<bool>,
    /// More output (repeat for debug detail).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short = 'q', long = "quiet", global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that streaming from a server would work: connection, authentication, TLS,
    /// replication privilege, server identity and position, and the slot's state.
    #[command(disable_help_flag = true, after_help = HELP_TABLE)]
    Check(CheckArgs),
    /// Stream WAL from a server into an archive directory, crash-safely, resuming where the
    /// directory ends (pg_receivewal-compatible files).
    #[command(disable_help_flag = true, after_help = HELP_TABLE)]
    Receive(ReceiveArgs),
    /// Check an archive: no missing segment, valid page headers, every record's CRC, the
    /// xl_prev chain, timelines agreeing with the history files. Exit 0 clean, 1 problems
    /// found, 2 could not run.
    #[command(disable_help_flag = true)]
    Verify(VerifyArgs),
    /// Print the WAL records of an archive directory or one segment file, in pg_waldump's
    /// layout, or its --stats tables.
    #[command(disable_help_flag = true)]
    Dump(DumpArgs),
    /// PostgreSQL's restore_command: copy one file (%f) from the archive to %p, whatever
    /// its compression, checked and written atomically.
    #[command(disable_help_flag = true, after_help = crate::exit::RESTORE_HELP)]
    Restore(RestoreArgs),
    /// Remove the complete segments an archive no longer needs, by age and/or size (never a
    /// .partial or .history file, no holes in what is kept).
    #[command(disable_help_flag = true)]
    Prune(PruneArgs),
    /// Archive every server of a configuration file from one process, with a status view,
    /// Prometheus metrics and live reload (SIGHUP).
    #[command(disable_help_flag = true)]
    Daemon(DaemonArgs),
    /// Show what a running daemon's servers are doing, one block per server with the
    /// columns of pg_stat_wal_receiver and the archive's; or ask it to reload or retry.
    #[command(disable_help_flag = true)]
    Status(StatusArgs),
}

/// `pgwalrus prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Archive directory.
    #[arg(
        short = 'D',
        long = "directory",
        value_name = "DIR",
        required_unless_present = "archive",
        conflicts_with = "archive"
    )]
    pub directory: Option<std::path::PathBuf>,
    /// Keep every segment written within this long (7d, 36h, 90min, 30s).
    #[arg(long = "keep-time", value_name = "DURATION")]
    pub keep_time: Option<String>,
    /// Keep the newest segments up to this size (10GB, 512MB).
    #[arg(long = "keep-size", value_name = "SIZE")]
    pub keep_size: Option<String>,
    /// Only say what would be removed.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// With --archive: the cluster whose archive to prune, when the prefix holds several.
    #[arg(long = "system-identifier", value_name = "ID", requires = "archive")]
    pub system_identifier: Option<u64>,
    /// Prune an object-storage archive instead of a directory.
    #[command(flatten)]
    pub bucket: BucketArgs,
}

/// `pgwalrus daemon`.
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// The configuration file (TOML; see docs/daemon.md and pgwalrus.sample.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: std::path::PathBuf,
    /// Only validate the file, then exit (0 valid, 2 not).
    #[arg(long = "check")]
    pub check: bool,
}

/// `pgwalrus status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The daemon's configuration file, for its listen address.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        conflicts_with = "address"
    )]
    pub config: Option<std::path::PathBuf>,
    /// The daemon's HTTP address (default 127.0.0.1:7433).
    #[arg(long = "address", value_name = "HOST:PORT")]
    pub address: Option<String>,
    /// The rows as JSON (what /status serves).
    #[arg(long = "json")]
    pub json: bool,
    /// A file holding the daemon's bearer token (default: the configuration's
    /// http_token_file, with -c).
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Ask the daemon to reload its configuration file.
    #[arg(long = "reload", conflicts_with = "retry")]
    pub reload: bool,
    /// Ask the daemon to start a parked server again.
    #[arg(long = "retry", value_name = "SERVER")]
    pub retry: Option<String>,
}

/// `pgwalrus restore`, for `restore_command = 'pgwalrus restore %f %p -D /archive'`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The file PostgreSQL asks for (%f): a segment or timeline history file name.
    #[arg(value_name = "FILE", required_unless_present = "prefetch_worker")]
    pub file: Option<String>,
    /// Where to write it (%p), relative to the data directory PostgreSQL runs the command
    /// in. Written beside it under a temporary name, fsynced, then renamed.
    #[arg(value_name = "PATH", required_unless_present = "prefetch_worker")]
    pub path: Option<std::path::PathBuf>,
    /// Archive directory.
    #[arg(
        short = 'D',
        long = "directory",
        value_name = "DIR",
        env = "PGWALRUS_ARCHIVE"
    )]
    pub directory: std::path::PathBuf,
    /// Serve NAME.partial (padded with zeros to a full segment) when the archive has only
    /// that for the segment asked for and it is the newest segment of its timeline: recovery
    /// then reaches the last byte received.
    #[arg(long = "partial")]
    pub partial: bool,
    /// Decompress and check the next N segments in the background, in DIR/.pgwalrus-spool/
    /// (DIR must be writable by the server's OS user), so recovery does not wait for one
    /// file at a time (0 = off; at most 1024).
    #[arg(long = "prefetch", value_name = "N", default_value_t = 0)]
    pub prefetch: u32,
    /// Internal: run as the prefetch worker of this spool directory.
    #[arg(long = "prefetch-worker", value_name = "SPOOL", hide = true)]
    pub prefetch_worker: Option<std::path::PathBuf>,
    /// With --archive: the cluster whose archive to read (default: the system identifier
    /// in global/pg_control of the data directory restore_command runs in).
    #[arg(long = "system-identifier", value_name = "ID", requires = "archive")]
    pub system_identifier: Option<u64>,
    /// Object storage (DIR is then a local cache of downloaded files).
    #[command(flatten)]
    pub bucket: BucketArgs,
}

/// `pgwalrus verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Archive directory, or an object-storage archive `s3://BUCKET/PREFIX`.
    #[arg(value_name = "DIR", default_value = ".")]
    pub directory: std::path::PathBuf,
    /// Follow this timeline's history (default: the newest timeline in the archive).
    #[arg(long = "timeline", value_name = "TLI")]
    pub timeline: Option<pgwalrus_wal::TimeLineId>,
    /// Only records from this position on.
    #[arg(long = "start", value_name = "LSN")]
    pub start: Option<pgwalrus_wal::Lsn>,
    /// Only records before this position.
    #[arg(long = "end", value_name = "LSN")]
    pub end: Option<pgwalrus_wal::Lsn>,
    /// Machine-readable report on stdout.
    #[arg(long = "json")]
    pub json: bool,
    /// Object storage: `--archive s3://…` (or the URL as DIR) and its settings.
    #[command(flatten)]
    pub bucket: BucketArgs,
}

/// `--stats[=record]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsKind {
    /// Per resource manager.
    Rmgr,
    /// Per record type.
    Record,
}

/// `pgwalrus dump`.
#[derive(Debug, Clone, Args)]
pub struct DumpArgs {
    /// Archive directory, one segment file, or an object-storage archive `s3://BUCKET/PREFIX`.
    #[arg(value_name = "DIR|FILE|URL", default_value = ".")]
    pub path: std::path::PathBuf,
    /// Follow this timeline's history (default: the newest timeline in the archive).
    #[arg(long = "timeline", value_name = "TLI")]
    pub timeline: Option<pgwalrus_wal::TimeLineId>,
    /// Only records from this position on.
    #[arg(short = 's', long = "start", value_name = "LSN")]
    pub start: Option<pgwalrus_wal::Lsn>,
    /// Only records before this position.
    #[arg(short = 'e', long = "end", value_name = "LSN")]
    pub end: Option<pgwalrus_wal::Lsn>,
    /// Only records of these resource managers (comma-separated names, e.g. Heap,Btree).
    #[arg(short = 'r', long = "rmgr", value_name = "RMGR")]
    pub rmgr: Option<String>,
    /// Statistics instead of records: per resource manager, or per record type with =record.
    #[arg(short = 'z', long = "stats", value_name = "KIND", num_args = 0..=1, default_missing_value = "rmgr")]
    pub stats: Option<StatsKind>,
    /// One JSON object per record.
    #[arg(long = "json", conflicts_with = "stats")]
    pub json: bool,
    /// Object storage: `--archive s3://…` (or the URL as DIR) and its settings.
    #[command(flatten)]
    pub bucket: BucketArgs,
}

/// Connection flags shared by every command that talks to a server.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Connection string: libpq `key=value` pairs or a `postgresql://` URI. Any dbname in it
    /// is replaced by `replication`, as pg_receivewal does.
    #[arg(short = 'd', long = "dbname", value_name = "CONNSTR")]
    pub dbname: Option<String>,
    /// Server host name or socket directory (overrides the connection string and PGHOST).
    #[arg(short = 'h', long = "host", value_name = "HOSTNAME")]
    pub host: Option<String>,
    /// Server port (overrides the connection string and PGPORT).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<String>,
    /// Role to connect as (overrides the connection string and PGUSER).
    #[arg(short = 'U', long = "username", value_name = "NAME")]
    pub username: Option<String>,
    /// Never prompt for a password (the default unless -W is given).
    #[arg(short = 'w', long = "no-password", conflicts_with = "password")]
    pub no_password: bool,
    /// Prompt for a password before connecting.
    #[arg(short = 'W', long = "password")]
    pub password: bool,
}

/// `pgwalrus check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Connection.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Replication slot to check (exists, active, restart LSN, WAL status).
    #[arg(short = 'S', long = "slot", value_name = "SLOTNAME")]
    pub slot: Option<String>,
}

/// `pgwalrus receive`.
#[derive(Debug, Clone, Args)]
pub struct ReceiveArgs {
    /// Connection.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Archive directory (must exist).
    #[arg(
        short = 'D',
        long = "directory",
        value_name = "DIR",
        required_unless_present = "drop_slot"
    )]
    pub directory: Option<std::path::PathBuf>,
    /// Replication slot to stream through (strongly recommended).
    #[arg(short = 'S', long = "slot", value_name = "SLOTNAME")]
    pub slot: Option<String>,
    /// Create the slot, with WAL reserved at once, then stream.
    #[arg(long = "create-slot", requires = "slot", conflicts_with = "drop_slot")]
    pub create_slot: bool,
    /// With --create-slot: an existing slot is fine.
    #[arg(long = "if-not-exists", requires = "create_slot")]
    pub if_not_exists: bool,
    /// Drop the slot and exit.
    #[arg(long = "drop-slot", requires = "slot")]
    pub drop_slot: bool,
    /// Stop once everything up to this LSN is durable (exit 0).
    #[arg(short = 'E', long = "endpos", value_name = "LSN")]
    pub endpos: Option<pgwalrus_wal::Lsn>,
    /// Exit (status 1) instead of reconnecting when the connection is lost.
    #[arg(short = 'n', long = "no-loop")]
    pub no_loop: bool,
    /// Do not fsync (faster, unsafe: an OS crash can lose or corrupt WAL).
    #[arg(long = "no-sync", conflicts_with = "synchronous")]
    pub no_sync: bool,
    /// Seconds between status updates to the server (0 disables them).
    #[arg(
        short = 's',
        long = "status-interval",
        value_name = "SECS",
        default_value_t = 10
    )]
    pub status_interval: u64,
    /// While WAL flows, fsync what was received at least every SECS seconds and report it as
    /// flushed (with a slot or --synchronous), so an OS crash loses at most that much; 0
    /// fsyncs only when a segment completes, as pg_receivewal does.
    #[arg(long = "flush-interval", value_name = "SECS", default_value_t = 1)]
    pub flush_interval: u64,
    /// Give the connection up when the server sends nothing for SECS seconds (a reply is
    /// requested at half of it), as PostgreSQL's wal_receiver_timeout; 0 waits forever.
    #[arg(long = "receive-timeout", value_name = "SECS", default_value_t = 60)]
    pub receive_timeout: u64,
    /// Fsync as WAL arrives and report the flush position at once (for synchronous
    /// replication; commits wait on it).
    #[arg(long = "synchronous")]
    pub synchronous: bool,
    /// Do not decode and CRC-check records as they arrive (verification is on by default:
    /// WAL that fails it stops the receiver, exit 6).
    #[arg(long = "no-verify")]
    pub no_verify: bool,
    /// Compress segments as they arrive, as pg_receivewal does: METHOD is none, gzip, lz4
    /// or zstd, DETAIL a level (gzip:9, zstd:level=19, lz4:1); a bare number is a gzip
    /// level (0 = none). Files are NAME.gz, NAME.lz4 or NAME.zst (NAME.c.partial while
    /// receiving), readable by gzip, lz4 and zstd. Default levels: gzip 6, zstd 1 (not
    /// zstd's usual 3: as small as gzip's output on WAL, at several times the speed); lz4
    /// has one speed at every level.
    #[arg(
        short = 'Z',
        long = "compress",
        value_name = "METHOD[:DETAIL]",
        value_parser = parse_compression
    )]
    pub compress: Option<CompressionSpec>,
    /// With --archive: while a segment fills, upload the bytes added to it as a chunk every
    /// SECS seconds in which WAL arrived, which bounds what losing this host can lose (0 =
    /// complete segments only).
    #[arg(
        long = "ship-partial-interval",
        value_name = "SECS",
        default_value_t = 10,
        requires = "archive"
    )]
    pub ship_partial_interval: u64,
    /// With --archive and a slot: report WAL as flushed to the server only once it is in
    /// the bucket (complete segments and chunks), so the slot keeps it on the server until
    /// then — the local directory is then only a spool.
    #[arg(long = "flush-after-shipped", requires = "archive")]
    pub flush_after_shipped: bool,
    /// Object storage.
    #[command(flatten)]
    pub bucket: BucketArgs,
}

/// Where an object-storage archive is and how to reach it. Credentials, region and endpoint
/// otherwise come the AWS way: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`,
/// `AWS_REGION`, `AWS_ENDPOINT_URL(_S3)`, `AWS_PROFILE` with `~/.aws/config` and
/// `~/.aws/credentials`, then web identity, container and instance-metadata credentials.
#[derive(Debug, Clone, Default, Args)]
pub struct BucketArgs {
    /// Ship every completed segment and history file to S3-compatible object storage,
    /// create-only, after it is durable locally (DIR is then the local spool).
    #[arg(long = "archive", value_name = "s3://BUCKET/PREFIX")]
    pub archive: Option<String>,
    /// The S3 endpoint of an S3-compatible server (http:// is allowed when given here).
    #[arg(long = "s3-endpoint", value_name = "URL", requires = "archive")]
    pub endpoint: Option<String>,
    /// The bucket's region.
    #[arg(long = "s3-region", value_name = "REGION", requires = "archive")]
    pub region: Option<String>,
    /// The profile of ~/.aws/config and ~/.aws/credentials.
    #[arg(long = "s3-profile", value_name = "NAME", requires = "archive")]
    pub profile: Option<String>,
    /// path, virtual or auto (virtual-hosted on AWS, path-style on a custom endpoint).
    #[arg(
        long = "s3-addressing-style",
        value_name = "STYLE",
        default_value = "auto",
        requires = "archive"
    )]
    pub addressing_style: pgwalrus_bucket::AddressingStyle,
    /// Accept a store that does not enforce create-only writes. Only one archiver may then
    /// ever write under the prefix: a second one could overwrite WAL.
    #[arg(long = "s3-single-writer", requires = "archive")]
    pub single_writer: bool,
}

/// `-Z` / `--compress`: pg_receivewal's `METHOD[:DETAIL]` syntax, parsed by
/// [`CompressionSpec`]'s grammar (the one place that knows it). A refusal is a usage error
/// (exit 2) whose message names what is wrong.
///
/// # Errors
/// The grammar's message, e.g. `unrecognized compression algorithm: "brotli"` or
/// `compression algorithm "gzip" expects a compression level between 1 and 9`.
pub fn parse_compression(text: &str) -> Result<CompressionSpec, SpecError> {
    text.parse()
}

/// The application name pgwalrus sends unless the connection string sets one.
pub const FALLBACK_APPLICATION_NAME: &str = "pgwalrus";

impl ConnArgs {
    /// Builds the connection settings the way pg_receivewal does: the connection string,
    /// then `-h -p -U`, then `replication=true dbname=replication`, then the `PG*`
    /// environment and libpq's defaults.
    ///
    /// # Errors
    /// A malformed connection string (naming keyword and position) or an invalid value.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut params = match &self.dbname {
            Some(conninfo) => ConnParams::parse(conninfo)?,
            None => ConnParams::new(),
        };
        if let Some(host) = &self.host {
            params.set("host", host.as_str())?;
        }
        if let Some(port) = &self.port {
            params.set("port", port.as_str())?;
        }
        if let Some(user) = &self.username {
            params.set("user", user.as_str())?;
        }
        if params.get("fallback_application_name").is_none() {
            params.set("fallback_application_name", FALLBACK_APPLICATION_NAME)?;
        }
        let params = params.for_physical_replication();
        Config::resolve(&params, &ProcessEnv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dash_h_is_the_host_and_question_mark_is_help() {
        let cli = Cli::try_parse_from(["pgwalrus", "check", "-h", "db1", "-p", "5433", "-U", "u"])
            .unwrap();
        let Command::Check(args) = cli.command else {
            panic!("not check")
        };
        assert_eq!(args.conn.host.as_deref(), Some("db1"));
        let err = Cli::try_parse_from(["pgwalrus", "check", "-?"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn receive_refuses_no_sync_with_synchronous() {
        let err = Cli::try_parse_from([
            "pgwalrus",
            "receive",
            "-D",
            "x",
            "--no-sync",
            "--synchronous",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert!(
            Cli::try_parse_from(["pgwalrus", "receive", "-D", "x", "--create-slot"]).is_err(),
            "needs --slot"
        );
        let cli = Cli::try_parse_from([
            "pgwalrus",
            "receive",
            "-D",
            "x",
            "-E",
            "0/3000000",
            "-s",
            "0",
        ])
        .unwrap();
        let Command::Receive(args) = cli.command else {
            panic!("not receive")
        };
        assert_eq!(args.endpos, Some(pgwalrus_wal::Lsn(0x300_0000)));
        assert_eq!(args.status_interval, 0);
        assert!(Cli::try_parse_from(["pgwalrus", "receive", "-D", "x", "-E", "nonsense"]).is_err());
    }

    #[test]
    fn compress_takes_pg_receivewal_syntax_and_refuses_bad_input_naming_it() {
        use pgwalrus_archive::compress::Compression;
        let parse = |z: &str| {
            Cli::try_parse_from(["pgwalrus", "receive", "-D", "x", "-Z", z]).map(|cli| {
                let Command::Receive(args) = cli.command else {
                    panic!("not receive")
                };
                args.compress.expect("-Z given")
            })
        };
        let ok = [
            ("gzip:9", Some(Compression::Gzip), 9),
            ("zstd:level=3", Some(Compression::Zstd), 3),
            ("zstd", Some(Compression::Zstd), 1),
            ("lz4", Some(Compression::Lz4), 0),
            ("lz4:1", Some(Compression::Lz4), 1),
            ("5", Some(Compression::Gzip), 5),
            ("0", None, 0),
            ("none", None, 0),
        ];
        for (z, method, level) in ok {
            let spec = parse(z).unwrap_or_else(|e| panic!("{z}: {e}"));
            assert_eq!(
                (spec.method(), spec.effective_level()),
                (method, level),
                "{z}"
            );
        }
        let long =
            Cli::try_parse_from(["pgwalrus", "receive", "-D", "x", "--compress=gzip"]).unwrap();
        let Command::Receive(args) = long.command else {
            panic!("not receive")
        };
        assert_eq!(
            args.compress.and_then(|c| c.method()),
            Some(Compression::Gzip)
        );
        for (z, says) in [
            ("brotli", "unrecognized compression algorithm: \"brotli\""),
            ("gzip:10", "between 1 and 9"),
            ("none:3", "does not accept a compression level"),
            ("zstd:level=fast", "must be an integer"),
            ("gzip:speed=1", "unrecognized compression option: \"speed\""),
        ] {
            let err = parse(z).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{z}");
            let text = err.to_string();
            assert!(text.contains(says), "{z}: {text}");
            assert!(text.contains("--compress"), "{z}: {text}");
        }
    }

    #[test]
    fn explicit_flags_override_the_connection_string() {
        let args = ConnArgs {
            dbname: Some("host=a port=1 user=x dbname=mydb application_name=app".into()),
            host: Some("b".into()),
            port: Some("2".into()),
            username: None,
            no_password: false,
            password: false,
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.hosts.len(), 1);
        assert_eq!(config.hosts[0].port, 2);
        assert_eq!(config.user, "x");
        assert_eq!(config.dbname.as_deref(), Some("replication"));
        assert_eq!(config.application_name.as_deref(), Some("app"));
        assert_eq!(
            config.replication,
            pgwalrus_client::config::ReplicationMode::Physical
        );
    }

    #[test]
    fn malformed_conninfo_names_keyword_and_position() {
        let args = ConnArgs {
            dbname: Some("host=a bogus=1".into()),
            host: None,
            port: None,
            username: None,
            no_password: false,
            password: false,
        };
        let err = args.resolve().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bogus"), "{text}");
        assert!(err.position().is_some());
    }
}
