//! `pgwalrus dump`: one line per record in `pg_waldump`'s layout, or its `--stats` tables,
//! for an archive directory or one segment file, whatever its compression.

use std::io::Write as _;

use pgwalrus_wal::dump::{WalStats, write_record};
use pgwalrus_wal::rmgr::RmgrId;

use crate::cli::{DumpArgs, StatsKind};
use crate::exit::Exit;
use crate::failure::{Failure, Outcome};
use crate::verify::quote;
use crate::walk::{Event, WalkOptions, split_file_argument, walk};

/// Runs the dump.
///
/// # Errors
/// Exit 2 when the archive cannot be read, 1 when problems interrupted the records (they are
/// printed on stderr as they are met, as pg_waldump does).
pub fn run(args: &DumpArgs) -> Outcome {
    let url = args.bucket.archive.clone().or_else(|| {
        args.path
            .to_str()
            .filter(|p| p.starts_with("s3://"))
            .map(str::to_owned)
    });
    if let Some(url) = url {
        // An object-storage archive: read once into a temporary directory, then dumped.
        let downloaded = crate::verify_bucket::download_archive(&args.bucket, &url)?;
        for (key, why) in &downloaded.damaged {
            tracing::error!("{key}: {why}");
        }
        let local = DumpArgs {
            path: downloaded.copy.path().to_path_buf(),
            bucket: crate::cli::BucketArgs::default(),
            ..args.clone()
        };
        let dumped = run(&local);
        if dumped.is_ok() && !downloaded.damaged.is_empty() {
            return Err(Failure::msg(
                Exit::PROBLEMS_FOUND,
                format!("{} damaged object(s) in {url}", downloaded.damaged.len()),
            ));
        }
        return dumped;
    }
    let (dir, only_file) = if args.path.is_file() {
        let (dir, name) = split_file_argument(&args.path).ok_or_else(|| {
            Failure::msg(
                Exit::Config,
                format!("invalid file name \"{}\"", args.path.display()),
            )
        })?;
        (dir, Some(name))
    } else {
        (args.path.clone(), None)
    };
    let options = WalkOptions {
        dir,
        only_file,
        timeline: args.timeline,
        start: args.start,
        end: args.end,
    };
    let rmgrs: Option<Vec<String>> = args.rmgr.as_ref().map(|list| {
        list.split(',')
            .map(|r| r.trim().to_ascii_lowercase())
            .collect()
    });
    let mut stats = args.stats.map(|_| WalStats::new());
    let mut major = None;
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = String::new();
    let mut problems = 0usize;
    let mut broken_pipe = false;
    walk(&options, |event| match event {
        Event::Record(record, m) => {
            major = Some(m);
            if let Some(wanted) = &rmgrs {
                let name = RmgrId(record.rmid()).to_string().to_ascii_lowercase();
                if !wanted.contains(&name) {
                    return;
                }
            }
            if let Some(stats) = stats.as_mut() {
                stats.add(record);
                return;
            }
            if broken_pipe {
                return;
            }
            line.clear();
            write_record(m, record, &mut line);
            let result = if args.json {
                writeln!(
                    stdout,
                    "{{\"lsn\":{},\"end\":{},\"prev\":{},\"rmgr\":{},\"xid\":{},\"rec_len\":{},\"tot_len\":{},\"text\":{}}}",
                    quote(&record.lsn.to_string()),
                    quote(&record.end.to_string()),
                    quote(&record.prev().to_string()),
                    quote(&RmgrId(record.rmid()).to_string()),
                    record.xid(),
                    record.rec_len(),
                    record.total_len(),
                    quote(&line)
                )
            } else {
                writeln!(stdout, "{line}")
            };
            // `pgwalrus dump | head` is not an error.
            if result.is_err() {
                broken_pipe = true;
            }
        }
        Event::Problem(p) => {
            problems += 1;
            let _ = stdout.flush();
            let at = p.lsn.map_or_else(String::new, |l| format!(" at {l}"));
            let file = p
                .file
                .as_deref()
                .map_or_else(String::new, |f| format!(" in {f}"));
            let _ = writeln!(
                std::io::stderr().lock(),
                "pgwalrus: error{at}{file}: {}",
                p.message
            );
        }
        Event::Segment { .. } => {}
    })?;
    if let (Some(stats), Some(major)) = (stats, major) {
        let _ = stdout.write_all(
            stats
                .render(major, args.stats == Some(StatsKind::Record))
                .as_bytes(),
        );
    }
    let _ = stdout.flush();
    if problems > 0 {
        return Err(Failure::msg(
            Exit::PROBLEMS_FOUND,
            format!("{problems} problem(s) while reading the WAL"),
        ));
    }
    Ok(())
}
