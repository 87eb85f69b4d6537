//! `pgwalrus verify`: walks the archive in LSN order along a timeline's history and checks
//! that no segment is missing, every page header is valid, every record's CRC matches and
//! the `xl_prev` chain is unbroken, and that page timelines agree with the history files.
//! Exit 0 clean, 1 problems found, 2 could not run.
//!
//! Records are checked in place and segments on every core ([`check`]); what is reported
//! is exactly what one sequential walk reports, in the same order.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};

use crate::cli::VerifyArgs;
use crate::exit::Exit;
use crate::failure::{Failure, Outcome};
use crate::walk::{Event, Problem, Summary, WalkOptions, check};

/// Runs the verification and prints its report on stdout.
///
/// # Errors
/// Exit 1 with a summary when problems were found, 2 when the walk could not run.
pub fn run(args: &VerifyArgs, quiet: bool) -> Outcome {
    let url = args.bucket.archive.clone().or_else(|| {
        args.directory
            .to_str()
            .filter(|d| d.starts_with("s3://"))
            .map(str::to_owned)
    });
    if let Some(url) = url {
        return crate::verify_bucket::run(args, &url, quiet);
    }
    let problems = walk(args, quiet)?;
    if problems == 0 {
        Ok(())
    } else {
        Err(Failure::msg(
            Exit::PROBLEMS_FOUND,
            format!(
                "{problems} problem(s) found in \"{}\"",
                args.directory.display()
            ),
        ))
    }
}

/// Walks the archive directory of `args`, prints the report, and returns how many problems
/// it found.
///
/// # Errors
/// Exit 2 when the walk could not run.
pub(crate) fn walk(args: &VerifyArgs, quiet: bool) -> Result<usize, Failure> {
    let options = WalkOptions {
        dir: args.directory.clone(),
        only_file: None,
        timeline: args.timeline,
        start: args.start,
        end: args.end,
    };
    let live = !quiet && !args.json && std::io::stderr().is_terminal();
    let mut problems: Vec<Problem> = Vec::new();
    let mut stdout = std::io::stdout().lock();
    let summary = check(&options, |event| match event {
        Event::Segment { index, count, name } => {
            if live {
                let _ = write!(
                    std::io::stderr().lock(),
                    "\rverifying {name} ({}/{count})",
                    index + 1
                );
            }
        }
        Event::Record(..) => {}
        Event::Problem(p) => {
            if !args.json {
                let _ = writeln!(stdout, "problem: {}", describe(p));
            }
            problems.push(p.clone());
        }
    })
    // Whatever stopped the walk before it could judge the archive: "could not run".
    .map_err(|f| Failure {
        exit: Exit::Config,
        ..f
    })?;
    if live {
        let _ = writeln!(std::io::stderr().lock());
    }
    let text = if args.json {
        json(&summary, &problems)
    } else {
        human(&summary)
    };
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    Ok(problems.len())
}

fn describe(p: &Problem) -> String {
    let mut out = String::new();
    if let Some(file) = &p.file {
        out.push_str(file);
        if let Some(offset) = p.offset {
            let _ = write!(out, " offset {offset:#x}");
        }
    }
    if let Some(lsn) = p.lsn {
        let _ = write!(out, "{}lsn {lsn}", if out.is_empty() { "" } else { " " });
    }
    let _ = write!(out, ": {}", p.message);
    out
}

fn human(s: &Summary) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "checked {} segment(s) ({} .. {}) on timeline {}, {} record(s)",
        s.segments,
        s.first_file.as_deref().unwrap_or("-"),
        s.last_file.as_deref().unwrap_or("-"),
        s.timeline.map_or_else(|| "-".to_owned(), |t| t.to_string()),
        s.records
    );
    if let (Some(first), Some(end)) = (s.first_lsn, s.end_lsn) {
        let _ = write!(out, " from {first} to {end}");
    }
    if s.problems == 0 {
        out.push_str(": no problems\n");
    } else {
        let _ = writeln!(out, ": {} problem(s)", s.problems);
    }
    out
}

/// JSON without a serde dependency: a handful of fields, strings escaped.
fn json(s: &Summary, problems: &[Problem]) -> String {
    let opt_lsn = |l: Option<pgwalrus_wal::Lsn>| {
        l.map_or_else(|| "null".to_owned(), |l| quote(&l.to_string()))
    };
    let opt_str = |v: Option<&str>| v.map_or_else(|| "null".to_owned(), quote);
    let mut out = String::from("{");
    let _ = write!(
        out,
        "\"segments\":{},\"records\":{},\"timeline\":{},\"first_file\":{},\"last_file\":{},\"first_lsn\":{},\"end_lsn\":{},\"problems\":[",
        s.segments,
        s.records,
        s.timeline
            .map_or_else(|| "null".to_owned(), |t| t.to_string()),
        opt_str(s.first_file.as_deref()),
        opt_str(s.last_file.as_deref()),
        opt_lsn(s.first_lsn),
        opt_lsn(s.end_lsn),
    );
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"file\":{},\"offset\":{},\"lsn\":{},\"message\":{}}}",
            opt_str(p.file.as_deref()),
            p.offset
                .map_or_else(|| "null".to_owned(), |o| o.to_string()),
            opt_lsn(p.lsn),
            quote(&p.message)
        );
    }
    out.push_str("]}\n");
    out
}

/// A JSON string literal.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
