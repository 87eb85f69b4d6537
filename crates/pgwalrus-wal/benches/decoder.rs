//! Decoder and CRC-32C throughput on synthetic WAL laid out by the crate's test writer.
//!
//! The WAL is one 16 MiB segment of a realistic mix, close to what `pgbench` writes: mostly
//! small heap-like records (one block reference with a little data, short main data),
//! commit-like records (main data only), a full-page image every fiftieth record (records
//! crossing pages), and whatever crosses page boundaries by position. Throughput is WAL
//! bytes per second.
//!
//! * `decoder/check_borrowed` — what `pgwalrus verify` does: [`WalDecoder::feed_borrowed`]
//!   in 256 KiB pieces and [`BorrowedFeed::next_checked`](pgwalrus_wal::BorrowedFeed),
//!   every check made, no record built;
//! * `decoder/records_owned` — what `pgwalrus dump` does: [`WalDecoder::feed`] and
//!   [`WalDecoder::next`], an owned [`Record`](pgwalrus_wal::Record) per record;
//! * `crc32c/*` — [`record_crc`] on records of typical sizes, and [`crc32c`] on a page.
//!
//! Run with `cargo bench -p pgwalrus-wal --features testutil`.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pgwalrus_wal::crc::{crc32c, record_crc};
use pgwalrus_wal::testutil::{Body, Image, WalWriter, rel};
use pgwalrus_wal::{Expectations, Lsn, PgMajor, WalDecoder, WalSegSize};

const START: Lsn = Lsn(0x0100_0000);
const CHUNK: usize = 256 << 10;

/// A small deterministic generator (xorshift), so every run decodes the same WAL.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One segment of the mix described in the module docs, ending with a switch record.
fn segment() -> (Vec<u8>, usize) {
    let seg = WalSegSize::DEFAULT;
    let mut w = WalWriter::new(PgMajor::V15, seg, START);
    let mut rng = Rng(0x5eed_cafe);
    let mut records = 0;
    let end = START.0 + seg.as_u64() - 64 * 1024;
    while w.pos().0 < end {
        let kind = rng.below(100);
        let body = if kind < 2 {
            // A full-page image with a hole, as the first change to a page after a
            // checkpoint logs it.
            let len = 8192 - 200 - rng.below(2000) as usize;
            let image = Image {
                info: 0x01 | 0x02,
                hole_offset: 200,
                hole_length: None,
                bytes: vec![0x5A; len],
            };
            Body::new()
                .block(
                    0,
                    0,
                    Some(rel(5, 16_384)),
                    rng.below(10_000) as u32,
                    Some(image),
                    &[],
                )
                .main(&[1, 2, 3])
                .build()
        } else if kind < 30 {
            // A commit: main data only.
            let main = vec![7u8; 24 + rng.below(16) as usize];
            Body::new().main(&main).build()
        } else {
            // A heap insert or update: one block, a tuple's worth of data, short main data.
            let data = vec![3u8; 20 + rng.below(60) as usize];
            Body::new()
                .block(
                    0,
                    0,
                    Some(rel(5, 16_384)),
                    rng.below(10_000) as u32,
                    None,
                    &data,
                )
                .main(&[0, 1, 2])
                .build()
        };
        w.record(10, 0x00, 1000 + records as u32, &body);
        records += 1;
    }
    w.switch();
    records += 1;
    (w.out, records)
}

fn decoder() -> WalDecoder {
    WalDecoder::new(START, WalSegSize::DEFAULT, Expectations::default()).expect("page aligned")
}

fn bench_decoder(c: &mut Criterion) {
    let (wal, records) = segment();
    let mut group = c.benchmark_group("decoder");
    group.throughput(Throughput::Bytes(wal.len() as u64));
    group.sample_size(20);
    group.bench_function("check_borrowed", |b| {
        b.iter(|| {
            let mut dec = decoder();
            let mut n = 0;
            for chunk in wal.chunks(CHUNK) {
                let mut input = dec.feed_borrowed(chunk);
                while let Some(record) = input.next_checked().expect("valid WAL") {
                    black_box(record.lsn);
                    n += 1;
                }
            }
            assert_eq!(n, records);
        });
    });
    group.bench_function("records_owned", |b| {
        b.iter(|| {
            let mut dec = decoder();
            dec.feed(&wal);
            let mut n = 0;
            while let Some(record) = dec.next().expect("valid WAL") {
                black_box(&record);
                n += 1;
            }
            assert_eq!(n, records);
        });
    });
    group.finish();
}

fn bench_crc(c: &mut Criterion) {
    let mut group = c.benchmark_group("crc32c");
    for len in [64usize, 256, 8192] {
        let record: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("record_crc", len), &record, |b, r| {
            b.iter(|| record_crc(black_box(r)))
        });
    }
    let page = vec![0xA5u8; 8192];
    group.throughput(Throughput::Bytes(page.len() as u64));
    group.bench_function("crc32c/8192", |b| b.iter(|| crc32c(black_box(&page))));
    group.finish();
}

criterion_group!(benches, bench_decoder, bench_crc);
criterion_main!(benches);
