//! Command-line syntax (clap) and its resolution into validated settings. Flags mirror
//! pg_receivewal and libpq where they overlap: `-d` takes a full connection string, `-h -p -U`
//! override it, `-w`/`-W` control password prompting, `-?` is help (since `-h` is the host).

use clap::{ArgAction, Args, Parser, Subcommand};

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
        let Command::Check(args) = cli.command;
        assert_eq!(args.conn.host.as_deref(), Some("db1"));
        let err = Cli::try_parse_from(["pgwalrus", "check", "-?"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
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
