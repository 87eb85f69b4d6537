//! Frontend (client → server) message encoders.
//!
//! Each function appends one framed message to a [`BytesMut`], so a caller can batch
//! several messages into one write. Strings that would carry a NUL byte are refused with
//! [`ProtoError::InteriorNul`] rather than silently truncated by the server.

use bytes::BytesMut;

use crate::error::ProtoError;
use crate::writer::Writer;

/// Protocol version 3.0 as sent in the startup packet.
pub const PROTOCOL_VERSION_3_0: i32 = 3 << 16;

/// The request code of `SSLRequest` (1234 << 16 | 5679).
pub const SSL_REQUEST_CODE: i32 = 80_877_103;

/// The request code of `GSSENCRequest` (1234 << 16 | 5680).
pub const GSSENC_REQUEST_CODE: i32 = 80_877_104;

/// The request code of `CancelRequest` (1234 << 16 | 5678).
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// The ALPN protocol name for direct TLS connections (`sslnegotiation=direct`, servers 17+).
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// The parameters of a protocol 3.0 startup packet.
///
/// ```
/// use bytes::BytesMut;
/// use pgwalrus_proto::frontend::StartupMessage;
///
/// let mut buf = BytesMut::new();
/// StartupMessage::new("walrus").database("replication").replication("true").encode(&mut buf).unwrap();
/// assert_eq!(&buf[4..8], &[0, 3, 0, 0]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupMessage {
    params: Vec<(String, String)>,
}

impl StartupMessage {
    /// Starts a packet for role `user`.
    pub fn new(user: &str) -> Self {
        Self {
            params: vec![("user".to_owned(), user.to_owned())],
        }
    }

    /// Sets `database`.
    #[must_use]
    pub fn database(self, db: &str) -> Self {
        self.param("database", db)
    }

    /// Sets `replication` (`true` for a physical walsender, `database` for a logical one).
    #[must_use]
    pub fn replication(self, mode: &str) -> Self {
        self.param("replication", mode)
    }

    /// Sets `application_name`.
    #[must_use]
    pub fn application_name(self, name: &str) -> Self {
        self.param("application_name", name)
    }

    /// Sets `options` (backend command-line options).
    #[must_use]
    pub fn options(self, options: &str) -> Self {
        self.param("options", options)
    }

    /// Sets any parameter, replacing an earlier value of the same name.
    #[must_use]
    pub fn param(mut self, name: &str, value: &str) -> Self {
        if let Some(p) = self.params.iter_mut().find(|(n, _)| n == name) {
            p.1 = value.to_owned();
        } else {
            self.params.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// The parameters in the order they will be sent.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// Appends the startup packet (no type byte; length, version 3.0, name/value pairs, a
    /// final NUL).
    ///
    /// # Errors
    /// [`ProtoError::InteriorNul`] when a name or value contains a NUL byte, or
    /// [`ProtoError::Invalid`] for an empty parameter name.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), ProtoError> {
        Writer::new(buf).message(None, "StartupMessage", |w| {
            w.i32(PROTOCOL_VERSION_3_0);
            for (name, value) in &self.params {
                if name.is_empty() {
                    return Err(ProtoError::invalid(
                        "StartupMessage.name",
                        "empty parameter name",
                    ));
                }
                w.cstr("StartupMessage.name", name)?;
                w.cstr("StartupMessage.value", value)?;
            }
            w.u8(0);
            Ok(())
        })
    }
}

/// Appends an `SSLRequest`.
pub fn ssl_request(buf: &mut BytesMut) {
    let _ = Writer::new(buf).message(None, "SSLRequest", |w| {
        w.i32(SSL_REQUEST_CODE);
        Ok(())
    });
}

/// Appends a `CancelRequest` for the backend identified by `process_id` and `secret_key`.
///
/// # Errors
/// [`ProtoError::EncodeTooLong`] only for an absurd key length.
pub fn cancel_request(
    process_id: i32,
    secret_key: &[u8],
    buf: &mut BytesMut,
) -> Result<(), ProtoError> {
    Writer::new(buf).message(None, "CancelRequest", |w| {
        w.i32(CANCEL_REQUEST_CODE);
        w.i32(process_id);
        w.bytes(secret_key);
        Ok(())
    })
}

/// Appends a simple `Query`.
///
/// # Errors
/// [`ProtoError::InteriorNul`] if `sql` contains a NUL byte.
pub fn query(sql: &str, buf: &mut BytesMut) -> Result<(), ProtoError> {
    Writer::new(buf).message(Some(b'Q'), "Query", |w| w.cstr("Query.sql", sql))
}

/// Appends a `PasswordMessage` carrying a cleartext password or an MD5 response.
///
/// # Errors
/// [`ProtoError::InteriorNul`] if `password` contains a NUL byte.
pub fn password(password: &[u8], buf: &mut BytesMut) -> Result<(), ProtoError> {
    Writer::new(buf).message(Some(b'p'), "PasswordMessage", |w| {
        w.cbytes("PasswordMessage.password", password)
    })
}

/// Appends a `SASLInitialResponse` selecting `mechanism`, with the client's first message.
///
/// # Errors
/// [`ProtoError::InteriorNul`] if `mechanism` contains a NUL byte.
pub fn sasl_initial_response(
    mechanism: &str,
    data: &[u8],
    buf: &mut BytesMut,
) -> Result<(), ProtoError> {
    Writer::new(buf).message(Some(b'p'), "SASLInitialResponse", |w| {
        w.cstr("SASLInitialResponse.mechanism", mechanism)?;
        let len = i32::try_from(data.len()).map_err(|_| ProtoError::EncodeTooLong {
            message: "SASLInitialResponse",
            len: data.len(),
        })?;
        w.i32(len);
        w.bytes(data);
        Ok(())
    })
}

/// Appends a `SASLResponse`.
///
/// # Errors
/// [`ProtoError::EncodeTooLong`] only for data over 2 GiB.
pub fn sasl_response(data: &[u8], buf: &mut BytesMut) -> Result<(), ProtoError> {
    Writer::new(buf).message(Some(b'p'), "SASLResponse", |w| {
        w.bytes(data);
        Ok(())
    })
}

/// Appends a `CopyData` wrapping `data`.
///
/// # Errors
/// [`ProtoError::EncodeTooLong`] only for data over 2 GiB.
pub fn copy_data(data: &[u8], buf: &mut BytesMut) -> Result<(), ProtoError> {
    Writer::new(buf).message(Some(b'd'), "CopyData", |w| {
        w.bytes(data);
        Ok(())
    })
}

/// Appends a `CopyDone`.
pub fn copy_done(buf: &mut BytesMut) {
    let _ = Writer::new(buf).message(Some(b'c'), "CopyDone", |_| Ok(()));
}

/// Appends a `CopyFail` with an error message for the server log.
///
/// # Errors
/// [`ProtoError::InteriorNul`] if `message` contains a NUL byte.
pub fn copy_fail(message: &str, buf: &mut BytesMut) -> Result<(), ProtoError> {
    Writer::new(buf).message(Some(b'f'), "CopyFail", |w| {
        w.cstr("CopyFail.message", message)
    })
}

/// Appends a `Terminate`.
pub fn terminate(buf: &mut BytesMut) {
    let _ = Writer::new(buf).message(Some(b'X'), "Terminate", |_| Ok(()));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::reader::Reader;
    use crate::testdata::{self, Dir};

    /// Splits one tagged frame: (tag, body).
    fn split(frame: &[u8]) -> (u8, &[u8]) {
        let mut r = Reader::new(frame);
        let tag = r.u8("tag").unwrap();
        let len = r.u32("len").unwrap() as usize;
        assert_eq!(len, frame.len() - 1, "length word");
        (tag, r.rest())
    }

    /// Decodes a startup packet into its parameters.
    fn startup_params(frame: &[u8]) -> Vec<(String, String)> {
        let mut r = Reader::new(frame);
        assert_eq!(r.u32("len").unwrap() as usize, frame.len());
        assert_eq!(r.i32("version").unwrap(), PROTOCOL_VERSION_3_0);
        let mut out = Vec::new();
        loop {
            let name = r.str("name").unwrap();
            if name.is_empty() {
                break;
            }
            out.push((name.to_owned(), r.str("value").unwrap().to_owned()));
        }
        r.finish("startup").unwrap();
        out
    }

    #[test]
    fn startup_matches_libpq_capture() {
        // psql's startup packet from the capture; ours with the same parameters is identical.
        let captured = &testdata::frames(testdata::SCRAM_REPLICATION_COMMANDS)[0];
        assert_eq!(captured.0, Dir::Client);
        let mut buf = BytesMut::new();
        StartupMessage::new("walrus")
            .database("replication")
            .replication("true")
            .application_name("capture")
            .encode(&mut buf)
            .unwrap();
        assert_eq!(&buf[..], &captured.1[..]);
    }

    #[test]
    fn query_and_terminate_match_libpq_capture() {
        let frames = testdata::frames(testdata::SCRAM_REPLICATION_COMMANDS);
        let mut buf = BytesMut::new();
        query("IDENTIFY_SYSTEM", &mut buf).unwrap();
        assert!(
            frames
                .iter()
                .any(|(d, f)| *d == Dir::Client && f[..] == buf[..])
        );
        let mut buf = BytesMut::new();
        terminate(&mut buf);
        assert_eq!(&frames.last().unwrap().1[..], &buf[..]);
    }

    #[test]
    fn copy_done_matches_pg_receivewal_capture() {
        let mut buf = BytesMut::new();
        copy_done(&mut buf);
        assert!(
            testdata::frames(testdata::COPYBOTH)
                .iter()
                .any(|(d, f)| *d == Dir::Client && f[..] == buf[..])
        );
    }

    #[test]
    fn md5_password_message_matches_capture() {
        let frames = testdata::frames(testdata::MD5);
        let (tag, body) = split(&frames[2].1);
        assert_eq!(tag, b'p');
        let mut buf = BytesMut::new();
        password(&body[..body.len() - 1], &mut buf).unwrap();
        assert_eq!(&buf[..], &frames[2].1[..]);
    }

    #[test]
    fn ssl_request_bytes() {
        let mut buf = BytesMut::new();
        ssl_request(&mut buf);
        assert_eq!(&buf[..], &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    }

    #[test]
    fn startup_replaces_duplicates_and_rejects_nul() {
        let m = StartupMessage::new("a")
            .param("user", "b")
            .application_name("x");
        assert_eq!(m.params()[0], ("user".to_owned(), "b".to_owned()));
        assert_eq!(m.params().len(), 2);
        let mut buf = BytesMut::new();
        assert_eq!(
            StartupMessage::new("a\0b").encode(&mut buf).unwrap_err(),
            ProtoError::InteriorNul {
                field: "StartupMessage.value"
            }
        );
        assert!(buf.is_empty());
        assert!(password(b"a\0", &mut buf).is_err());
    }

    proptest! {
        #[test]
        fn startup_roundtrip(user in "[^\u{0}]{0,10}", extra in proptest::collection::vec(("[a-z_]{1,10}", "[^\u{0}]{0,10}"), 0..4)) {
            let mut m = StartupMessage::new(&user);
            for (k, v) in &extra {
                m = m.param(k, v);
            }
            let mut buf = BytesMut::new();
            m.encode(&mut buf).unwrap();
            prop_assert_eq!(startup_params(&buf), m.params().to_vec());
        }

        #[test]
        fn query_roundtrip(sql in "[^\u{0}]{0,50}") {
            let mut buf = BytesMut::new();
            query(&sql, &mut buf).unwrap();
            let (tag, body) = split(&buf);
            prop_assert_eq!(tag, b'Q');
            let mut r = Reader::new(body);
            prop_assert_eq!(r.str("sql").unwrap(), sql.as_str());
            prop_assert!(r.is_empty());
        }

        #[test]
        fn sasl_roundtrip(mech in "[A-Z0-9-]{1,20}", data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = BytesMut::new();
            sasl_initial_response(&mech, &data, &mut buf).unwrap();
            let (tag, body) = split(&buf);
            prop_assert_eq!(tag, b'p');
            let mut r = Reader::new(body);
            prop_assert_eq!(r.str("mech").unwrap(), mech.as_str());
            prop_assert_eq!(r.i32("len").unwrap() as usize, data.len());
            prop_assert_eq!(r.rest(), &data[..]);
            let mut buf = BytesMut::new();
            sasl_response(&data, &mut buf).unwrap();
            prop_assert_eq!(split(&buf), (b'p', &data[..]));
            let mut buf = BytesMut::new();
            copy_data(&data, &mut buf).unwrap();
            prop_assert_eq!(split(&buf), (b'd', &data[..]));
        }
    }
}
