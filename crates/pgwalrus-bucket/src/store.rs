//! The bucket as pgwalrus uses it: create-only writes whose every unclear answer is settled by
//! reading the object back, the create-only probe, the other-cluster check, and counters of
//! requests by kind (what the bucket will cost).
//!
//! `object_store` maps 412 *and* 409 to `AlreadyExists`, retries server errors, and does not
//! retry a timed-out create (it is not idempotent); a create whose first attempt committed
//! before an error comes back from the retry as "already exists". So no answer but a plain
//! success is taken at its word: everything else is followed by a HEAD, and the object's
//! stamp (or, for an object we did not write, its content) is compared with ours.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt as _, PutMode,
    PutOptions, PutPayload, RetryConfig,
};
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::layout::{Layout, parse_system_id, probe_key};
use crate::meta::{self, Stamp, hex};
use crate::settings::{BucketUrl, Resolved};

/// Requests made, by kind, and bytes moved.
#[derive(Debug, Default)]
pub struct Counters {
    /// PUT requests (creates), including conflict copies and probes.
    pub puts: AtomicU64,
    /// GET requests.
    pub gets: AtomicU64,
    /// HEAD requests.
    pub heads: AtomicU64,
    /// LIST requests.
    pub lists: AtomicU64,
    /// DELETE requests.
    pub deletes: AtomicU64,
    /// Bytes uploaded (bodies of PUTs).
    pub bytes_up: AtomicU64,
    /// Bytes downloaded (bodies of GETs).
    pub bytes_down: AtomicU64,
    /// Creates whose answer was unclear and had to be settled by reading back.
    pub reconciled: AtomicU64,
    /// Keys found holding different bytes than ours.
    pub conflicts: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// How a create ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The store accepted our create.
    New,
    /// The key already held the same WAL (our own earlier attempt, or a second archiver).
    AlreadyThere,
}

/// A bucket and prefix, with a client.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    url: BucketUrl,
    counters: Arc<Counters>,
    /// Whether the store was found to enforce create-only writes; when it does not (and
    /// single-writer mode allowed it), every create is preceded by a HEAD.
    create_only: Option<bool>,
}

/// Retries of one request by the store's client. The shipping stage retries failed rounds
/// itself (1 s doubling to 30 s), so its requests give up early and say so.
const RETRIES: usize = 4;

/// Per-request time limit. A segment of 16 MiB over a slow link fits; a larger one still
/// makes progress, since the limit applies to each request of the store's retries.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Bucket {
    /// A client for the resolved settings.
    ///
    /// # Errors
    /// [`Error::Settings`] when the store refuses the configuration.
    pub fn open(r: &Resolved) -> Result<Bucket> {
        Bucket::open_with_retries(r, RETRIES)
    }

    /// [`Bucket::open`] whose requests are retried up to `retries` times (backoff from
    /// 100 ms doubling to 15 s, within a minute): for a caller that must not give up on a
    /// store that is briefly unavailable — `restore`, which otherwise stops recovery.
    ///
    /// # Errors
    /// As for [`Bucket::open`].
    pub fn open_with_retries(r: &Resolved, retries: usize) -> Result<Bucket> {
        // reqwest takes the process's rustls provider; ring is the tree's one provider. When
        // an embedding program installed its own first, that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = builder(r, retries)?
            .build()
            .map_err(|e| Error::Settings(format!("{}: {e}", r.url)))?;
        Ok(Bucket {
            store: Arc::new(store),
            url: r.url.clone(),
            counters: Arc::new(Counters::default()),
            create_only: None,
        })
    }

    /// The archive's URL.
    pub fn url(&self) -> &BucketUrl {
        &self.url
    }

    /// The request counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Whether the store enforces create-only writes, once probed.
    pub fn create_only(&self) -> Option<bool> {
        self.create_only
    }

    /// Writes a probe object twice under the prefix: a store that enforces create-only
    /// writes refuses the second. Refuses a store that does not, unless `single_writer`.
    ///
    /// # Errors
    /// [`Error::CreateOnlyIgnored`], or the store's failure.
    pub async fn probe(&mut self, single_writer: bool) -> Result<bool> {
        let unique = format!("{}-{}", std::process::id(), crate::clock::unix_nanos());
        let key = probe_key(&self.url.prefix, &unique);
        let create = |body: &'static [u8]| {
            self.store.put_opts(
                &key,
                PutPayload::from_static(body),
                PutOptions::from(PutMode::Create),
            )
        };
        Counters::add(&self.counters.puts, 2);
        create(b"first")
            .await
            .map_err(|error| store_error("PUT", &key, error))?;
        let enforced = match create(b"second").await {
            Err(object_store::Error::AlreadyExists { .. }) => true,
            Ok(_) => false,
            Err(error) => return Err(store_error("PUT", &key, error)),
        };
        Counters::add(&self.counters.deletes, 1);
        if let Err(error) = self.store.delete(&key).await {
            warn!(key = %key, "could not remove the probe object: {error}");
        }
        self.create_only = Some(enforced);
        if !enforced && !single_writer {
            return Err(Error::CreateOnlyIgnored {
                url: self.url.to_string(),
                key: key.to_string(),
            });
        }
        if !enforced {
            warn!(
                url = %self.url,
                "the store does not enforce create-only writes; single-writer mode: every upload is checked with a HEAD first, and a second archiver on this prefix could overwrite WAL"
            );
        }
        Ok(enforced)
    }

    /// Refuses a prefix that holds another cluster's archive (one LIST, at start).
    ///
    /// # Errors
    /// [`Error::OtherCluster`] naming both identifiers, or the store's failure.
    pub async fn check_cluster(&self, layout: &Layout) -> Result<()> {
        let prefix = layout.prefix();
        Counters::add(&self.counters.lists, 1);
        let listing = self
            .store
            .list_with_delimiter(prefix.as_ref())
            .await
            .map_err(|error| store_error("LIST", &prefix.clone().unwrap_or_default(), error))?;
        for dir in listing.common_prefixes {
            let Some(name) = dir.filename() else { continue };
            if let Some(other) = parse_system_id(name)
                && other != layout.system_id()
            {
                return Err(Error::OtherCluster(format!(
                    "{} holds the archive of another cluster (system identifier {other}); this server's is {}",
                    self.url,
                    layout.system_id()
                )));
            }
        }
        Ok(())
    }

    /// Creates `key` with `body` (whose stamp is `stamp`) unless it exists: never
    /// overwrites. An existing object with the same WAL is success; one with other WAL is
    /// kept, ours is put aside under the conflicts prefix and [`Error::Conflict`] returned.
    ///
    /// # Errors
    /// [`Error::Conflict`]; [`Error::Store`] when the outcome cannot be settled (retry later).
    pub async fn create(
        &self,
        layout: &Layout,
        key: &Path,
        body: Bytes,
        stamp: &Stamp,
    ) -> Result<Created> {
        if self.create_only == Some(false) {
            // The store would let this create overwrite: look first (single-writer mode).
            if let Some(theirs) = self.read_stamp(key).await? {
                return self.settle(layout, key, body, stamp, theirs).await;
            }
        }
        Counters::add(&self.counters.puts, 1);
        Counters::add(&self.counters.bytes_up, body.len() as u64);
        let opts = PutOptions {
            mode: PutMode::Create,
            attributes: stamp.attributes(),
            ..PutOptions::default()
        };
        let error = match self
            .store
            .put_opts(key, PutPayload::from(body.clone()), opts)
            .await
        {
            Ok(_) => return Ok(Created::New),
            Err(error) => error,
        };
        // Anything else is unclear: "already exists" may be our own earlier attempt, a 409
        // of a concurrent create, or a second archiver; a timeout may have committed.
        Counters::add(&self.counters.reconciled, 1);
        debug!(key = %key, "create answered {error}; reading the object back");
        match self.read_stamp(key).await? {
            Some(theirs) => self.settle(layout, key, body, stamp, theirs).await,
            None => Err(store_error("PUT", key, error)),
        }
    }

    /// Compares what `key` holds with ours.
    async fn settle(
        &self,
        layout: &Layout,
        key: &Path,
        body: Bytes,
        ours: &Stamp,
        theirs: Stamp,
    ) -> Result<Created> {
        if theirs.wal_sha256 == ours.wal_sha256 && theirs.wal_size == ours.wal_size {
            return Ok(Created::AlreadyThere);
        }
        Counters::add(&self.counters.conflicts, 1);
        let nanos = crate::clock::unix_nanos();
        let kept_at = layout.conflict(key, nanos);
        Counters::add(&self.counters.puts, 1);
        Counters::add(&self.counters.bytes_up, body.len() as u64);
        let opts = PutOptions {
            mode: PutMode::Create,
            attributes: ours.attributes(),
            ..PutOptions::default()
        };
        if let Err(error) = self.store.put_opts(&kept_at, body.into(), opts).await {
            warn!(key = %kept_at, "could not keep our copy aside: {error}");
        }
        Err(Error::Conflict {
            key: key.to_string(),
            theirs: hex(&theirs.wal_sha256),
            ours: hex(&ours.wal_sha256),
            kept_at: kept_at.to_string(),
        })
    }

    /// The stamp of `key`, `None` when it does not exist. An object without our metadata
    /// (another tool wrote it) is read and stamped from its content.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Damaged`] for an object we cannot make sense of.
    pub async fn read_stamp(&self, key: &Path) -> Result<Option<Stamp>> {
        Counters::add(&self.counters.heads, 1);
        let head = match self
            .store
            .get_opts(
                key,
                GetOptions {
                    head: true,
                    ..GetOptions::default()
                },
            )
            .await
        {
            Ok(head) => head,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(store_error("HEAD", key, error)),
        };
        if let Some(stamp) = Stamp::from_attributes(&head.attributes)
            && stamp_matches_size(&stamp, head.meta.size)
        {
            return Ok(Some(stamp));
        }
        let Some((body, _)) = self.get(key).await? else {
            return Ok(None);
        };
        let stamp = Stamp::of(&body, meta::sniff(&body)).map_err(|why| Error::Damaged {
            key: key.to_string(),
            why,
        })?;
        Ok(Some(stamp))
    }

    /// The bytes and stamp of `key`, `None` when it does not exist.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn get(&self, key: &Path) -> Result<Option<(Bytes, Option<Stamp>)>> {
        Counters::add(&self.counters.gets, 1);
        let result = match self.store.get(key).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(store_error("GET", key, error)),
        };
        let stamp = Stamp::from_attributes(&result.attributes);
        let body = result
            .bytes()
            .await
            .map_err(|error| store_error("GET", key, error))?;
        Counters::add(&self.counters.bytes_down, body.len() as u64);
        Ok(Some((body, stamp)))
    }

    /// The store itself, for listings and batch deletes of whole archives.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// What is directly under `prefix`: the keys of its objects and the names of its
    /// sub-prefixes, each sorted (one LIST; the store pages through it).
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn list(&self, prefix: &Path) -> Result<(Vec<Path>, Vec<String>)> {
        Counters::add(&self.counters.lists, 1);
        let listing = self
            .store
            .list_with_delimiter(Some(prefix))
            .await
            .map_err(|error| store_error("LIST", prefix, error))?;
        let mut objects: Vec<Path> = listing.objects.into_iter().map(|o| o.location).collect();
        objects.sort();
        let mut dirs: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        dirs.sort();
        Ok((objects, dirs))
    }

    /// Deletes `keys`; a key already gone is not an error.
    ///
    /// # Errors
    /// [`Error::Store`] for the first that fails.
    pub async fn delete(&self, keys: &[Path]) -> Result<()> {
        for key in keys {
            Counters::add(&self.counters.deletes, 1);
            match self.store.delete(key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(store_error("DELETE", key, error)),
            }
        }
        Ok(())
    }
}

/// A stamp that disagrees with the object's size is not trusted (the metadata was copied,
/// or the object replaced by another tool).
fn stamp_matches_size(stamp: &Stamp, size: u64) -> bool {
    stamp.compression.is_some() || stamp.wal_size == size
}

fn store_error(op: &'static str, key: &Path, error: object_store::Error) -> Error {
    Error::Store {
        op,
        key: key.to_string(),
        error,
    }
}

/// `scheme://host…` with `bucket.` before the host.
fn virtual_host(endpoint: &str, bucket: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{bucket}.{rest}"),
        None => format!("{bucket}.{endpoint}"),
    }
}

/// The object store's settings for `r`, requests retried up to `retries` times.
///
/// Over HTTPS the payload is not signed (`UNSIGNED-PAYLOAD`), as the AWS SDKs do: TLS
/// already protects the body in transit, each object's stamp carries its SHA-256 for every
/// later read, and signing would hash every segment a second time (measured in
/// docs/benchmarks.md, "Object storage"). A plain `http://` endpoint keeps the signed
/// payload, the only integrity the request has there.
fn builder(r: &Resolved, retries: usize) -> Result<AmazonS3Builder> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&r.url.bucket)
        .with_region(&r.region)
        .with_virtual_hosted_style_request(r.virtual_hosted)
        .with_unsigned_payload(!r.allow_http)
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(r.allow_http)
                .with_timeout(REQUEST_TIMEOUT)
                .with_connect_timeout(CONNECT_TIMEOUT),
        )
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: retries,
            retry_timeout: Duration::from_secs(60),
        });
    if let Some(endpoint) = &r.endpoint {
        // object_store takes a virtual-hosted endpoint with the bucket already in it;
        // the AWS tools put it there themselves.
        let endpoint = if r.virtual_hosted {
            virtual_host(endpoint, &r.url.bucket)
        } else {
            endpoint.clone()
        };
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(c) = &r.credentials {
        builder = builder
            .with_access_key_id(&c.access_key_id)
            .with_secret_access_key(&c.secret_access_key);
        if let Some(token) = &c.session_token {
            builder = builder.with_token(token);
        }
    }
    for (name, value) in &r.chain {
        let key = name
            .to_ascii_lowercase()
            .parse()
            .map_err(|e: object_store::Error| Error::Settings(e.to_string()))?;
        builder = builder.with_config(key, value);
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_signed_over_plain_http_only() {
        use object_store::aws::AmazonS3ConfigKey;
        let resolved = |endpoint: Option<&str>| Resolved {
            url: BucketUrl::parse("s3://wal/db").unwrap(),
            endpoint: endpoint.map(str::to_owned),
            region: "us-east-1".to_owned(),
            virtual_hosted: endpoint.is_none(),
            allow_http: endpoint.is_some_and(|e| e.starts_with("http://")),
            credentials: None,
            chain: Vec::new(),
            single_writer: false,
        };
        for (endpoint, unsigned) in [
            (None, "true"),
            (Some("https://s3.example:9000"), "true"),
            (Some("http://127.0.0.1:9000"), "false"),
        ] {
            let b = builder(&resolved(endpoint), 0).unwrap();
            assert_eq!(
                b.get_config_value(&AmazonS3ConfigKey::UnsignedPayload)
                    .as_deref(),
                Some(unsigned),
                "{endpoint:?}"
            );
        }
    }

    #[test]
    fn a_virtual_hosted_custom_endpoint_gets_the_bucket_in_its_host() {
        assert_eq!(
            virtual_host("https://minio.example:9000", "wal"),
            "https://wal.minio.example:9000"
        );
    }
}
