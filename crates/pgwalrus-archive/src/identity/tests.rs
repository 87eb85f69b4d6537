//! Tests of the cluster guard: which files give evidence, and mismatches.

use super::*;
use crate::fs::SimFs;
use crate::resume::scan;
use crate::test_support::{
    SEG, compressed, compressed_unfinished, dir, dir_path, long_header, seg_start, sim,
};

const SYSID: u64 = 7_710_561_531_580_599_929;
const OTHER: u64 = 7_000_000_000_000_000_001;

/// A segment file of `len` bytes whose first page carries a long header for `system_id`
/// (`None`: never written, all zeros).
fn put_segment(fs: &SimFs, name: &str, segno: u64, system_id: Option<u64>, len: usize) {
    let mut content = vec![0u8; len];
    if let Some(id) = system_id {
        let h = long_header(id, SEG.bytes(), 1, seg_start(segno));
        let n = h.len().min(len);
        content[..n].copy_from_slice(&h[..n]);
    }
    fs.put_file(dir_path(name), &content);
}

fn identity_of(fs: &SimFs) -> ArchiveIdentity {
    let s = scan(fs, dir(), SEG).unwrap();
    inspect(fs, &s).unwrap()
}

const FULL: usize = 1 << 20;

#[test]
fn reads_the_newest_and_oldest_complete_segments_and_written_partials() {
    let fs = sim();
    put_segment(&fs, "000000010000000000000004", 4, Some(SYSID), FULL);
    put_segment(&fs, "000000010000000000000005", 5, Some(SYSID), FULL);
    put_segment(&fs, "000000010000000000000006", 6, Some(SYSID), FULL);
    put_segment(
        &fs,
        "000000010000000000000007.partial",
        7,
        Some(SYSID),
        FULL,
    );
    let id = identity_of(&fs);
    let seen: Vec<_> = id
        .evidence
        .iter()
        .map(|e| (e.segment.name.to_string(), e.role))
        .collect();
    assert_eq!(
        seen,
        [
            ("000000010000000000000006".to_string(), Role::NewestComplete),
            ("000000010000000000000004".to_string(), Role::OldestComplete),
            (
                "000000010000000000000007.partial".to_string(),
                Role::Partial
            ),
        ]
    );
    for e in &id.evidence {
        assert_eq!(
            e.finding,
            Finding::Identified {
                system_id: SYSID,
                seg_size: SEG.bytes(),
                magic: 0xD110,
                page_addr: e.segment.name.start_lsn(),
            }
        );
    }
    let (sysid, seg, path) = id.identified().unwrap();
    assert_eq!((sysid, seg), (SYSID, SEG.bytes()));
    assert_eq!(path, dir_path("000000010000000000000006"));
    id.check_server(SYSID, SEG).unwrap();
}

#[test]
fn unwritten_or_short_partials_give_no_evidence() {
    let fs = sim();
    put_segment(&fs, "000000010000000000000005.partial", 5, None, FULL);
    put_segment(&fs, "000000020000000000000005.partial", 5, None, 0);
    put_segment(&fs, "000000030000000000000005.partial", 5, Some(OTHER), 30);
    let id = identity_of(&fs);
    assert_eq!(id.evidence.len(), 3);
    assert!(id.evidence.iter().all(|e| e.finding == Finding::Unwritten));
    assert_eq!(id.identified(), None);
    // No evidence, so nothing to object to.
    id.check_server(SYSID, SEG).unwrap();
}

#[test]
fn a_mismatch_names_both_identifiers_and_the_file() {
    let fs = sim();
    put_segment(&fs, "000000010000000000000005", 5, Some(OTHER), FULL);
    let id = identity_of(&fs);
    let e = id.check_server(SYSID, SEG).unwrap_err();
    assert!(
        matches!(&e, Error::SystemIdMismatch { archive_system_id: OTHER, server_system_id: SYSID, path }
            if *path == dir_path("000000010000000000000005")),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains(&OTHER.to_string()), "{msg}");
    assert!(msg.contains(&SYSID.to_string()), "{msg}");
    assert!(msg.contains("000000010000000000000005"), "{msg}");
    assert!(e.is_cluster_mismatch());
}

#[test]
fn only_the_oldest_segment_may_betray_the_mixed_archive() {
    let fs = sim();
    put_segment(&fs, "000000010000000000000004", 4, Some(OTHER), FULL);
    put_segment(&fs, "000000010000000000000005", 5, Some(SYSID), FULL);
    put_segment(&fs, "000000010000000000000006", 6, Some(SYSID), FULL);
    let e = identity_of(&fs).check_server(SYSID, SEG).unwrap_err();
    assert_eq!(
        e.path(),
        Some(dir_path("000000010000000000000004").as_path())
    );
}

#[test]
fn a_partial_from_another_cluster_is_a_mismatch() {
    let fs = sim();
    put_segment(&fs, "000000010000000000000005", 5, Some(SYSID), FULL);
    put_segment(
        &fs,
        "000000010000000000000006.partial",
        6,
        Some(OTHER),
        FULL,
    );
    let e = identity_of(&fs).check_server(SYSID, SEG).unwrap_err();
    assert_eq!(
        e.path(),
        Some(dir_path("000000010000000000000006.partial").as_path())
    );
}

#[test]
fn segment_size_mismatch_is_reported() {
    let fs = sim();
    let mut content = vec![0u8; FULL];
    let h = long_header(SYSID, 16 << 20, 1, seg_start(5));
    content[..h.len()].copy_from_slice(&h);
    fs.put_file(dir_path("000000010000000000000005"), &content);
    let e = identity_of(&fs).check_server(SYSID, SEG).unwrap_err();
    assert!(
        matches!(e, Error::SegSizeMismatch { archive_seg_size, server_seg_size, .. }
            if archive_seg_size == 16 << 20 && server_seg_size == SEG),
        "{e}"
    );
    assert!(e.to_string().contains("16777216"), "{e}");
}

#[test]
fn compressed_files_are_read_too() {
    // The first page of segment `segno`, of system `id`.
    let header = |id, segno| {
        let mut seg = vec![0u8; FULL];
        seg[..40].copy_from_slice(&long_header(id, SEG.bytes(), 1, seg_start(segno)));
        seg
    };
    let fs = sim();
    fs.put_file(
        dir_path("000000010000000000000005.zst"),
        &compressed(Compression::Zstd, &header(SYSID, 5)),
    );
    // A crash cut this one after its first page: still evidence.
    fs.put_file(
        dir_path("000000010000000000000006.gz.partial"),
        &compressed_unfinished(Compression::Gzip, &header(SYSID, 6)[..8192]),
    );
    // Cut before 40 bytes: no evidence.
    fs.put_file(
        dir_path("000000010000000000000007.lz4.partial"),
        &compressed_unfinished(Compression::Lz4, &header(SYSID, 7)[..20]),
    );
    let id = identity_of(&fs);
    let findings: Vec<_> = id.evidence.iter().map(|e| e.finding.clone()).collect();
    let identified = |segno| Finding::Identified {
        system_id: SYSID,
        seg_size: SEG.bytes(),
        magic: 0xD110,
        page_addr: seg_start(segno),
    };
    assert_eq!(findings, [identified(5), identified(6), Finding::Unwritten]);
    id.check_server(SYSID, SEG).unwrap();
    let e = id.check_server(OTHER, SEG).unwrap_err();
    assert!(matches!(e, Error::SystemIdMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains("000000010000000000000005.zst"),
        "{e}"
    );

    // Another cluster's WAL in a compressed partial of a pg_receivewal directory.
    let fs = sim();
    fs.put_file(
        dir_path("000000010000000000000006.lz4.partial"),
        &compressed(Compression::Lz4, &header(OTHER, 6)[..4096]),
    );
    let e = identity_of(&fs).check_server(SYSID, SEG).unwrap_err();
    assert!(e.is_cluster_mismatch(), "{e}");
}

#[test]
fn a_complete_compressed_segment_that_does_not_decompress_stops() {
    let fs = sim();
    fs.put_file(
        dir_path("000000010000000000000004.gz"),
        b"\x1f\x8b\x08\x00garbage garbage garbage garbage garbage",
    );
    fs.put_file(dir_path("000000010000000000000005"), &{
        let mut seg = vec![0u8; FULL];
        seg[..40].copy_from_slice(&long_header(SYSID, SEG.bytes(), 1, seg_start(5)));
        seg
    });
    let id = identity_of(&fs);
    assert!(
        matches!(
            &id.evidence[1].finding,
            Finding::NotWal(HeaderProblem::Undecodable {
                compression: Compression::Gzip,
                ..
            })
        ),
        "{:?}",
        id.evidence
    );
    let e = id.check_server(SYSID, SEG).unwrap_err();
    assert!(matches!(e, Error::NotWalHeader { .. }), "{e}");
    assert!(e.to_string().contains("does not decompress (gzip)"), "{e}");
}

#[test]
fn garbage_at_the_start_of_a_segment_stops_complete_or_partial() {
    let garbage = {
        let mut g = vec![0u8; FULL];
        g[..40].copy_from_slice(&[0xFF; 40]);
        g
    };
    let fs = sim();
    fs.put_file(dir_path("000000010000000000000005"), &garbage);
    let e = identity_of(&fs).check_server(SYSID, SEG).unwrap_err();
    assert!(matches!(e, Error::NotWalHeader { .. }), "{e}");

    let fs = sim();
    fs.put_file(dir_path("000000010000000000000005.partial"), &garbage);
    let id = identity_of(&fs);
    assert!(matches!(id.evidence[0].finding, Finding::NotWal(_)));
    // Resuming into it would leave the garbage behind the WAL streamed again.
    let e = id.check_server(SYSID, SEG).unwrap_err();
    assert!(matches!(e, Error::NotWalHeader { .. }), "{e}");
    assert!(
        e.to_string().contains("000000010000000000000005.partial"),
        "{e}"
    );
}

#[test]
fn a_segment_whose_first_page_is_of_another_segment_stops() {
    // This cluster's long header, but the page of segment 4 under the name of segment 5.
    for name in [
        "000000010000000000000005",
        "000000010000000000000005.partial",
    ] {
        let fs = sim();
        put_segment(&fs, name, 4, Some(SYSID), FULL);
        fs.put_file(dir_path(name), &{
            let mut c = vec![0u8; FULL];
            let h = long_header(SYSID, SEG.bytes(), 1, seg_start(4));
            c[..h.len()].copy_from_slice(&h);
            c
        });
        let e = identity_of(&fs).check_server(SYSID, SEG).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotWalHeader {
                    reason: HeaderProblem::OtherSegment { .. },
                    ..
                }
            ),
            "{name}: {e}"
        );
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn judging_headers() {
    let good = long_header(SYSID, SEG.bytes(), 1, seg_start(5));
    assert!(matches!(
        judge(&good),
        Finding::Identified {
            system_id: SYSID,
            ..
        }
    ));
    assert_eq!(judge(&good[..39]), Finding::Unwritten);
    assert_eq!(judge(&[0; 40]), Finding::Unwritten);
    let mut short = good.clone();
    short[2] = 0; // no long-header flag
    assert_eq!(judge(&short), Finding::NotWal(HeaderProblem::NoLongHeader));
    let mut torn = good.clone();
    torn[24..40].fill(0);
    assert_eq!(judge(&torn), Finding::NotWal(HeaderProblem::ZeroFields));
}

#[test]
fn a_torn_long_header_of_a_partial_is_no_evidence_but_stops_a_complete_segment() {
    let torn = {
        let mut c = vec![0u8; FULL];
        let h = long_header(SYSID, SEG.bytes(), 1, seg_start(5));
        c[..24].copy_from_slice(&h[..24]);
        c
    };
    let fs = sim();
    fs.put_file(dir_path("000000010000000000000005.partial"), &torn);
    identity_of(&fs).check_server(SYSID, SEG).unwrap();
    let fs = sim();
    fs.put_file(dir_path("000000010000000000000005"), &torn);
    let e = identity_of(&fs).check_server(SYSID, SEG).unwrap_err();
    assert!(matches!(e, Error::NotWalHeader { .. }), "{e}");
}
