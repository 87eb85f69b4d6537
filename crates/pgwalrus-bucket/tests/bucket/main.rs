//! The bucket against a real S3 server (`s3s-fs`, which enforces create-only writes): the
//! probe, create-only uploads settled by reading back, conflicts kept aside, the
//! other-cluster check, and the shipping stage over a spool.

use bytes::Bytes;
use pgwalrus_archive::Durability;
use pgwalrus_bucket::settings::AwsEnv;
use pgwalrus_bucket::{
    Bucket, BucketSettings, BucketUrl, Cluster, Created, Error, Layout, ShipSettings, ShipState,
    Shipper, Stamp,
};
use pgwalrus_testkit::{S3Server, TempDir};
use pgwalrus_wal::WalSegSize;
use pgwalrus_wal::names::SegmentName;
use pgwalrus_wal::{SegNo, TimeLineId};
use std::path::PathBuf;
use std::time::Duration;

struct Env(Vec<(&'static str, String)>);

impl AwsEnv for Env {
    fn var(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
    fn read_file(&self, _: &std::path::Path) -> std::io::Result<Option<String>> {
        Ok(None)
    }
    fn home_dir(&self) -> Option<PathBuf> {
        None
    }
}

fn bucket(server: &S3Server, prefix: &str) -> Bucket {
    let settings = BucketSettings::new(BucketUrl::parse(&server.url(prefix)).unwrap());
    Bucket::open(&settings.resolve(&Env(server.env())).unwrap()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn segment(segno: u64) -> SegmentName {
    SegmentName::new(
        TimeLineId::new(1).unwrap(),
        SegNo(segno),
        WalSegSize::DEFAULT,
    )
    .unwrap()
}

#[test]
fn s3s_fs_enforces_create_only_writes_and_the_probe_sees_it() {
    let server = S3Server::start("walrus");
    let mut b = bucket(&server, "probe");
    let enforced = runtime().block_on(b.probe(false)).unwrap();
    assert!(enforced);
    assert_eq!(b.create_only(), Some(true));
    assert!(
        !server
            .bucket_dir()
            .join("probe/.pgwalrus-probe")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()),
        "the probe object is removed"
    );
}

#[test]
fn a_create_never_overwrites_and_settles_every_answer_by_content() {
    let server = S3Server::start("walrus");
    let b = bucket(&server, "p");
    let layout = Layout::new("p", 42);
    let key = layout.segment(segment(7));
    let ours = Bytes::from(vec![1u8; 4096]);
    let stamp = Stamp::of(&ours, None).unwrap();
    let rt = runtime();
    assert_eq!(
        rt.block_on(b.create(&layout, &key, ours.clone(), &stamp))
            .unwrap(),
        Created::New
    );
    // The same content again (a retry, or a second archiver): success, nothing rewritten.
    assert_eq!(
        rt.block_on(b.create(&layout, &key, ours.clone(), &stamp))
            .unwrap(),
        Created::AlreadyThere
    );
    // Different content under the same key: refused, ours kept aside, theirs untouched.
    let other = Bytes::from(vec![2u8; 4096]);
    let other_stamp = Stamp::of(&other, None).unwrap();
    let err = rt
        .block_on(b.create(&layout, &key, other.clone(), &other_stamp))
        .unwrap_err();
    let Error::Conflict { kept_at, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        kept_at.starts_with("p/42/conflicts/wal/000000010000000000000007."),
        "{kept_at}"
    );
    assert_eq!(
        std::fs::read(server.object_path(key.as_ref())).unwrap(),
        ours
    );
    assert_eq!(std::fs::read(server.object_path(kept_at)).unwrap(), other);
    assert!(err.is_permanent() && err.is_archive_mismatch());
    let c = b.counters();
    assert_eq!(c.conflicts.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn an_object_another_tool_wrote_is_compared_by_its_content() {
    let server = S3Server::start("walrus");
    let b = bucket(&server, "p");
    let layout = Layout::new("p", 42);
    let key = layout.segment(segment(9));
    let ours = Bytes::from(vec![5u8; 8192]);
    let path = server.object_path(key.as_ref());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &ours).unwrap();
    let stamp = Stamp::of(&ours, None).unwrap();
    assert_eq!(
        runtime()
            .block_on(b.create(&layout, &key, ours, &stamp))
            .unwrap(),
        Created::AlreadyThere
    );
}

#[test]
fn a_prefix_holding_another_clusters_archive_is_refused() {
    let server = S3Server::start("walrus");
    let b = bucket(&server, "fleet/db1");
    std::fs::create_dir_all(server.bucket_dir().join("fleet/db1/1111/wal")).unwrap();
    std::fs::write(server.bucket_dir().join("fleet/db1/1111/wal/x"), b"x").unwrap();
    let rt = runtime();
    let err = rt
        .block_on(b.check_cluster(&Layout::new("fleet/db1", 2222)))
        .unwrap_err();
    assert!(matches!(err, Error::OtherCluster(_)), "{err}");
    assert!(err.to_string().contains("1111"), "{err}");
    rt.block_on(b.check_cluster(&Layout::new("fleet/db1", 1111)))
        .unwrap();
}

#[test]
fn the_shipper_uploads_completed_segments_and_histories_and_persists_its_position() {
    let server = S3Server::start("walrus");
    let spool = TempDir::new("spool");
    let seg = vec![3u8; WalSegSize::DEFAULT.bytes() as usize];
    std::fs::write(spool.path().join("000000010000000000000001"), &seg).unwrap();
    std::fs::write(spool.path().join("000000010000000000000002"), &seg).unwrap();
    std::fs::write(spool.path().join("000000010000000000000003.partial"), &seg).unwrap();
    std::fs::write(
        spool.path().join("00000002.history"),
        b"1\t0/3000000\tno recovery target specified\n",
    )
    .unwrap();
    let cluster = Cluster {
        system_id: 4242,
        seg_size: WalSegSize::DEFAULT,
    };
    let settings = ShipSettings {
        spool: spool.path().to_path_buf(),
        durability: Durability::Fsync,
        single_writer: false,
        poll: Duration::from_millis(100),
        partial_interval: None,
    };
    let rt = runtime();
    let mut shipper = Shipper::new(bucket(&server, "a"), cluster, settings.clone());
    let status = shipper.status();
    let (stop_tx, stop) = tokio::sync::watch::channel(true);
    rt.block_on(async {
        shipper.prepare().await.unwrap();
        shipper.run(stop).await.unwrap();
    });
    drop(stop_tx);
    let s = status.borrow().clone();
    assert_eq!(s.state, ShipState::Stopped);
    assert_eq!(
        s.shipped_segment.as_deref(),
        Some("000000010000000000000002")
    );
    assert_eq!(s.uploads, 3, "two segments and a history");
    let root = server.bucket_dir().join("a/4242");
    assert_eq!(
        std::fs::read(root.join("wal/000000010000000000000001")).unwrap(),
        seg
    );
    assert!(root.join("history/00000002.history").is_file());
    assert!(!root.join("wal/000000010000000000000003.partial").exists());
    assert!(root.join("archive.json").is_file());
    let state = std::fs::read_to_string(spool.path().join("pgwalrus.shipped")).unwrap();
    assert!(state.contains("000000010000000000000002"), "{state}");

    // A second stage with the state file lost re-ships: everything is already there.
    std::fs::remove_file(spool.path().join("pgwalrus.shipped")).unwrap();
    let mut again = Shipper::new(bucket(&server, "a"), cluster, settings);
    let status = again.status();
    let (_stop_tx, stop) = tokio::sync::watch::channel(true);
    rt.block_on(async {
        again.prepare().await.unwrap();
        again.run(stop).await.unwrap();
    });
    let s = status.borrow().clone();
    assert_eq!((s.uploads, s.already_there, s.conflicts), (0, 3, 0));
}

#[test]
fn the_open_segment_goes_up_in_chunks_comes_back_whole_and_its_chunks_go_when_it_completes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let server = S3Server::start("walrus");
    let spool = TempDir::new("spool");
    let seg_len = WalSegSize::DEFAULT.bytes() as usize;
    let mut content: Vec<u8> = (0..seg_len).map(|i| (i % 251) as u8).collect();
    content[40_000..].fill(0);
    let open = segment(1);
    std::fs::write(spool.path().join(open.partial().to_string()), &content).unwrap();
    let cluster = Cluster {
        system_id: 77,
        seg_size: WalSegSize::DEFAULT,
    };
    let settings = ShipSettings {
        spool: spool.path().to_path_buf(),
        durability: Durability::Fsync,
        single_writer: false,
        poll: Duration::from_millis(10),
        partial_interval: Some(Duration::ZERO),
    };
    let durable = Arc::new(AtomicU64::new(open.start_lsn().0 + 10_000));
    let seen = Arc::clone(&durable);
    let mut shipper = Shipper::new(bucket(&server, "c"), cluster, settings).with_durable_end(
        Box::new(move || {
            Some((
                TimeLineId::new(1).unwrap(),
                pgwalrus_wal::Lsn(seen.load(Ordering::Relaxed)),
            ))
        }),
    );
    let status = shipper.status();
    let rt = runtime();
    let once = |shipper: &mut Shipper| {
        let (_tx, stop) = tokio::sync::watch::channel(true);
        rt.block_on(shipper.run(stop)).unwrap();
    };
    rt.block_on(shipper.prepare()).unwrap();
    once(&mut shipper);
    durable.store(open.start_lsn().0 + 40_000, Ordering::Relaxed);
    once(&mut shipper);
    once(&mut shipper); // nothing new: no third chunk
    assert_eq!(status.borrow().chunks, 2);
    assert_eq!(
        status.borrow().partial_shipped_lsn,
        Some(pgwalrus_wal::Lsn(open.start_lsn().0 + 40_000))
    );

    let layout = Layout::new("c", 77);
    let b = bucket(&server, "c");
    let assembled = rt
        .block_on(pgwalrus_bucket::partial::assemble(&b, &layout, open))
        .unwrap()
        .unwrap();
    assert_eq!(assembled.bytes, content[..40_000]);
    assert_eq!(assembled.keys.len(), 2);

    // A new machine with an empty spool: the open segment comes back as a .partial.
    let fresh = TempDir::new("fresh");
    let hydrated = rt
        .block_on(pgwalrus_bucket::partial::hydrate(
            &b,
            fresh.path(),
            Durability::Fsync,
        ))
        .unwrap()
        .unwrap();
    assert_eq!(hydrated.partial_bytes, Some(40_000));
    let back = std::fs::read(fresh.path().join(open.partial().to_string())).unwrap();
    assert_eq!(back, content, "rebuilt and zero-padded to a segment");

    // The segment completes: it goes up whole and its chunks are removed.
    std::fs::remove_file(spool.path().join(open.partial().to_string())).unwrap();
    std::fs::write(spool.path().join(open.to_string()), &content).unwrap();
    once(&mut shipper);
    let chunk_dir = server
        .bucket_dir()
        .join("c/77/partial")
        .join(open.to_string());
    let left = std::fs::read_dir(&chunk_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "chunks left in {}", chunk_dir.display());
    assert_eq!(
        std::fs::read(server.bucket_dir().join("c/77/wal").join(open.to_string())).unwrap(),
        content
    );
}
