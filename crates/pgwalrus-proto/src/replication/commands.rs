//! Replication command text, with correct quoting.
//!
//! The walsender's grammar (`repl_gram.y` / `repl_scanner.l`) takes identifiers in double
//! quotes and string literals in single quotes with `''` for a quote (no backslash
//! escapes). Unlike SQL, its scanner has no escape for a `"` inside a quoted identifier
//! (PostgreSQL 15 answers `"a""b"` with "syntax error"), so names containing `"` are
//! refused here rather than sent: slot names may only use `a-z`, `0-9` and `_` anyway. Every
//! name goes through [`quote_repl_ident`], so a name can never change the command around it.

use std::fmt::Write;

use pgwalrus_wal::{Lsn, TimeLineId};

use crate::error::ProtoError;

/// First server version (`server_version_num`) with the parenthesised option list for
/// `CREATE_REPLICATION_SLOT` and with `READ_REPLICATION_SLOT`.
pub const PG15: u32 = 150_000;

/// Quotes an identifier for the walsender's grammar: `my_slot` becomes `"my_slot"`.
///
/// # Errors
/// [`ProtoError::Invalid`] naming `field` when `name` contains `"` (which that grammar
/// cannot quote) or a NUL byte.
pub fn quote_repl_ident(name: &str, field: &'static str) -> Result<String, ProtoError> {
    if name.contains('"') {
        return Err(ProtoError::invalid(
            field,
            format!("{name:?} contains a double quote, which replication commands cannot quote"),
        ));
    }
    if name.contains('\0') {
        return Err(ProtoError::InteriorNul { field });
    }
    Ok(format!("\"{name}\""))
}

/// Quotes an identifier the SQL way: `my"slot` becomes `"my""slot"` (for SQL sessions; the
/// walsender's grammar needs [`quote_repl_ident`]).
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a string literal: `it's` becomes `'it''s'`.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `IDENTIFY_SYSTEM`.
pub fn identify_system() -> String {
    "IDENTIFY_SYSTEM".to_owned()
}

/// `SHOW name`; each dot-separated part of `name` is quoted (setting names are
/// case-insensitive, so quoting does not change which setting is read).
///
/// # Errors
/// As [`quote_repl_ident`].
pub fn show(name: &str) -> Result<String, ProtoError> {
    let parts = name
        .split('.')
        .map(|p| quote_repl_ident(p, "SHOW name"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("SHOW {}", parts.join(".")))
}

/// `TIMELINE_HISTORY tli`.
pub fn timeline_history(tli: TimeLineId) -> String {
    format!("TIMELINE_HISTORY {tli}")
}

/// `CREATE_REPLICATION_SLOT "name" [TEMPORARY] PHYSICAL` with `RESERVE_WAL` in the syntax
/// the server understands: the legacy keyword before 15, the option list from 15.
///
/// # Errors
/// As [`quote_repl_ident`].
pub fn create_physical_slot(
    name: &str,
    temporary: bool,
    reserve_wal: bool,
    server_version_num: u32,
) -> Result<String, ProtoError> {
    let mut out = format!(
        "CREATE_REPLICATION_SLOT {}",
        quote_repl_ident(name, "slot name")?
    );
    if temporary {
        out.push_str(" TEMPORARY");
    }
    out.push_str(" PHYSICAL");
    if reserve_wal {
        out.push_str(if server_version_num >= PG15 {
            " (RESERVE_WAL)"
        } else {
            " RESERVE_WAL"
        });
    }
    Ok(out)
}

/// `READ_REPLICATION_SLOT "name"` (servers 15+).
///
/// # Errors
/// As [`quote_repl_ident`].
pub fn read_replication_slot(name: &str) -> Result<String, ProtoError> {
    Ok(format!(
        "READ_REPLICATION_SLOT {}",
        quote_repl_ident(name, "slot name")?
    ))
}

/// `DROP_REPLICATION_SLOT "name" [WAIT]`.
///
/// # Errors
/// As [`quote_repl_ident`].
pub fn drop_replication_slot(name: &str, wait: bool) -> Result<String, ProtoError> {
    let mut out = format!(
        "DROP_REPLICATION_SLOT {}",
        quote_repl_ident(name, "slot name")?
    );
    if wait {
        out.push_str(" WAIT");
    }
    Ok(out)
}

/// `START_REPLICATION [SLOT "s"] PHYSICAL X/X [TIMELINE n]`.
///
/// # Errors
/// As [`quote_repl_ident`] for the slot name.
pub fn start_physical(
    slot: Option<&str>,
    start: Lsn,
    timeline: Option<TimeLineId>,
) -> Result<String, ProtoError> {
    let mut out = String::from("START_REPLICATION");
    if let Some(slot) = slot {
        let _ = write!(out, " SLOT {}", quote_repl_ident(slot, "slot name")?);
    }
    let _ = write!(out, " PHYSICAL {start}");
    if let Some(tli) = timeline {
        let _ = write!(out, " TIMELINE {tli}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("slot"), "\"slot\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident(""), "\"\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("back\\slash"), "'back\\slash'");
        assert_eq!(quote_repl_ident("my_slot", "f").unwrap(), "\"my_slot\"");
        assert!(matches!(
            quote_repl_ident("a\"b", "slot name"),
            Err(ProtoError::Invalid {
                field: "slot name",
                ..
            })
        ));
        assert_eq!(
            quote_repl_ident("a\0b", "f").unwrap_err(),
            ProtoError::InteriorNul { field: "f" }
        );
    }

    #[test]
    fn commands() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        let tli = TimeLineId::new(3).unwrap();
        assert_eq!(identify_system(), "IDENTIFY_SYSTEM");
        assert_eq!(
            show("wal_segment_size").unwrap(),
            "SHOW \"wal_segment_size\""
        );
        assert_eq!(show("a.b").unwrap(), "SHOW \"a\".\"b\"");
        assert_eq!(timeline_history(tli), "TIMELINE_HISTORY 3");
        assert_eq!(
            create_physical_slot("s", false, true, 140_010).unwrap(),
            "CREATE_REPLICATION_SLOT \"s\" PHYSICAL RESERVE_WAL"
        );
        assert_eq!(
            create_physical_slot("s", true, true, 150_000).unwrap(),
            "CREATE_REPLICATION_SLOT \"s\" TEMPORARY PHYSICAL (RESERVE_WAL)"
        );
        assert_eq!(
            create_physical_slot("s", false, false, 180_000).unwrap(),
            "CREATE_REPLICATION_SLOT \"s\" PHYSICAL"
        );
        assert_eq!(
            read_replication_slot("s").unwrap(),
            "READ_REPLICATION_SLOT \"s\""
        );
        assert_eq!(
            drop_replication_slot("s", true).unwrap(),
            "DROP_REPLICATION_SLOT \"s\" WAIT"
        );
        assert_eq!(
            drop_replication_slot("s", false).unwrap(),
            "DROP_REPLICATION_SLOT \"s\""
        );
        assert_eq!(
            start_physical(None, lsn, None).unwrap(),
            "START_REPLICATION PHYSICAL 16/B374D848"
        );
        assert_eq!(
            start_physical(Some("x_y"), Lsn::new(0x100_0000), Some(tli)).unwrap(),
            "START_REPLICATION SLOT \"x_y\" PHYSICAL 0/1000000 TIMELINE 3"
        );
        assert!(start_physical(Some("x\"y"), lsn, None).is_err());
        assert!(create_physical_slot("x\"", false, false, 150_000).is_err());
        assert!(show("a\"b").is_err());
    }

    #[test]
    fn captured_psql_commands_match() {
        // psql sent these in the capture (crate::testdata); our builders give the same text
        // apart from `WAIT` and RESERVE_WAL syntax chosen for a 15 server.
        assert_eq!(
            read_replication_slot("cap_slot").unwrap(),
            "READ_REPLICATION_SLOT \"cap_slot\""
        );
        assert_eq!(
            drop_replication_slot("cap_slot", true).unwrap(),
            "DROP_REPLICATION_SLOT \"cap_slot\" WAIT"
        );
        assert_eq!(
            create_physical_slot("cap_slot", false, true, 140_000).unwrap(),
            "CREATE_REPLICATION_SLOT \"cap_slot\" PHYSICAL RESERVE_WAL"
        );
    }

    /// Undoes a quoting the way the walsender's (or SQL's) scanner does.
    fn unquote(q: &str, quote: char) -> Option<String> {
        let inner = q.strip_prefix(quote)?.strip_suffix(quote)?;
        let mut out = String::new();
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if c == quote && chars.next() != Some(quote) {
                return None;
            }
            out.push(c);
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn quote_roundtrip(s in "\\PC{0,20}") {
            prop_assert_eq!(unquote(&quote_ident(&s), '"'), Some(s.clone()));
            prop_assert_eq!(unquote(&quote_literal(&s), '\''), Some(s));
        }

        #[test]
        fn slot_names_cannot_escape(s in "\\PC{0,20}") {
            // Whatever the name, the command holds exactly one quoted identifier without
            // any embedded quote, or is refused.
            match drop_replication_slot(&s, false) {
                Ok(cmd) => {
                    let rest = cmd.strip_prefix("DROP_REPLICATION_SLOT ").unwrap();
                    prop_assert_eq!(rest.matches('"').count(), 2);
                    prop_assert_eq!(unquote(rest, '"'), Some(s));
                }
                Err(_) => prop_assert!(s.contains('"') || s.contains('\0')),
            }
        }
    }
}
