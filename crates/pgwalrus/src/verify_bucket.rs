//! `pgwalrus verify s3://…` (and `dump s3://…`): every object of an object-storage archive read once — each
//! checked against the SHA-256 in its metadata on the way — into a temporary directory,
//! then the same walk as a local archive: continuity along the timelines, every page header
//! and record CRC, the `xl_prev` chain. A damaged object is named by its key (and, not being
//! written, shows as missing in the walk); the temporary copy is removed at the end.
//!
//! It needs local space for the archive (the objects as stored, compressed when they are).

use std::path::{Path, PathBuf};

use pgwalrus_archive::StdFs;
use pgwalrus_archive::durable::{self, Durability};
use pgwalrus_bucket::{Bucket, meta};
use pgwalrus_wal::names::FileName;

use crate::cli::VerifyArgs;
use crate::exit::Exit;
use crate::failure::{Failure, Outcome};

/// An archive downloaded from a bucket: a temporary directory (removed when dropped), the
/// objects that could not be used, and how many objects were read.
pub(crate) struct Downloaded {
    /// The local copy.
    pub(crate) copy: Copy,
    /// Objects that are not what they should be: (key, why). Not written to the copy.
    pub(crate) damaged: Vec<(String, String)>,
    /// Objects read.
    pub(crate) objects: usize,
}

/// Downloads the archive at `url` (each object once, checked against its SHA-256).
///
/// # Errors
/// Exit 2 when the bucket cannot be read or holds no archive; 5 for local I/O.
pub(crate) fn download_archive(
    bucket_args: &crate::cli::BucketArgs,
    url: &str,
) -> Result<Downloaded, Failure> {
    let settings = crate::receive::bucket_settings(bucket_args, url)?;
    let failed = |e: pgwalrus_bucket::Error| Failure::new(Exit::Config, e);
    let bucket = crate::archiver::open_bucket(&settings).map_err(failed)?;
    let copy = Copy::new()?;
    let runtime = crate::connection::runtime()?;
    let mut damaged = Vec::new();
    let objects = runtime.block_on(download(&bucket, copy.path(), &mut damaged))?;
    Ok(Downloaded {
        copy,
        damaged,
        objects,
    })
}

/// Runs `verify` on the bucket at `url`.
///
/// # Errors
/// Exit 1 when problems were found, 2 when the bucket could not be read.
pub fn run(args: &VerifyArgs, url: &str, quiet: bool) -> Outcome {
    let Downloaded {
        copy,
        damaged,
        objects,
    } = download_archive(&args.bucket, url)?;
    let mut stdout_lines = String::new();
    for (key, why) in &damaged {
        stdout_lines.push_str(&format!("problem: {key}: {why}\n"));
    }
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(stdout_lines.as_bytes());
    }
    let local = VerifyArgs {
        directory: copy.path().to_path_buf(),
        bucket: crate::cli::BucketArgs::default(),
        ..args.clone()
    };
    let walked = crate::verify::walk(&local, quiet)?;
    let problems = damaged.len() + walked;
    if problems == 0 {
        return Ok(());
    }
    Err(Failure::msg(
        Exit::PROBLEMS_FOUND,
        format!("{problems} problem(s) found in {url} ({objects} object(s) read once)"),
    ))
}

/// Downloads every segment and history file into `dir`; damaged objects go to `damaged`
/// (key, why) and are not written. Returns how many objects were read.
async fn download(
    bucket: &Bucket,
    dir: &Path,
    damaged: &mut Vec<(String, String)>,
) -> Result<usize, Failure> {
    let failed = |e: pgwalrus_bucket::Error| Failure::new(Exit::Config, e);
    let Some(found) = pgwalrus_bucket::archive::find(bucket, None)
        .await
        .map_err(failed)?
    else {
        return Err(Failure::msg(
            Exit::Config,
            format!("{} holds no pgwalrus archive", bucket.url()),
        ));
    };
    let (segments, strays) = pgwalrus_bucket::archive::segments(bucket, &found)
        .await
        .map_err(failed)?;
    for key in strays {
        damaged.push((
            key.to_string(),
            "not a segment name: nothing reads it".to_owned(),
        ));
    }
    let (histories, _) = bucket
        .list(&found.layout.history_dir())
        .await
        .map_err(failed)?;
    let mut keys: Vec<(pgwalrus_bucket::Key, FileName)> = Vec::new();
    for key in histories {
        match key.filename().map(|n| FileName::parse(n, found.seg_size)) {
            Some(Ok(name @ FileName::History(_))) => keys.push((key, name)),
            _ => damaged.push((key.to_string(), "not a history file name".to_owned())),
        }
    }
    keys.extend(
        segments
            .into_iter()
            .map(|o| (o.key, FileName::Segment(o.name))),
    );
    let fs = StdFs::new();
    let mut read = 0;
    for (key, name) in keys {
        let Some((body, stamp)) = bucket.get(&key).await.map_err(failed)? else {
            continue;
        };
        read += 1;
        let compression = match &stamp {
            Some(stamp) => {
                if let Err(why) = stamp.check_stored(&body) {
                    damaged.push((key.to_string(), why));
                    continue;
                }
                stamp.compression
            }
            None => meta::sniff(&body),
        };
        let local = match name {
            FileName::Segment(s) => FileName::Segment(s.with_compression(compression)),
            FileName::History(h) => FileName::History(h.with_compression(compression)),
            other => other,
        };
        durable::replace_file(&fs, &dir.join(local.to_string()), &body, Durability::NoSync)
            .map_err(|e| Failure::new(Exit::Io, e))?;
    }
    Ok(read)
}

/// The temporary copy, removed when dropped.
pub(crate) struct Copy(PathBuf);

impl Copy {
    fn new() -> Result<Copy, Failure> {
        let dir = std::env::temp_dir().join(format!("pgwalrus-verify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| {
            Failure::new(
                Exit::Io,
                anyhow::Error::new(e).context(format!("could not create \"{}\"", dir.display())),
            )
        })?;
        Ok(Copy(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
