//! [`ConnParams`], the unresolved keyword/value list, and libpq's `key=value` connection
//! string syntax (the URI syntax lives in the `uri` module).
//!
//! This mirrors libpq's `conninfo_parse`: keywords and values are separated by `=` with
//! optional whitespace around it; a value is either single-quoted (`\'` and `\\` escape, in
//! fact a backslash escapes any character) or runs to the next whitespace (a backslash
//! escapes there too). Every keyword must be one libpq knows. The keyword table, with each
//! keyword's fallback environment variable, lives here too.

use std::fmt;
use std::str::FromStr;

use super::ConfigError;
use super::uri;

/// One libpq keyword: its name and the environment variable libpq falls back to.
pub(super) struct KeywordSpec {
    pub(super) name: &'static str,
    pub(super) env: Option<&'static str>,
    /// Hidden in `Debug` output.
    secret: bool,
}

const fn kw(name: &'static str, env: Option<&'static str>) -> KeywordSpec {
    KeywordSpec {
        name,
        env,
        secret: false,
    }
}

const fn secret(name: &'static str, env: Option<&'static str>) -> KeywordSpec {
    KeywordSpec {
        name,
        env,
        secret: true,
    }
}

/// Every keyword libpq 18 accepts (fe-connect.c's `PQconninfoOptions`), in libpq's order.
/// Which ones pgwalrus honours, ignores or refuses is decided in `resolve`.
pub(super) const KEYWORDS: &[KeywordSpec] = &[
    kw("service", Some("PGSERVICE")),
    kw("servicefile", None),
    kw("user", Some("PGUSER")),
    secret("password", Some("PGPASSWORD")),
    kw("passfile", Some("PGPASSFILE")),
    kw("channel_binding", Some("PGCHANNELBINDING")),
    kw("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    kw("dbname", Some("PGDATABASE")),
    kw("host", Some("PGHOST")),
    kw("hostaddr", Some("PGHOSTADDR")),
    kw("port", Some("PGPORT")),
    kw("client_encoding", Some("PGCLIENTENCODING")),
    kw("options", Some("PGOPTIONS")),
    kw("application_name", Some("PGAPPNAME")),
    kw("fallback_application_name", None),
    kw("keepalives", None),
    kw("keepalives_idle", None),
    kw("keepalives_interval", None),
    kw("keepalives_count", None),
    kw("tcp_user_timeout", None),
    kw("sslmode", Some("PGSSLMODE")),
    kw("sslnegotiation", Some("PGSSLNEGOTIATION")),
    kw("sslcompression", Some("PGSSLCOMPRESSION")),
    kw("sslcert", Some("PGSSLCERT")),
    kw("sslkey", Some("PGSSLKEY")),
    kw("sslcertmode", Some("PGSSLCERTMODE")),
    secret("sslpassword", None),
    kw("sslrootcert", Some("PGSSLROOTCERT")),
    kw("sslcrl", Some("PGSSLCRL")),
    kw("sslcrldir", Some("PGSSLCRLDIR")),
    kw("sslsni", Some("PGSSLSNI")),
    kw("sslkeylogfile", None),
    kw("requirepeer", Some("PGREQUIREPEER")),
    kw("require_auth", Some("PGREQUIREAUTH")),
    kw("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION")),
    kw("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION")),
    kw("min_protocol_version", Some("PGMINPROTOCOLVERSION")),
    kw("max_protocol_version", Some("PGMAXPROTOCOLVERSION")),
    kw("gssencmode", Some("PGGSSENCMODE")),
    kw("krbsrvname", Some("PGKRBSRVNAME")),
    kw("gsslib", Some("PGGSSLIB")),
    kw("gssdelegation", Some("PGGSSDELEGATION")),
    kw("replication", None),
    kw("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    kw("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
    secret("scram_client_key", None),
    secret("scram_server_key", None),
    kw("oauth_issuer", None),
    kw("oauth_client_id", None),
    secret("oauth_client_secret", None),
    kw("oauth_scope", None),
];

/// The table entry for `keyword`, if libpq knows it.
pub(super) fn keyword_spec(keyword: &str) -> Option<&'static KeywordSpec> {
    KEYWORDS.iter().find(|k| k.name == keyword)
}

/// Where a parameter value came from; carried into errors so they can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParamSource {
    /// Parsed from a connection string (either syntax); `position` is the byte offset of
    /// the value in that string (for a URI, of the part or query value it came from).
    ConnString {
        /// Byte offset of the value.
        position: usize,
    },
    /// Set through [`ConnParams::set`] (for example from a command-line flag).
    Explicit,
    /// Taken from an environment variable while resolving.
    Environment {
        /// The variable's name.
        var: &'static str,
    },
}

impl ParamSource {
    /// The byte offset, for a value parsed from a string.
    pub fn position(self) -> Option<usize> {
        match self {
            Self::ConnString { position } => Some(position),
            Self::Explicit | Self::Environment { .. } => None,
        }
    }
}

impl fmt::Display for ParamSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnString { position } => {
                write!(f, "at byte {position} of the connection string")
            }
            Self::Explicit => f.write_str("set explicitly"),
            Self::Environment { var } => write!(f, "from environment variable {var}"),
        }
    }
}

#[derive(Clone)]
struct Entry {
    keyword: &'static str,
    value: String,
    origin: ParamSource,
}

/// An ordered list of libpq connection parameters, before environment variables and defaults
/// are applied (see [`Config::resolve`](super::Config::resolve)).
///
/// Each keyword appears at most once: setting it again replaces the value in place, so
/// "later wins" as in libpq. A present-but-empty value is kept; as in libpq it stops the
/// keyword's environment variable from applying and then means "the default".
///
/// Two lists are equal when they hold the same keywords with the same values, whatever their
/// order or origin. `Debug` hides passwords and other secrets.
#[derive(Clone, Default)]
pub struct ConnParams {
    entries: Vec<Entry>,
}

impl ConnParams {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a connection string in either libpq syntax: a URI when it starts with
    /// `postgresql://` or `postgres://`, `key=value` pairs otherwise. Like `pg_receivewal -d`
    /// (and unlike `psql`'s positional argument), a bare word is not taken as a database
    /// name: `"mydb"` fails with [`ConfigError::MissingEquals`].
    ///
    /// # Errors
    /// A syntax error naming the keyword (or URI part) and its byte position, or
    /// [`ConfigError::InvalidKeyword`] for a keyword libpq does not know.
    #[doc(alias = "PQconninfoParse")]
    pub fn parse(conninfo: &str) -> Result<Self, ConfigError> {
        match uri::prefix_len(conninfo) {
            Some(prefix) => uri::parse(conninfo, prefix),
            None => Self::parse_key_value(conninfo),
        }
    }

    /// Parses the `key=value` syntax only (libpq's `conninfo_parse`).
    ///
    /// # Errors
    /// As [`ConnParams::parse`].
    pub fn parse_key_value(conninfo: &str) -> Result<Self, ConfigError> {
        let bytes = conninfo.as_bytes();
        let mut params = Self::new();
        let mut i = 0;
        while i < bytes.len() {
            if is_space(bytes[i]) {
                i += 1;
                continue;
            }
            let keyword_start = i;
            while i < bytes.len() && bytes[i] != b'=' && !is_space(bytes[i]) {
                i += 1;
            }
            let keyword = conninfo.get(keyword_start..i).unwrap_or_default();
            while i < bytes.len() && is_space(bytes[i]) {
                i += 1;
            }
            if bytes.get(i) != Some(&b'=') {
                return Err(ConfigError::MissingEquals {
                    keyword: keyword.to_owned(),
                    position: keyword_start,
                });
            }
            i += 1;
            while i < bytes.len() && is_space(bytes[i]) {
                i += 1;
            }
            let value_start = i;
            let mut value = Vec::new();
            if bytes.get(i) == Some(&b'\'') {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(ConfigError::UnterminatedQuote {
                                keyword: keyword.to_owned(),
                                position: value_start,
                            });
                        }
                        Some(b'\\') => {
                            i += 1;
                            if let Some(&escaped) = bytes.get(i) {
                                value.push(escaped);
                                i += 1;
                            }
                        }
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            value.push(other);
                            i += 1;
                        }
                    }
                }
            } else {
                while let Some(&byte) = bytes.get(i) {
                    i += 1;
                    if is_space(byte) {
                        break;
                    }
                    if byte == b'\\' {
                        if let Some(&escaped) = bytes.get(i) {
                            value.push(escaped);
                            i += 1;
                        }
                    } else {
                        value.push(byte);
                    }
                }
            }
            params.store(
                keyword,
                bytes_to_string(value),
                ParamSource::ConnString {
                    position: value_start,
                },
                Some(keyword_start),
            )?;
        }
        Ok(params)
    }

    /// Sets `keyword` to `value`, replacing any earlier value (libpq's "later wins"; this is
    /// how `pg_receivewal`'s `-h`, `-p` and `-U` override what `-d` said). As in libpq,
    /// `requiressl` is stored as `sslmode` (`require` if the value starts with `1`, else
    /// `prefer`).
    ///
    /// # Errors
    /// [`ConfigError::InvalidKeyword`] if libpq does not know `keyword`;
    /// [`ConfigError::NulInValue`] if `value` contains a NUL character.
    pub fn set(&mut self, keyword: &str, value: impl Into<String>) -> Result<(), ConfigError> {
        self.store(keyword, value.into(), ParamSource::Explicit, None)
    }

    /// The value of `keyword`, if present (possibly empty).
    pub fn get(&self, keyword: &str) -> Option<&str> {
        self.entry(keyword).map(|e| e.value.as_str())
    }

    /// Where the value of `keyword` came from, if present.
    pub fn origin(&self, keyword: &str) -> Option<ParamSource> {
        self.entry(keyword).map(|e| e.origin)
    }

    /// Removes `keyword`, returning its value.
    pub fn remove(&mut self, keyword: &str) -> Option<String> {
        let index = self.entries.iter().position(|e| e.keyword == keyword)?;
        Some(self.entries.remove(index).value)
    }

    /// The parameters in order, as `(keyword, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.entries.iter().map(|e| (e.keyword, e.value.as_str()))
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Turns the parameters of `pg_receivewal -d` into those it connects with (streamutil.c's
    /// `GetConnection`): empty values are dropped (so the environment applies to them), any
    /// `dbname` is discarded and replaced by `dbname=replication` (which is also the database
    /// name `.pgpass` lines must carry), and `replication=true` is set. Set `-h`/`-p`/`-U`
    /// and `fallback_application_name` afterwards, as `pg_receivewal` does.
    ///
    /// ```
    /// use pgwalrus_client::config::ConnParams;
    /// let mut params = ConnParams::parse("host=db1 dbname=app user=''")?.for_physical_replication();
    /// params.set("port", "5433")?;
    /// assert_eq!(params.get("dbname"), Some("replication"));
    /// assert_eq!(params.get("user"), None);
    /// assert_eq!(params.get("replication"), Some("true"));
    /// # Ok::<(), pgwalrus_client::config::ConfigError>(())
    /// ```
    pub fn for_physical_replication(mut self) -> Self {
        self.entries
            .retain(|e| !e.value.is_empty() && e.keyword != "dbname");
        self.put("dbname", "replication".to_owned(), ParamSource::Explicit);
        self.put("replication", "true".to_owned(), ParamSource::Explicit);
        self
    }

    /// Formats the parameters as a `key=value` connection string that
    /// [`ConnParams::parse`] (and libpq) reads back to the same parameters. Values are
    /// single-quoted when empty or when they hold whitespace, quotes or backslashes.
    ///
    /// The result contains any password verbatim; do not log it.
    pub fn to_conninfo_string(&self) -> String {
        let mut out = String::new();
        for entry in &self.entries {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(entry.keyword);
            out.push('=');
            push_quoted(&mut out, &entry.value);
        }
        out
    }

    /// Formats the parameters as a `postgresql://` URI that [`ConnParams::parse`] (and libpq)
    /// reads back to the same parameters: user and password in the authority, hosts and
    /// ports there when libpq's URI syntax can express them exactly, the database as the
    /// path, everything else as query parameters, all percent-encoded.
    ///
    /// The result contains any password verbatim; do not log it.
    pub fn to_uri_string(&self) -> String {
        uri::format(self)
    }

    /// Stores a parsed or explicit value (libpq's `conninfo_storeval`).
    pub(super) fn store(
        &mut self,
        keyword: &str,
        value: String,
        origin: ParamSource,
        keyword_position: Option<usize>,
    ) -> Result<(), ConfigError> {
        let (keyword, value) = if keyword == "requiressl" {
            let mode = if value.starts_with('1') {
                "require"
            } else {
                "prefer"
            };
            ("sslmode", mode.to_owned())
        } else {
            (keyword, value)
        };
        let Some(spec) = keyword_spec(keyword) else {
            return Err(ConfigError::InvalidKeyword {
                keyword: keyword.to_owned(),
                position: keyword_position,
            });
        };
        if value.contains('\0') {
            return Err(ConfigError::NulInValue {
                keyword: keyword.to_owned(),
                position: origin.position(),
            });
        }
        self.put(spec.name, value, origin);
        Ok(())
    }

    fn put(&mut self, keyword: &'static str, value: String, origin: ParamSource) {
        match self.entries.iter_mut().find(|e| e.keyword == keyword) {
            Some(entry) => {
                entry.value = value;
                entry.origin = origin;
            }
            None => self.entries.push(Entry {
                keyword,
                value,
                origin,
            }),
        }
    }

    fn entry(&self, keyword: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.keyword == keyword)
    }
}

impl FromStr for ConnParams {
    type Err = ConfigError;

    /// As [`ConnParams::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl PartialEq for ConnParams {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for ConnParams {}

impl fmt::Debug for ConnParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for entry in &self.entries {
            let hidden = keyword_spec(entry.keyword).is_some_and(|s| s.secret);
            if hidden {
                map.entry(&entry.keyword, &"<hidden>");
            } else {
                map.entry(&entry.keyword, &entry.value);
            }
        }
        map.finish()
    }
}

/// libpq's `isspace` in the C locale.
pub(super) fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The parser only ever drops ASCII bytes from valid UTF-8, so this never loses anything;
/// the lossy path exists so that no input can panic.
fn bytes_to_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn push_quoted(out: &mut String, value: &str) {
    let needs_quotes = value.is_empty()
        || value
            .bytes()
            .any(|b| is_space(b) || b == b'\'' || b == b'\\');
    if !needs_quotes {
        out.push_str(value);
        return;
    }
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> ConnParams {
        match ConnParams::parse(s) {
            Ok(p) => p,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    fn pairs(p: &ConnParams) -> Vec<(&'static str, String)> {
        p.iter().map(|(k, v)| (k, v.to_owned())).collect()
    }

    fn err(s: &str) -> ConfigError {
        match ConnParams::parse(s) {
            Ok(p) => panic!("{s:?} parsed as {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_pairs_in_order() {
        let p = parse("host=db1 port=5433 user=walrus");
        assert_eq!(
            pairs(&p),
            vec![
                ("host", "db1".into()),
                ("port", "5433".into()),
                ("user", "walrus".into())
            ]
        );
    }

    #[test]
    fn whitespace_around_equals_and_between_pairs() {
        let p = parse("  host = db1\tport=\n5433 \r\n user =walrus  ");
        assert_eq!(p.get("host"), Some("db1"));
        assert_eq!(p.get("port"), Some("5433"));
        assert_eq!(p.get("user"), Some("walrus"));
        // Vertical tab and form feed are whitespace to libpq's isspace.
        let p = parse("host=a\x0bport=1\x0cuser=u");
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn empty_and_blank_strings_give_no_params() {
        assert!(parse("").is_empty());
        assert!(parse(" \t\n").is_empty());
    }

    #[test]
    fn quoted_values_with_escapes() {
        let p = parse(r"password='it\'s a \\secret' application_name='x y'");
        assert_eq!(p.get("password"), Some(r"it's a \secret"));
        assert_eq!(p.get("application_name"), Some("x y"));
        // A backslash escapes any character inside quotes.
        let p = parse(r"options='-c\ search_path=\x'");
        assert_eq!(p.get("options"), Some("-c search_path=x"));
    }

    #[test]
    fn empty_quoted_value_is_kept() {
        let p = parse("host='' port=5432");
        assert_eq!(p.get("host"), Some(""));
        assert_eq!(p.get("port"), Some("5432"));
    }

    #[test]
    fn unquoted_values_support_backslash_escapes() {
        let p = parse(r"password=a\ b\'c\\d user=u");
        assert_eq!(p.get("password"), Some(r"a b'c\d"));
        assert_eq!(p.get("user"), Some("u"));
        // A trailing lone backslash is dropped, as libpq does.
        assert_eq!(parse(r"password=ab\").get("password"), Some("ab"));
    }

    #[test]
    fn quote_in_the_middle_of_an_unquoted_value_is_literal() {
        assert_eq!(parse("password=a'b").get("password"), Some("a'b"));
    }

    #[test]
    fn closing_quote_need_not_be_followed_by_space() {
        let p = parse("host='a'port=5");
        assert_eq!(p.get("host"), Some("a"));
        assert_eq!(p.get("port"), Some("5"));
    }

    #[test]
    fn equals_inside_values_is_literal() {
        let p = parse("options=-csearch_path=public application_name='a=b'");
        assert_eq!(p.get("options"), Some("-csearch_path=public"));
        assert_eq!(p.get("application_name"), Some("a=b"));
    }

    #[test]
    fn empty_unquoted_value_before_next_pair() {
        // "host= port=1": after '=' libpq skips blanks, so the value is "port=1".
        let p = parse("host= port=1");
        assert_eq!(p.get("host"), Some("port=1"));
        assert_eq!(p.get("port"), None);
        assert_eq!(parse("host=").get("host"), Some(""));
    }

    #[test]
    fn later_value_wins_in_place() {
        let p = parse("host=a port=1 host=b");
        assert_eq!(pairs(&p), vec![("host", "b".into()), ("port", "1".into())]);
    }

    #[test]
    fn utf8_values_survive() {
        let p = parse("application_name='wälrus 🦭' password=pässwörd");
        assert_eq!(p.get("application_name"), Some("wälrus 🦭"));
        assert_eq!(p.get("password"), Some("pässwörd"));
        assert_eq!(parse(r"password=\é").get("password"), Some("é"));
    }

    #[test]
    fn requiressl_becomes_sslmode() {
        assert_eq!(parse("requiressl=1").get("sslmode"), Some("require"));
        assert_eq!(parse("requiressl=0").get("sslmode"), Some("prefer"));
        assert_eq!(parse("requiressl=1").get("requiressl"), None);
    }

    #[test]
    fn bare_word_is_missing_equals_at_its_position() {
        let e = err("mydb");
        assert!(
            matches!(&e, ConfigError::MissingEquals { keyword, position: 0 } if keyword == "mydb")
        );
        assert_eq!(
            e.to_string(),
            "missing \"=\" after \"mydb\" in connection info string (at byte 0)"
        );
    }

    #[test]
    fn missing_equals_after_a_good_pair() {
        let e = err("host=a  port 5432");
        assert!(
            matches!(&e, ConfigError::MissingEquals { keyword, position: 8 } if keyword == "port")
        );
        assert_eq!(e.position(), Some(8));
        assert_eq!(e.keyword(), Some("port"));
    }

    #[test]
    fn keyword_at_end_without_equals() {
        let e = err("host=a port");
        assert!(
            matches!(&e, ConfigError::MissingEquals { keyword, position: 7 } if keyword == "port")
        );
    }

    #[test]
    fn unterminated_quote_points_at_the_quote() {
        let e = err("host=a password='abc");
        assert!(
            matches!(&e, ConfigError::UnterminatedQuote { keyword, position: 16 } if keyword == "password")
        );
        // An escaped closing quote does not close.
        let e = err(r"password='abc\'");
        assert!(matches!(
            e,
            ConfigError::UnterminatedQuote { position: 9, .. }
        ));
        // A backslash at the very end inside quotes.
        let e = err(r"password='abc\");
        assert!(matches!(
            e,
            ConfigError::UnterminatedQuote { position: 9, .. }
        ));
    }

    #[test]
    fn unknown_keyword_names_it_and_its_position() {
        let e = err("host=a  bogus=1");
        assert!(
            matches!(&e, ConfigError::InvalidKeyword { keyword, position: Some(8) } if keyword == "bogus")
        );
        assert_eq!(
            e.to_string(),
            "invalid connection option \"bogus\" (at byte 8)"
        );
    }

    #[test]
    fn empty_keyword_is_invalid() {
        let e = err("=x");
        assert!(
            matches!(&e, ConfigError::InvalidKeyword { keyword, position: Some(0) } if keyword.is_empty())
        );
    }

    #[test]
    fn keywords_are_case_sensitive() {
        assert!(matches!(err("Host=a"), ConfigError::InvalidKeyword { .. }));
    }

    #[test]
    fn syntax_errors_win_over_unknown_keywords() {
        // libpq parses the value before looking the keyword up.
        assert!(matches!(
            err("bogus='x"),
            ConfigError::UnterminatedQuote { .. }
        ));
    }

    #[test]
    fn nul_in_value_is_rejected_with_position() {
        let e = err("host=a\0b");
        assert!(
            matches!(&e, ConfigError::NulInValue { keyword, position: Some(5) } if keyword == "host")
        );
        let mut p = ConnParams::new();
        assert!(matches!(
            p.set("host", "a\0"),
            Err(ConfigError::NulInValue { position: None, .. })
        ));
    }

    #[test]
    fn value_origins_point_into_the_string() {
        let p = parse("host=a  port = '5433'");
        assert_eq!(
            p.origin("host"),
            Some(ParamSource::ConnString { position: 5 })
        );
        assert_eq!(
            p.origin("port"),
            Some(ParamSource::ConnString { position: 15 })
        );
    }

    #[test]
    fn set_validates_and_overrides() {
        let mut p = parse("host=a port=1");
        p.set("port", "2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.get("port"), Some("2"));
        assert_eq!(p.origin("port"), Some(ParamSource::Explicit));
        let e = p.set("hots", "x").err();
        assert!(matches!(
            e,
            Some(ConfigError::InvalidKeyword { position: None, .. })
        ));
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("invalid connection option \"hots\"".to_owned())
        );
        assert_eq!(p.remove("host"), Some("a".to_owned()));
        assert_eq!(p.get("host"), None);
        assert_eq!(p.remove("host"), None);
    }

    #[test]
    fn every_table_keyword_parses() {
        for spec in KEYWORDS {
            let p = parse(&format!("{}=x", spec.name));
            assert_eq!(p.get(spec.name), Some("x"));
        }
    }

    #[test]
    fn for_physical_replication_mirrors_pg_receivewal() {
        let p = parse("host=db dbname=app user='' sslmode=require").for_physical_replication();
        assert_eq!(p.get("dbname"), Some("replication"));
        assert_eq!(p.get("replication"), Some("true"));
        assert_eq!(p.get("user"), None);
        assert_eq!(p.get("host"), Some("db"));
        assert_eq!(p.get("sslmode"), Some("require"));
    }

    #[test]
    fn debug_hides_secrets() {
        let p = parse("password=hunter2 user=u sslpassword=k oauth_client_secret=s");
        let shown = format!("{p:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("=k"), "{shown}");
        assert!(shown.contains("\"u\""), "{shown}");
    }

    #[test]
    fn equality_ignores_order_and_origin() {
        let a = parse("host=a port=1");
        let mut b = ConnParams::new();
        b.set("port", "1").unwrap_or_else(|e| panic!("{e}"));
        b.set("host", "a").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a, b);
        b.set("host", "c").unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a, b);
    }

    #[test]
    fn formatting_quotes_only_when_needed() {
        let p = parse(
            r"host=db1 password='a b' user='' options='it\'s' application_name='back\\slash'",
        );
        assert_eq!(
            p.to_conninfo_string(),
            r"host=db1 password='a b' user='' options='it\'s' application_name='back\\slash'"
        );
    }

    #[test]
    fn from_str_is_parse() {
        let p: ConnParams = "host=a"
            .parse()
            .unwrap_or_else(|e: ConfigError| panic!("{e}"));
        assert_eq!(p.get("host"), Some("a"));
    }

    /// Keywords that survive a round trip unchanged (`requiressl` is rewritten on input).
    fn any_keyword() -> impl Strategy<Value = &'static str> {
        proptest::sample::select(KEYWORDS.iter().map(|k| k.name).collect::<Vec<_>>())
    }

    /// Any string without NUL, biased towards the characters the syntax cares about.
    fn any_value() -> impl Strategy<Value = String> {
        prop_oneof!["[^\u{0}]{0,24}", "[ '\\\\=a,:/@?&%\t\n\x0b\x0c\r]{0,12}",]
    }

    pub(in crate::config) fn any_params() -> impl Strategy<Value = ConnParams> {
        proptest::collection::vec((any_keyword(), any_value()), 0..8).prop_map(|pairs| {
            let mut params = ConnParams::new();
            for (k, v) in pairs {
                params.put(k, v, ParamSource::Explicit);
            }
            params
        })
    }

    proptest! {
        #[test]
        fn conninfo_string_round_trips(params in any_params()) {
            let text = params.to_conninfo_string();
            let back = ConnParams::parse_key_value(&text);
            prop_assert!(back.is_ok(), "{text:?}: {back:?}");
            let back = back.unwrap_or_default();
            prop_assert_eq!(pairs(&back), pairs(&params), "{:?}", text);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,64}") {
            let _ = ConnParams::parse(&s);
        }

        #[test]
        fn parsing_arbitrary_bytes_never_panics(s in "[ -~\t\n\u{80}-\u{10ffff}]{0,64}") {
            let _ = ConnParams::parse_key_value(&s);
            let _ = ConnParams::parse(&format!("postgresql://{s}"));
        }
    }
}
