//! Payloads inside the `CopyData` messages of a physical replication stream.
//!
//! Server to client: `w` [`XLogData`] and `k` [`PrimaryKeepalive`]. Client to server: `r`
//! [`StandbyStatusUpdate`] and `h` [`HotStandbyFeedback`]. Each type parses and encodes its
//! payload (the bytes after the `CopyData` header); the client-bound ones also encode a whole
//! framed `CopyData` message ready to send. Timestamps are [`PgTimestamp`]s; nothing here
//! reads the clock.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use pgwalrus_wal::Lsn;

use crate::error::{ProtoError, Tag};
use crate::reader::Reader;
use crate::writer::Writer;

/// Microseconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01 00:00:00 UTC.
pub const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// A PostgreSQL timestamp on the wire: microseconds since 2000-01-01 00:00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PgTimestamp(pub i64);

impl PgTimestamp {
    /// Converts a wall-clock time (the caller reads the clock). Times beyond what `i64`
    /// microseconds can hold saturate.
    pub fn from_system_time(t: SystemTime) -> PgTimestamp {
        let unix_micros = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
        };
        PgTimestamp(unix_micros.saturating_sub(PG_EPOCH_UNIX_MICROS))
    }

    /// Converts to a wall-clock time, or `None` when the platform cannot represent it.
    pub fn to_system_time(self) -> Option<SystemTime> {
        let unix_micros = self.0.checked_add(PG_EPOCH_UNIX_MICROS)?;
        let magnitude = Duration::from_micros(unix_micros.unsigned_abs());
        if unix_micros >= 0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        }
    }

    /// Microseconds since 2000-01-01 00:00:00 UTC.
    pub fn micros(self) -> i64 {
        self.0
    }
}

impl fmt::Display for PgTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}µs since 2000-01-01", self.0)
    }
}

/// `w`: a chunk of WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XLogData {
    /// Position of the first byte of `data`.
    pub start: Lsn,
    /// The server's current end of WAL.
    pub wal_end: Lsn,
    /// When the server sent this.
    pub send_time: PgTimestamp,
    /// Raw WAL bytes: a slice of the received frame, not a copy.
    pub data: Bytes,
}

impl XLogData {
    /// Bytes before the WAL data: tag, start, end of WAL, send time.
    pub const HEADER_LEN: usize = 25;

    /// Position just past the last byte of `data`.
    ///
    /// # Errors
    /// [`ProtoError::Invalid`] when the chunk would run past the end of the LSN space.
    pub fn end(&self) -> Result<Lsn, ProtoError> {
        self.start
            .checked_add(self.data.len() as u64)
            .ok_or_else(|| {
                ProtoError::invalid(
                    "XLogData.data",
                    "chunk runs past the end of the WAL position space",
                )
            })
    }

    /// Parses a `w` payload (the whole `CopyData` body). `data` is sliced from `payload`.
    ///
    /// # Errors
    /// [`ProtoError`] naming the short field, or a chunk that ends beyond the LSN space.
    pub fn parse(payload: &Bytes) -> Result<XLogData, ProtoError> {
        let mut r = Reader::new(payload);
        expect_kind(&mut r, b'w', "XLogData")?;
        let start = Lsn::new(r.u64("XLogData.start")?);
        let wal_end = Lsn::new(r.u64("XLogData.wal_end")?);
        let send_time = PgTimestamp(r.i64("XLogData.send_time")?);
        let x = XLogData {
            start,
            wal_end,
            send_time,
            data: payload.slice(r.offset()..),
        };
        x.end()?;
        Ok(x)
    }

    /// Appends the payload (for tests and fake servers).
    pub fn encode_payload(&self, buf: &mut BytesMut) {
        let mut w = Writer::new(buf);
        w.u8(b'w');
        w.u64(self.start.as_u64());
        w.u64(self.wal_end.as_u64());
        w.i64(self.send_time.0);
        w.bytes(&self.data);
    }
}

/// `k`: the server's keepalive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryKeepalive {
    /// The server's current end of WAL.
    pub wal_end: Lsn,
    /// When the server sent this.
    pub send_time: PgTimestamp,
    /// The server wants a status update now (it will time us out otherwise).
    pub reply_requested: bool,
}

impl PrimaryKeepalive {
    /// Parses a `k` payload.
    ///
    /// # Errors
    /// [`ProtoError`] naming the short field, or trailing bytes.
    pub fn parse(payload: &[u8]) -> Result<PrimaryKeepalive, ProtoError> {
        let mut r = Reader::new(payload);
        expect_kind(&mut r, b'k', "PrimaryKeepalive")?;
        let wal_end = Lsn::new(r.u64("PrimaryKeepalive.wal_end")?);
        let send_time = PgTimestamp(r.i64("PrimaryKeepalive.send_time")?);
        let reply_requested = r.u8("PrimaryKeepalive.reply_requested")? != 0;
        r.finish("PrimaryKeepalive")?;
        Ok(PrimaryKeepalive {
            wal_end,
            send_time,
            reply_requested,
        })
    }

    /// Appends the payload (for tests and fake servers).
    pub fn encode_payload(&self, buf: &mut BytesMut) {
        let mut w = Writer::new(buf);
        w.u8(b'k');
        w.u64(self.wal_end.as_u64());
        w.i64(self.send_time.0);
        w.u8(u8::from(self.reply_requested));
    }
}

/// A message from the walsender inside the copy stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalSenderMessage {
    /// `w`.
    XLogData(XLogData),
    /// `k`.
    Keepalive(PrimaryKeepalive),
}

impl WalSenderMessage {
    /// Parses a `CopyData` body from the walsender.
    ///
    /// # Errors
    /// [`ProtoError`] for an empty payload, an unknown kind byte, or a malformed body.
    pub fn parse(payload: &Bytes) -> Result<WalSenderMessage, ProtoError> {
        match payload.first() {
            Some(b'w') => XLogData::parse(payload).map(WalSenderMessage::XLogData),
            Some(b'k') => PrimaryKeepalive::parse(payload).map(WalSenderMessage::Keepalive),
            Some(&other) => Err(ProtoError::invalid(
                "CopyData.kind",
                format!("unknown replication message {}", Tag(other)),
            )),
            None => Err(ProtoError::Short {
                field: "CopyData.kind",
                needed: 1,
                available: 0,
            }),
        }
    }
}

/// `r`: the client's position report.
///
/// `flush` and `apply` may be [`Lsn::INVALID`] (0), meaning "not reported"; they are sent
/// as given, never replaced by `write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandbyStatusUpdate {
    /// Last WAL byte + 1 received and written.
    pub write: Lsn,
    /// Last WAL byte + 1 durably flushed.
    pub flush: Lsn,
    /// Last WAL byte + 1 applied.
    pub apply: Lsn,
    /// The client's clock.
    pub client_time: PgTimestamp,
    /// Ask the server to answer with a keepalive at once.
    pub reply_requested: bool,
}

impl StandbyStatusUpdate {
    /// Payload length.
    pub const LEN: usize = 34;

    /// Appends the payload.
    pub fn encode_payload(&self, buf: &mut BytesMut) {
        let mut w = Writer::new(buf);
        w.u8(b'r');
        w.u64(self.write.as_u64());
        w.u64(self.flush.as_u64());
        w.u64(self.apply.as_u64());
        w.i64(self.client_time.0);
        w.u8(u8::from(self.reply_requested));
    }

    /// Appends a framed `CopyData` message carrying this update, ready to send.
    pub fn encode_copy_data(&self, buf: &mut BytesMut) {
        let _ = Writer::new(buf).message(Some(b'd'), "CopyData", |w| {
            w.u8(b'r');
            w.u64(self.write.as_u64());
            w.u64(self.flush.as_u64());
            w.u64(self.apply.as_u64());
            w.i64(self.client_time.0);
            w.u8(u8::from(self.reply_requested));
            Ok(())
        });
    }

    /// Parses an `r` payload (for tests and fake servers).
    ///
    /// # Errors
    /// [`ProtoError`] naming the short field, or trailing bytes.
    pub fn parse(payload: &[u8]) -> Result<StandbyStatusUpdate, ProtoError> {
        let mut r = Reader::new(payload);
        expect_kind(&mut r, b'r', "StandbyStatusUpdate")?;
        let u = StandbyStatusUpdate {
            write: Lsn::new(r.u64("StandbyStatusUpdate.write")?),
            flush: Lsn::new(r.u64("StandbyStatusUpdate.flush")?),
            apply: Lsn::new(r.u64("StandbyStatusUpdate.apply")?),
            client_time: PgTimestamp(r.i64("StandbyStatusUpdate.client_time")?),
            reply_requested: r.u8("StandbyStatusUpdate.reply_requested")? != 0,
        };
        r.finish("StandbyStatusUpdate")?;
        Ok(u)
    }
}

/// `h`: hot standby feedback (xmin horizons). All-zero xmin and catalog xmin tell the
/// server to stop holding back for this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotStandbyFeedback {
    /// The client's clock.
    pub client_time: PgTimestamp,
    /// Oldest transaction id still needed.
    pub xmin: u32,
    /// Its epoch.
    pub xmin_epoch: u32,
    /// Oldest catalog transaction id still needed.
    pub catalog_xmin: u32,
    /// Its epoch.
    pub catalog_xmin_epoch: u32,
}

impl HotStandbyFeedback {
    /// Payload length.
    pub const LEN: usize = 25;

    fn write(&self, w: &mut Writer<'_>) {
        w.u8(b'h');
        w.i64(self.client_time.0);
        w.u32(self.xmin);
        w.u32(self.xmin_epoch);
        w.u32(self.catalog_xmin);
        w.u32(self.catalog_xmin_epoch);
    }

    /// Appends the payload.
    pub fn encode_payload(&self, buf: &mut BytesMut) {
        self.write(&mut Writer::new(buf));
    }

    /// Appends a framed `CopyData` message carrying this feedback, ready to send.
    pub fn encode_copy_data(&self, buf: &mut BytesMut) {
        let _ = Writer::new(buf).message(Some(b'd'), "CopyData", |w| {
            self.write(w);
            Ok(())
        });
    }

    /// Parses an `h` payload (for tests and fake servers).
    ///
    /// # Errors
    /// [`ProtoError`] naming the short field, or trailing bytes.
    pub fn parse(payload: &[u8]) -> Result<HotStandbyFeedback, ProtoError> {
        let mut r = Reader::new(payload);
        expect_kind(&mut r, b'h', "HotStandbyFeedback")?;
        let f = HotStandbyFeedback {
            client_time: PgTimestamp(r.i64("HotStandbyFeedback.client_time")?),
            xmin: r.u32("HotStandbyFeedback.xmin")?,
            xmin_epoch: r.u32("HotStandbyFeedback.xmin_epoch")?,
            catalog_xmin: r.u32("HotStandbyFeedback.catalog_xmin")?,
            catalog_xmin_epoch: r.u32("HotStandbyFeedback.catalog_xmin_epoch")?,
        };
        r.finish("HotStandbyFeedback")?;
        Ok(f)
    }
}

fn expect_kind(r: &mut Reader<'_>, kind: u8, message: &'static str) -> Result<(), ProtoError> {
    let got = r.u8("CopyData.kind")?;
    if got == kind {
        Ok(())
    } else {
        Err(ProtoError::invalid(
            "CopyData.kind",
            format!("expected {} for {message}, got {}", Tag(kind), Tag(got)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::backend::BackendMessage;
    use crate::testdata::{self, Dir};

    fn captured(dir: Dir) -> Vec<Bytes> {
        testdata::frames(testdata::COPYBOTH)
            .into_iter()
            .filter(|(d, f)| *d == dir && f[0] == b'd')
            .map(|(_, f)| Bytes::from(f).slice(5..))
            .collect()
    }

    #[test]
    fn captured_walsender_messages() {
        let msgs: Vec<_> = captured(Dir::Server)
            .iter()
            .map(|p| WalSenderMessage::parse(p).unwrap())
            .collect();
        let WalSenderMessage::Keepalive(k) = &msgs[0] else {
            panic!("{:?}", msgs[0])
        };
        assert_eq!(k.wal_end, "0/1501480".parse().unwrap());
        assert!(k.reply_requested);
        let WalSenderMessage::XLogData(x) = &msgs[1] else {
            panic!()
        };
        assert_eq!(x.start, "0/1501480".parse().unwrap());
        assert_eq!(x.wal_end, "0/15014E0".parse().unwrap());
        assert_eq!(x.end().unwrap(), x.wal_end);
        assert_eq!(x.data.len(), 0x60);
        // The captured run happened in 2026: the send time is plausible.
        let t = x.send_time.to_system_time().unwrap();
        let year_secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() / 31_556_952;
        assert!(
            (55..60).contains(&year_secs),
            "{year_secs} years since 1970"
        );
        // Re-encoding gives the captured bytes back.
        for (payload, msg) in captured(Dir::Server).iter().zip(&msgs) {
            let mut buf = BytesMut::new();
            match msg {
                WalSenderMessage::XLogData(x) => x.encode_payload(&mut buf),
                WalSenderMessage::Keepalive(k) => k.encode_payload(&mut buf),
            }
            assert_eq!(&buf[..], &payload[..]);
        }
    }

    #[test]
    fn captured_status_updates_reencode_identically() {
        let frames: Vec<_> = testdata::frames(testdata::COPYBOTH)
            .into_iter()
            .filter(|(d, f)| *d == Dir::Client && f[0] == b'd')
            .collect();
        assert!(!frames.is_empty());
        for (_, frame) in frames {
            let u = StandbyStatusUpdate::parse(&frame[5..]).unwrap();
            // pg_receivewal without a slot reports flush = apply = 0.
            assert_eq!(u.flush, Lsn::INVALID);
            assert_eq!(u.apply, Lsn::INVALID);
            let mut buf = BytesMut::new();
            u.encode_copy_data(&mut buf);
            assert_eq!(&buf[..], &frame[..]);
        }
    }

    #[test]
    fn xlogdata_is_zero_copy() {
        let mut buf = BytesMut::new();
        XLogData {
            start: Lsn::new(16),
            wal_end: Lsn::new(20),
            send_time: PgTimestamp(1),
            data: Bytes::from_static(b"abcd"),
        }
        .encode_payload(&mut buf);
        let payload = buf.freeze();
        let x = XLogData::parse(&payload).unwrap();
        assert_eq!(
            x.data.as_ptr() as usize,
            payload.as_ptr() as usize + XLogData::HEADER_LEN
        );
    }

    #[test]
    fn errors_name_fields() {
        assert_eq!(
            WalSenderMessage::parse(&Bytes::from_static(b"k\0\0")).unwrap_err(),
            ProtoError::Short {
                field: "PrimaryKeepalive.wal_end",
                needed: 8,
                available: 2
            }
        );
        assert!(matches!(
            WalSenderMessage::parse(&Bytes::from_static(b"s")),
            Err(ProtoError::Invalid {
                field: "CopyData.kind",
                ..
            })
        ));
        assert!(WalSenderMessage::parse(&Bytes::new()).is_err());
        let mut overflow = BytesMut::new();
        XLogData {
            start: Lsn::MAX,
            wal_end: Lsn::MAX,
            send_time: PgTimestamp(0),
            data: Bytes::from_static(b"x"),
        }
        .encode_payload(&mut overflow);
        assert!(XLogData::parse(&overflow.freeze()).is_err());
    }

    #[test]
    fn timestamps() {
        let pg_epoch = UNIX_EPOCH + Duration::from_secs(946_684_800);
        assert_eq!(PgTimestamp::from_system_time(pg_epoch), PgTimestamp(0));
        assert_eq!(PgTimestamp(0).to_system_time(), Some(pg_epoch));
        assert_eq!(
            PgTimestamp::from_system_time(UNIX_EPOCH),
            PgTimestamp(-PG_EPOCH_UNIX_MICROS)
        );
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(
            PgTimestamp::from_system_time(before).to_system_time(),
            Some(before)
        );
        // Past the i64 range once shifted to the Unix epoch.
        assert_eq!(PgTimestamp(i64::MAX).to_system_time(), None);
    }

    #[test]
    fn status_update_layout() {
        let u = StandbyStatusUpdate {
            write: Lsn::new(0x0102),
            flush: Lsn::INVALID,
            apply: Lsn::INVALID,
            client_time: PgTimestamp(5),
            reply_requested: true,
        };
        let mut buf = BytesMut::new();
        u.encode_copy_data(&mut buf);
        assert_eq!(buf.len(), 5 + StandbyStatusUpdate::LEN);
        let mut b = buf.clone();
        let Some(BackendMessage::CopyData(p)) = BackendMessage::parse(&mut b).unwrap() else {
            panic!()
        };
        assert_eq!(StandbyStatusUpdate::parse(&p).unwrap(), u);
        let f = HotStandbyFeedback {
            client_time: PgTimestamp(1),
            xmin: 0,
            xmin_epoch: 0,
            catalog_xmin: 0,
            catalog_xmin_epoch: 0,
        };
        let mut buf = BytesMut::new();
        f.encode_copy_data(&mut buf);
        assert_eq!(buf.len(), 5 + HotStandbyFeedback::LEN);
        assert_eq!(HotStandbyFeedback::parse(&buf[5..]).unwrap(), f);
    }

    fn lsn() -> impl Strategy<Value = Lsn> {
        any::<u64>().prop_map(Lsn::new)
    }

    proptest! {
        #[test]
        fn xlogdata_roundtrip(start in 0u64..u64::MAX / 2, end in lsn(), t in any::<i64>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let x = XLogData { start: Lsn::new(start), wal_end: end, send_time: PgTimestamp(t), data: data.into() };
            let mut buf = BytesMut::new();
            x.encode_payload(&mut buf);
            prop_assert_eq!(WalSenderMessage::parse(&buf.freeze()).unwrap(), WalSenderMessage::XLogData(x));
        }

        #[test]
        fn keepalive_roundtrip(end in lsn(), t in any::<i64>(), r in any::<bool>()) {
            let k = PrimaryKeepalive { wal_end: end, send_time: PgTimestamp(t), reply_requested: r };
            let mut buf = BytesMut::new();
            k.encode_payload(&mut buf);
            prop_assert_eq!(WalSenderMessage::parse(&buf.freeze()).unwrap(), WalSenderMessage::Keepalive(k));
        }

        #[test]
        fn status_roundtrip(w in lsn(), f in lsn(), a in lsn(), t in any::<i64>(), r in any::<bool>()) {
            let u = StandbyStatusUpdate { write: w, flush: f, apply: a, client_time: PgTimestamp(t), reply_requested: r };
            let mut buf = BytesMut::new();
            u.encode_payload(&mut buf);
            prop_assert_eq!(StandbyStatusUpdate::parse(&buf).unwrap(), u);
        }

        #[test]
        fn feedback_roundtrip(t in any::<i64>(), x in any::<u32>(), xe in any::<u32>(), c in any::<u32>(), ce in any::<u32>()) {
            let f = HotStandbyFeedback { client_time: PgTimestamp(t), xmin: x, xmin_epoch: xe, catalog_xmin: c, catalog_xmin_epoch: ce };
            let mut buf = BytesMut::new();
            f.encode_payload(&mut buf);
            prop_assert_eq!(HotStandbyFeedback::parse(&buf).unwrap(), f);
        }

        #[test]
        fn timestamp_roundtrip(micros in -(1i64 << 50)..(1i64 << 50)) {
            let t = PgTimestamp(micros);
            prop_assert_eq!(PgTimestamp::from_system_time(t.to_system_time().unwrap()), t);
        }

        #[test]
        fn arbitrary_payloads_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let b = Bytes::from(data);
            let _ = WalSenderMessage::parse(&b);
            let _ = StandbyStatusUpdate::parse(&b);
            let _ = HotStandbyFeedback::parse(&b);
        }
    }
}
