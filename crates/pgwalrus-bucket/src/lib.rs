//! The object-storage archive of pgwalrus: WAL made durable locally first, then shipped to
//! an S3-compatible bucket with create-only writes that trust no unclear answer.
//!
//! * [`settings`] — `s3://BUCKET/PREFIX` and the rest, resolved the way the AWS tools do.
//! * [`layout`] — every key computed from a WAL file name and the system identifier.
//! * [`meta`] — the [`Stamp`] each object carries (WAL SHA-256 and size, compression, LSNs).
//! * [`store`] — [`Bucket`]: create-only uploads settled by reading back, the create-only
//!   probe, the other-cluster check, request counters.
//! * [`ship`] — [`Shipper`]: the stage that uploads completed segments, history files and
//!   chunks of the open segment from the spool, and persists the shipped position.
//! * [`archive`] — which cluster a prefix holds, its complete segments, retention with
//!   batch deletes.
//! * [`partial`] — the open segment rebuilt from its chunks; an empty spool prepared from
//!   the bucket alone.
//!
//! The dependency tree keeps one TLS stack and one crypto provider: `object_store`'s S3
//! client over reqwest on rustls with ring, the provider the PostgreSQL client already uses.

pub mod archive;
mod clock;
pub mod error;
pub mod layout;
pub mod meta;
pub mod partial;
pub mod settings;
pub mod ship;
pub mod store;

pub use error::{Error, Result};
pub use layout::Layout;
pub use meta::Stamp;
/// An object's key.
pub use object_store::path::Path as Key;
pub use settings::{AddressingStyle, BucketSettings, BucketUrl, ProcessEnv};
pub use ship::{Cluster, ShipSettings, ShipState, ShipStatus, Shipper};
pub use store::{Bucket, Created};
