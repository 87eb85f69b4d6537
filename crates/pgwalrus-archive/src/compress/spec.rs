//! [`CompressionSpec`]: what `-Z` / `--compress` asks for, in pg_receivewal's syntax, parsed
//! and validated in this one place.
//!
//! # Grammar (PostgreSQL 15's `pg_receivewal --compress`)
//!
//! ```text
//! spec    = INTEGER | METHOD [ ":" detail ]
//! METHOD  = none | gzip | lz4 | zstd
//! detail  = INTEGER | option { "," option }
//! option  = "level=" INTEGER | "workers=" INTEGER
//! ```
//!
//! * A bare integer is a gzip level, except `0`, which means no compression (the pre-15
//!   meaning of `-Z N`, which pg_receivewal keeps).
//! * Levels: gzip 1–9 (or `-1`, zlib's default, which is 6); lz4 1–12 (or `0`, the fast
//!   mode); zstd from `ZSTD_minCLevel()` to `ZSTD_maxCLevel()` (-131072 to 22; pgwalrus's
//!   default is 1, not zstd's own 3: see [`ZSTD_DEFAULT`]); `none` takes no level but `0`.
//! * `workers` is valid PostgreSQL syntax for zstd only; pgwalrus compresses with one thread
//!   and refuses it rather than ignore it.
//!
//! Messages follow PostgreSQL's where it has one (`unrecognized compression algorithm`,
//! `expects a compression level between 1 and 9`, …), so an operator switching tools reads
//! the same words.

use std::fmt;
use std::str::FromStr;

use pgwalrus_wal::names::Compression;

/// gzip's levels, and zlib's "default" marker, which PostgreSQL accepts.
const GZIP_LEVELS: (i32, i32, i32) = (1, 9, -1);
/// zlib's default level: what `-1` means.
const GZIP_DEFAULT: i32 = 6;
/// lz4's levels; 0 is the fast mode and PostgreSQL's default.
const LZ4_LEVELS: (i32, i32, i32) = (1, 12, 0);
/// The zstd level `-Z zstd` means. Not the library's `ZSTD_CLEVEL_DEFAULT` (3): on WAL,
/// level 1 compresses about 1.8 times as fast, and its output is still smaller than gzip's
/// at its default level — on heap inserts of text even smaller than level 3's (0.24 vs
/// 0.27 of the WAL), on pgbench's WAL 14% larger than level 3's (the project's
/// `docs/benchmarks.md`, "compression vs pg_receivewal"). WAL is compressed as it streams,
/// so the default favours speed; `zstd:level=N` picks any other level.
pub const ZSTD_DEFAULT: i32 = 1;

/// A compression method and level for the segments pgwalrus writes: `none`, or gzip, lz4
/// or zstd at a level. Always valid: the level is in the method's range.
///
/// ```
/// use pgwalrus_archive::compress::CompressionSpec;
/// use pgwalrus_wal::names::Compression;
///
/// let spec: CompressionSpec = "zstd:level=19".parse()?;
/// assert_eq!((spec.method(), spec.effective_level()), (Some(Compression::Zstd), 19));
/// assert_eq!("5".parse::<CompressionSpec>()?.method(), Some(Compression::Gzip));
/// assert_eq!("0".parse::<CompressionSpec>()?, CompressionSpec::NONE);
/// assert!("gzip:10".parse::<CompressionSpec>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CompressionSpec {
    method: Option<Compression>,
    level: Option<i32>,
}

/// Why a compression specification was refused. Messages are PostgreSQL's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Nothing was given.
    #[error("empty compression specification: expected none, gzip, lz4 or zstd")]
    Empty,
    /// The method is not one of `none`, `gzip`, `lz4`, `zstd`.
    #[error("unrecognized compression algorithm: \"{0}\" (expected none, gzip, lz4 or zstd)")]
    UnknownMethod(String),
    /// An empty entry in the option list (`gzip:`, `zstd:level=3,`).
    #[error("found empty string where a compression option was expected")]
    EmptyOption,
    /// An option other than `level` or `workers`.
    #[error("unrecognized compression option: \"{0}\"")]
    UnknownOption(String),
    /// `level` or `workers` without `=VALUE`.
    #[error("compression option \"{0}\" requires a value")]
    MissingValue(&'static str),
    /// A value that is not an integer.
    #[error("value for compression option \"{option}\" must be an integer, not \"{value}\"")]
    NotAnInteger {
        /// The option.
        option: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A level outside the method's range.
    #[error(
        "compression algorithm \"{method}\" expects a compression level between {min} and {max} (default at {default}), not {level}"
    )]
    LevelOutOfRange {
        /// The method.
        method: Compression,
        /// The rejected level.
        level: i64,
        /// The lowest level.
        min: i32,
        /// The highest level.
        max: i32,
        /// The default level's marker, also accepted.
        default: i32,
    },
    /// `none` with a level other than 0.
    #[error("compression algorithm \"none\" does not accept a compression level")]
    LevelWithoutMethod,
    /// `workers` for a method that has none.
    #[error("compression algorithm \"{0}\" does not accept a worker count")]
    WorkersNotAccepted(Compression),
    /// `workers` for zstd: valid PostgreSQL syntax, but pgwalrus compresses on one thread.
    #[error("pgwalrus compresses zstd on one thread and does not support the \"workers\" option")]
    WorkersUnsupported,
}

impl CompressionSpec {
    /// No compression.
    pub const NONE: CompressionSpec = CompressionSpec {
        method: None,
        level: None,
    };

    /// A method at its default level.
    pub const fn default_for(method: Compression) -> CompressionSpec {
        CompressionSpec {
            method: Some(method),
            level: None,
        }
    }

    /// A method (`None` for no compression) at a level (`None` for the default).
    ///
    /// # Errors
    ///
    /// [`SpecError::LevelOutOfRange`] for a level outside the method's range;
    /// [`SpecError::LevelWithoutMethod`] for a level other than 0 without a method.
    pub fn new(method: Option<Compression>, level: Option<i32>) -> Result<Self, SpecError> {
        let Some(method) = method else {
            return match level {
                None | Some(0) => Ok(CompressionSpec::NONE),
                Some(_) => Err(SpecError::LevelWithoutMethod),
            };
        };
        if let Some(level) = level {
            let (min, max, default) = levels(method);
            if (level < min || level > max) && level != default {
                return Err(SpecError::LevelOutOfRange {
                    method,
                    level: i64::from(level),
                    min,
                    max,
                    default,
                });
            }
        }
        Ok(CompressionSpec {
            method: Some(method),
            level,
        })
    }

    /// The method, or `None` for no compression.
    pub const fn method(&self) -> Option<Compression> {
        self.method
    }

    /// The level given explicitly, if any.
    pub const fn level(&self) -> Option<i32> {
        self.level
    }

    /// The level the compressor uses: the given one, else the method's default (gzip 6,
    /// lz4 0, zstd 3); 0 without a method.
    pub fn effective_level(&self) -> i32 {
        match self.method {
            None => 0,
            Some(Compression::Gzip) => match self.level {
                None | Some(-1) => GZIP_DEFAULT,
                Some(level) => level,
            },
            Some(Compression::Lz4) => self.level.unwrap_or(LZ4_LEVELS.2),
            Some(Compression::Zstd) => self.level.unwrap_or(ZSTD_DEFAULT),
        }
    }

    /// `(lowest, highest, default marker)` of a method's levels, as PostgreSQL checks them.
    pub fn level_range(method: Compression) -> (i32, i32, i32) {
        levels(method)
    }
}

fn levels(method: Compression) -> (i32, i32, i32) {
    match method {
        Compression::Gzip => GZIP_LEVELS,
        Compression::Lz4 => LZ4_LEVELS,
        Compression::Zstd => {
            let range = zstd::compression_level_range();
            (*range.start(), *range.end(), ZSTD_DEFAULT)
        }
    }
}

/// An optionally signed decimal integer making up the whole text, as `strtol` reads it:
/// `None` when the text is not one, `Some(Err(saturated))` when it does not fit an `i32`.
fn integer(text: &str) -> Option<Result<i32, i64>> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match text.parse::<i32>() {
        Ok(n) => Ok(n),
        // Saturate like strtol; the level check then names a value out of range.
        Err(_) => Err(if text.starts_with('-') {
            i64::MIN
        } else {
            i64::MAX
        }),
    })
}

fn out_of_range(method: Compression, level: i64) -> SpecError {
    let (min, max, default) = levels(method);
    SpecError::LevelOutOfRange {
        method,
        level,
        min,
        max,
        default,
    }
}

/// The level a detail string gives (`9`, `level=9`, `level=3,workers=2`), if any.
fn detail_level(method: Option<Compression>, detail: &str) -> Result<Option<i32>, SpecError> {
    if let Some(level) = integer(detail) {
        return match (level, method) {
            (Ok(level), _) => Ok(Some(level)),
            (Err(_), None) => Err(SpecError::LevelWithoutMethod),
            (Err(level), Some(method)) => Err(out_of_range(method, level)),
        };
    }
    let mut level = None;
    let mut workers = false;
    for entry in detail.split(',') {
        let (keyword, value) = match entry.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (entry, None),
        };
        let option = match keyword {
            "" => return Err(SpecError::EmptyOption),
            "level" => "level",
            "workers" => "workers",
            other => return Err(SpecError::UnknownOption(other.to_owned())),
        };
        let value = value.ok_or(SpecError::MissingValue(option))?;
        let number = integer(value).ok_or_else(|| SpecError::NotAnInteger {
            option,
            value: value.to_owned(),
        })?;
        if option == "workers" {
            workers = true;
            continue;
        }
        level = Some(match (number, method) {
            (Ok(n), _) => n,
            (Err(_), None) => return Err(SpecError::LevelWithoutMethod),
            (Err(n), Some(method)) => return Err(out_of_range(method, n)),
        });
    }
    // PostgreSQL checks the level before the worker count.
    CompressionSpec::new(method, level)?;
    if workers {
        return Err(match method {
            Some(Compression::Zstd) => SpecError::WorkersUnsupported,
            Some(other) => SpecError::WorkersNotAccepted(other),
            None => SpecError::LevelWithoutMethod,
        });
    }
    Ok(level)
}

impl FromStr for CompressionSpec {
    type Err = SpecError;

    /// Parses pg_receivewal's `--compress` syntax; see the [module documentation](self).
    fn from_str(text: &str) -> Result<Self, SpecError> {
        if text.is_empty() {
            return Err(SpecError::Empty);
        }
        if let Some(level) = integer(text) {
            return match level {
                Ok(0) => Ok(CompressionSpec::NONE),
                Ok(level) => CompressionSpec::new(Some(Compression::Gzip), Some(level)),
                Err(level) => Err(out_of_range(Compression::Gzip, level)),
            };
        }
        let (name, detail) = match text.split_once(':') {
            Some((name, detail)) => (name, Some(detail)),
            None => (text, None),
        };
        let method = match name {
            "none" => None,
            other => Some(
                other
                    .parse::<Compression>()
                    .map_err(|_| SpecError::UnknownMethod(other.to_owned()))?,
            ),
        };
        let level = match detail {
            Some(detail) => detail_level(method, detail)?,
            None => None,
        };
        CompressionSpec::new(method, level)
    }
}

impl fmt::Display for CompressionSpec {
    /// `none`, `gzip`, `gzip:9`, `zstd:19`: text [`FromStr`] reads back as the same spec.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.method, self.level) {
            (None, _) => f.write_str("none"),
            (Some(method), None) => f.write_str(method.as_str()),
            (Some(method), Some(level)) => write!(f, "{method}:{level}"),
        }
    }
}
