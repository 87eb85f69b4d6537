//! libpq's connection URI syntax, into and out of [`ConnParams`]:
//! `postgresql://[user[:password]@][host[:port]][,host[:port]...][/dbname][?key=value&...]`
//! (`postgres://` works too).
//!
//! This follows libpq's `conninfo_uri_parse_options` rather than RFC 3986 where the two
//! differ: the scheme is case-sensitive; the user part is whatever precedes the first `@`
//! that comes before any `/`; each host may be an IPv6 address in brackets; hosts and ports
//! are collected into comma-separated `host` and `port` lists (so `a:1,b` gives `port=1,`,
//! an empty second port meaning the default); every part is percent-decoded (`%2F` lets a
//! Unix socket directory be given as the host); query parameters may set any keyword, and
//! `ssl=true` means `sslmode=require` as in JDBC. Empty user, password, host list, port list
//! and database name are left unset.

use super::ConfigError;
use super::conninfo::{ConnParams, ParamSource};

const SCHEMES: [&str; 2] = ["postgresql://", "postgres://"];

/// Length of the URI scheme designator if `s` starts with one (libpq's `uri_prefix_length`).
pub(super) fn prefix_len(s: &str) -> Option<usize> {
    SCHEMES
        .iter()
        .find(|scheme| s.starts_with(*scheme))
        .map(|scheme| scheme.len())
}

/// Parses a URI whose scheme designator is `prefix` bytes long.
pub(super) fn parse(input: &str, prefix: usize) -> Result<ConnParams, ConfigError> {
    let b = input.as_bytes();
    let len = b.len();
    let mut params = ConnParams::new();
    let mut p = prefix;

    // User and password: only if an '@' comes before any '/'.
    let mut q = p;
    while q < len && b[q] != b'@' && b[q] != b'/' {
        q += 1;
    }
    if q < len && b[q] == b'@' {
        let colon = b[p..q].iter().position(|&c| c == b':').map(|i| p + i);
        let user_end = colon.unwrap_or(q);
        let user = decode(input, p, user_end, "user")?;
        if !user.is_empty() {
            params.store("user", user, ParamSource::ConnString { position: p }, None)?;
        }
        if let Some(colon) = colon {
            let password = decode(input, colon + 1, q, "password")?;
            if !password.is_empty() {
                let origin = ParamSource::ConnString {
                    position: colon + 1,
                };
                params.store("password", password, origin, None)?;
            }
        }
        p = q + 1;
    }

    // One or more host[:port], separated by commas.
    let netloc_start = p;
    let mut hosts = String::new();
    let mut ports = String::new();
    let mut port_start = None;
    let mut terminator;
    loop {
        let (host_start, host_end);
        if b.get(p) == Some(&b'[') {
            let open = p;
            p += 1;
            host_start = p;
            while p < len && b[p] != b']' {
                p += 1;
            }
            if p == len {
                return Err(ConfigError::UriUnterminatedIpv6 { position: open });
            }
            if p == host_start {
                return Err(ConfigError::UriEmptyIpv6 { position: open });
            }
            host_end = p;
            p += 1;
            if let Some(&c) = b.get(p)
                && !matches!(c, b':' | b'/' | b'?' | b',')
            {
                let character = input.get(p..).and_then(|s| s.chars().next()).unwrap_or('?');
                return Err(ConfigError::UriUnexpectedCharacter {
                    character,
                    position: p,
                });
            }
        } else {
            host_start = p;
            while p < len && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                p += 1;
            }
            host_end = p;
        }
        hosts.push_str(&decode(input, host_start, host_end, "host")?);
        terminator = b.get(p).copied();
        if terminator == Some(b':') {
            p += 1;
            let start = p;
            port_start.get_or_insert(start);
            while p < len && !matches!(b[p], b'/' | b'?' | b',') {
                p += 1;
            }
            ports.push_str(&decode(input, start, p, "port")?);
            terminator = b.get(p).copied();
        }
        if terminator != Some(b',') {
            break;
        }
        p += 1;
        hosts.push(',');
        ports.push(',');
    }
    if !hosts.is_empty() {
        params.store(
            "host",
            hosts,
            ParamSource::ConnString {
                position: netloc_start,
            },
            None,
        )?;
    }
    if !ports.is_empty() {
        let position = port_start.unwrap_or(netloc_start);
        params.store("port", ports, ParamSource::ConnString { position }, None)?;
    }

    // The database name, up to the query.
    if terminator == Some(b'/') {
        p += 1;
        let start = p;
        while p < len && b[p] != b'?' {
            p += 1;
        }
        let dbname = decode(input, start, p, "dbname")?;
        if !dbname.is_empty() {
            params.store(
                "dbname",
                dbname,
                ParamSource::ConnString { position: start },
                None,
            )?;
        }
        terminator = b.get(p).copied();
    }

    if terminator.is_some() {
        parse_query(input, p + 1, &mut params)?;
    }
    Ok(params)
}

/// `key=value&key=value` from byte `start` to the end (libpq's `conninfo_uri_parse_params`).
fn parse_query(input: &str, start: usize, params: &mut ConnParams) -> Result<(), ConfigError> {
    let b = input.as_bytes();
    let mut i = start;
    while i < b.len() {
        let key_start = i;
        let mut equals = None;
        while i < b.len() && b[i] != b'&' {
            if b[i] == b'=' {
                if let Some(first) = equals {
                    return Err(ConfigError::UriExtraEquals {
                        parameter: lossy(b, key_start, first),
                        position: i,
                    });
                }
                equals = Some(i);
            }
            i += 1;
        }
        let end = i;
        if i < b.len() {
            i += 1;
        }
        let Some(equals) = equals else {
            return Err(ConfigError::UriMissingEquals {
                parameter: lossy(b, key_start, end),
                position: key_start,
            });
        };
        let raw_key = lossy(b, key_start, equals);
        let key = decode(input, key_start, equals, &raw_key)?;
        let value = decode(input, equals + 1, end, &key)?;
        let (key, value) = if key == "ssl" && value == "true" {
            ("sslmode".to_owned(), "require".to_owned())
        } else {
            (key, value)
        };
        let origin = ParamSource::ConnString {
            position: equals + 1,
        };
        params.store(&key, value, origin, Some(key_start))?;
    }
    Ok(())
}

fn lossy(b: &[u8], start: usize, end: usize) -> String {
    String::from_utf8_lossy(b.get(start..end).unwrap_or_default()).into_owned()
}

/// Percent-decodes `input[start..end]` (libpq's `conninfo_uri_decode`); `part` names it in
/// errors.
fn decode(input: &str, start: usize, end: usize, part: &str) -> Result<String, ConfigError> {
    let b = input.as_bytes().get(start..end).unwrap_or_default();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hi = b.get(i + 1).and_then(|&c| hex_value(c));
        let lo = b.get(i + 2).and_then(|&c| hex_value(c));
        let (Some(hi), Some(lo)) = (hi, lo) else {
            return Err(ConfigError::InvalidPercentEncoding {
                part: part.to_owned(),
                position: start + i,
            });
        };
        let byte = (hi << 4) | lo;
        if byte == 0 {
            return Err(ConfigError::PercentEncodedNul {
                part: part.to_owned(),
                position: start + i,
            });
        }
        out.push(byte);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| ConfigError::UriNotUtf8 {
        part: part.to_owned(),
        position: start,
    })
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in s.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// Formats `params` as a URI that [`parse`] reads back to the same parameters.
pub(super) fn format(params: &ConnParams) -> String {
    let mut out = String::from(SCHEMES[0]);
    let mut in_query: Vec<(&str, &str)> = Vec::new();

    // Authority: only non-empty user and password can be expressed there.
    let user = params.get("user").filter(|u| !u.is_empty());
    let password = params.get("password").filter(|p| !p.is_empty());
    if let Some(user) = user {
        encode(&mut out, user);
    }
    if let Some(password) = password {
        out.push(':');
        encode(&mut out, password);
    }
    if user.is_some() || password.is_some() {
        out.push('@');
    }

    // Hosts and ports go in the authority only when parsing gives them back exactly: a
    // non-empty host list, and either no port with a single host (several hosts would
    // come back with an all-empty port list) or one port element per host (a lone empty
    // port would not come back at all).
    let host = params.get("host").filter(|h| !h.is_empty());
    let port = params.get("port");
    let netloc = host.is_some_and(|h| {
        let host_count = h.split(',').count();
        match port {
            None => host_count == 1,
            Some(p) => p.split(',').count() == host_count && (host_count > 1 || !p.is_empty()),
        }
    });
    if netloc {
        let hosts = host.unwrap_or_default().split(',');
        let mut ports = port.map(|p| p.split(','));
        for (i, h) in hosts.enumerate() {
            if i > 0 {
                out.push(',');
            }
            encode(&mut out, h);
            if let Some(p) = ports
                .as_mut()
                .and_then(Iterator::next)
                .filter(|p| !p.is_empty())
            {
                out.push(':');
                encode(&mut out, p);
            }
        }
    }

    let dbname = params.get("dbname").filter(|d| !d.is_empty());
    if let Some(dbname) = dbname {
        out.push('/');
        encode(&mut out, dbname);
    }

    for (keyword, value) in params.iter() {
        let in_authority = match keyword {
            "user" => user.is_some(),
            "password" => password.is_some(),
            "host" | "port" => netloc,
            "dbname" => dbname.is_some(),
            _ => false,
        };
        if !in_authority {
            in_query.push((keyword, value));
        }
    }
    for (i, (keyword, value)) in in_query.into_iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        encode(&mut out, keyword);
        out.push('=');
        encode(&mut out, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::conninfo::tests::any_params;
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> ConnParams {
        match ConnParams::parse(s) {
            Ok(p) => p,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    fn err(s: &str) -> ConfigError {
        match ConnParams::parse(s) {
            Ok(p) => panic!("{s:?} parsed as {p:?}"),
            Err(e) => e,
        }
    }

    fn pairs(p: &ConnParams) -> Vec<(&'static str, &str)> {
        p.iter().collect()
    }

    #[test]
    fn full_uri() {
        let p =
            parse("postgresql://walrus:s3cret@db1:5433/appdb?sslmode=require&application_name=x");
        assert_eq!(
            pairs(&p),
            vec![
                ("user", "walrus"),
                ("password", "s3cret"),
                ("host", "db1"),
                ("port", "5433"),
                ("dbname", "appdb"),
                ("sslmode", "require"),
                ("application_name", "x"),
            ]
        );
    }

    #[test]
    fn short_scheme_and_bare_forms() {
        assert!(parse("postgres://").is_empty());
        assert!(parse("postgresql://").is_empty());
        assert_eq!(pairs(&parse("postgres://db")), vec![("host", "db")]);
        assert_eq!(
            pairs(&parse("postgresql:///mydb")),
            vec![("dbname", "mydb")]
        );
        assert_eq!(pairs(&parse("postgresql://db/")), vec![("host", "db")]);
        assert_eq!(pairs(&parse("postgresql://?host=db")), vec![("host", "db")]);
    }

    #[test]
    fn scheme_is_case_sensitive() {
        // Not a URI, so it is key=value syntax and has no '='.
        assert!(matches!(
            err("PostgreSQL://db"),
            ConfigError::MissingEquals { .. }
        ));
    }

    #[test]
    fn user_without_password_and_password_without_user() {
        assert_eq!(
            pairs(&parse("postgresql://walrus@db")),
            vec![("user", "walrus"), ("host", "db")]
        );
        assert_eq!(
            pairs(&parse("postgresql://:pw@db")),
            vec![("password", "pw"), ("host", "db")]
        );
        assert_eq!(
            pairs(&parse("postgresql://walrus:@db")),
            vec![("user", "walrus"), ("host", "db")]
        );
        assert_eq!(pairs(&parse("postgresql://@db")), vec![("host", "db")]);
    }

    #[test]
    fn password_may_contain_colons() {
        assert_eq!(parse("postgresql://u:a:b@db").get("password"), Some("a:b"));
    }

    #[test]
    fn at_after_slash_is_not_userinfo() {
        let p = parse("postgresql://db/name@x");
        assert_eq!(p.get("user"), None);
        assert_eq!(p.get("dbname"), Some("name@x"));
    }

    #[test]
    fn percent_decoding_everywhere() {
        let p =
            parse("postgresql://us%40er:p%3Aw%2F@h%6Fst:54%332/d%20b?application_name=a%26b%3Dc");
        assert_eq!(p.get("user"), Some("us@er"));
        assert_eq!(p.get("password"), Some("p:w/"));
        assert_eq!(p.get("host"), Some("host"));
        assert_eq!(p.get("port"), Some("5432"));
        assert_eq!(p.get("dbname"), Some("d b"));
        assert_eq!(p.get("application_name"), Some("a&b=c"));
        // '+' is not a space in libpq URIs.
        assert_eq!(parse("postgresql:///a+b").get("dbname"), Some("a+b"));
        assert_eq!(parse("postgresql:///%C3%A9").get("dbname"), Some("é"));
    }

    #[test]
    fn socket_directory_as_percent_encoded_host() {
        let p = parse("postgresql://%2Fvar%2Frun%2Fpostgresql/db");
        assert_eq!(p.get("host"), Some("/var/run/postgresql"));
        assert_eq!(p.get("dbname"), Some("db"));
        let p = parse("postgresql://%2Ftmp:5433");
        assert_eq!(p.get("host"), Some("/tmp"));
        assert_eq!(p.get("port"), Some("5433"));
        let p = parse("postgresql:///db?host=/var/lib/postgresql");
        assert_eq!(p.get("host"), Some("/var/lib/postgresql"));
    }

    #[test]
    fn ipv6_hosts() {
        let p = parse("postgresql://[::1]:5433/db");
        assert_eq!(p.get("host"), Some("::1"));
        assert_eq!(p.get("port"), Some("5433"));
        let p = parse("postgresql://[2001:db8::7]");
        assert_eq!(p.get("host"), Some("2001:db8::7"));
        assert_eq!(p.get("port"), None);
        let p = parse("postgresql://[fe80::1%25eth0]/db");
        assert_eq!(p.get("host"), Some("fe80::1%eth0"));
        let p = parse("postgresql://[::1]?sslmode=disable");
        assert_eq!(p.get("host"), Some("::1"));
        assert_eq!(p.get("sslmode"), Some("disable"));
    }

    #[test]
    fn multiple_hosts_zip_ports_with_empty_gaps() {
        let p = parse("postgresql://a:1,[::1]:2,c/db");
        assert_eq!(p.get("host"), Some("a,::1,c"));
        assert_eq!(p.get("port"), Some("1,2,"));
        let p = parse("postgresql://a,b");
        assert_eq!(p.get("host"), Some("a,b"));
        assert_eq!(p.get("port"), Some(","));
        let p = parse("postgresql://a,b:5");
        assert_eq!(p.get("port"), Some(",5"));
        let p = parse("postgresql://,");
        assert_eq!(p.get("host"), Some(","));
    }

    #[test]
    fn query_params_override_and_translate() {
        let p = parse("postgresql://a/db?host=b&ssl=true&requiressl=0&dbname=other");
        assert_eq!(p.get("host"), Some("b"));
        assert_eq!(p.get("sslmode"), Some("prefer"));
        assert_eq!(p.get("dbname"), Some("other"));
        assert_eq!(
            parse("postgresql://?ssl=true").get("sslmode"),
            Some("require")
        );
        // Empty query values are kept; a trailing '&' is fine.
        let p = parse("postgresql://?user=&host=x&");
        assert_eq!(p.get("user"), Some(""));
        assert_eq!(p.get("host"), Some("x"));
    }

    #[test]
    fn query_only_ssl_true_is_translated() {
        let e = err("postgresql://?ssl=false");
        assert!(
            matches!(&e, ConfigError::InvalidKeyword { keyword, position: Some(14) } if keyword == "ssl")
        );
    }

    #[test]
    fn unknown_query_keyword_names_position() {
        let e = err("postgresql://db/x?sslmode=disable&bogus=1");
        assert!(
            matches!(&e, ConfigError::InvalidKeyword { keyword, position: Some(34) } if keyword == "bogus")
        );
    }

    #[test]
    fn value_origins_point_into_the_uri() {
        let p = parse("postgresql://u@h:5433/db?sslmode=bad");
        assert_eq!(
            p.origin("user"),
            Some(ParamSource::ConnString { position: 13 })
        );
        assert_eq!(
            p.origin("host"),
            Some(ParamSource::ConnString { position: 15 })
        );
        assert_eq!(
            p.origin("port"),
            Some(ParamSource::ConnString { position: 17 })
        );
        assert_eq!(
            p.origin("dbname"),
            Some(ParamSource::ConnString { position: 22 })
        );
        assert_eq!(
            p.origin("sslmode"),
            Some(ParamSource::ConnString { position: 33 })
        );
    }

    #[test]
    fn unterminated_ipv6() {
        let e = err("postgresql://a,[::1");
        assert!(matches!(
            e,
            ConfigError::UriUnterminatedIpv6 { position: 15 }
        ));
        assert_eq!(e.keyword(), Some("host"));
    }

    #[test]
    fn empty_ipv6() {
        assert!(matches!(
            err("postgresql://[]:5432"),
            ConfigError::UriEmptyIpv6 { position: 13 }
        ));
    }

    #[test]
    fn junk_after_ipv6() {
        let e = err("postgresql://[::1]x");
        assert!(matches!(
            e,
            ConfigError::UriUnexpectedCharacter {
                character: 'x',
                position: 18
            }
        ));
        let e = err("postgresql://[::1]é");
        assert!(matches!(
            e,
            ConfigError::UriUnexpectedCharacter {
                character: 'é',
                position: 18
            }
        ));
    }

    #[test]
    fn query_param_without_equals() {
        let e = err("postgresql://db?sslmode");
        assert!(
            matches!(&e, ConfigError::UriMissingEquals { parameter, position: 16 } if parameter == "sslmode")
        );
        let e = err("postgresql://db?port=1&&host=2");
        assert!(
            matches!(&e, ConfigError::UriMissingEquals { parameter, position: 23 } if parameter.is_empty())
        );
    }

    #[test]
    fn query_param_with_two_equals() {
        let e = err("postgresql://db?options=a=b");
        assert!(
            matches!(&e, ConfigError::UriExtraEquals { parameter, position: 25 } if parameter == "options")
        );
    }

    #[test]
    fn bad_percent_encoding() {
        let e = err("postgresql://db/a%2");
        assert!(
            matches!(&e, ConfigError::InvalidPercentEncoding { part, position: 17 } if part == "dbname")
        );
        let e = err("postgresql://u%zz@db");
        assert!(
            matches!(&e, ConfigError::InvalidPercentEncoding { part, position: 14 } if part == "user")
        );
        let e = err("postgresql://db?application_name=%G0");
        assert!(
            matches!(&e, ConfigError::InvalidPercentEncoding { part, position: 33 } if part == "application_name")
        );
        let e = err("postgresql://h:5%4");
        assert!(
            matches!(&e, ConfigError::InvalidPercentEncoding { part, position: 16 } if part == "port")
        );
    }

    #[test]
    fn percent_encoded_nul_is_forbidden() {
        let e = err("postgresql://:a%00b@db");
        assert!(
            matches!(&e, ConfigError::PercentEncodedNul { part, position: 15 } if part == "password")
        );
    }

    #[test]
    fn percent_decoding_to_invalid_utf8() {
        let e = err("postgresql://db/%FF");
        assert!(matches!(&e, ConfigError::UriNotUtf8 { part, position: 16 } if part == "dbname"));
    }

    #[test]
    fn formatter_uses_the_authority_when_exact() {
        let p = parse("postgresql://u:p@a:1,b:2/db?sslmode=require");
        assert_eq!(
            p.to_uri_string(),
            "postgresql://u:p@a:1,b:2/db?sslmode=require"
        );
        let p = parse("host=/var/run/postgresql user='a b' port=5432");
        assert_eq!(
            p.to_uri_string(),
            "postgresql://a%20b@%2Fvar%2Frun%2Fpostgresql:5432"
        );
        // One port for several hosts cannot go in the authority.
        let p = parse("host=a,b port=5433");
        assert_eq!(p.to_uri_string(), "postgresql://?host=a%2Cb&port=5433");
        let p = parse("host=::1");
        assert_eq!(p.to_uri_string(), "postgresql://%3A%3A1");
    }

    proptest! {
        #[test]
        fn uri_round_trips(params in any_params()) {
            let text = params.to_uri_string();
            let back = ConnParams::parse(&text);
            prop_assert!(back.is_ok(), "{text:?}: {back:?}");
            prop_assert_eq!(back.unwrap_or_default(), params, "{:?}", text);
        }

        #[test]
        fn uri_parsing_never_panics(s in "[\\[\\]:/?@,%=&a-f0-9 é]{0,40}") {
            let _ = ConnParams::parse(&format!("postgresql://{s}"));
        }
    }
}
