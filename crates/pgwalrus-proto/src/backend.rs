//! Backend (server → client) messages: framing and decoding.
//!
//! [`BackendMessage::parse`] is check-then-parse: it looks at the 5-byte header, returns
//! `Ok(None)` while the frame is incomplete, and only then splits the frame off the read
//! buffer and freezes it. Bodies that carry payload (`CopyData`, `DataRow` values, SASL data)
//! are [`Bytes`] slices of that frozen frame: no copies.
//!
//! An encoder ([`BackendMessage::encode`]) exists for tests, fuzzing and fake servers; it is
//! the exact inverse of the parser.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{ProtoError, Tag};
use crate::reader::Reader;
use crate::server_error::{Notice, ServerError, Severity};
use crate::writer::Writer;

/// Largest message accepted by [`BackendMessage::parse`]: 64 MiB. Physical replication
/// sends WAL in chunks of at most 128 kB; anything near this limit is a broken or hostile
/// peer, and the limit bounds how much memory one header can make us reserve.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 64 << 20;

/// An authentication request (`'R'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// Code 0: authentication succeeded.
    Ok,
    /// Code 3: send the password in clear text.
    CleartextPassword,
    /// Code 5: send an MD5 hash of the password salted with `salt`.
    Md5Password {
        /// Four random bytes.
        salt: [u8; 4],
    },
    /// Code 10: start SASL with one of `mechanisms` (most preferred first).
    Sasl {
        /// Mechanism names, e.g. `SCRAM-SHA-256-PLUS`, `SCRAM-SHA-256`.
        mechanisms: Vec<String>,
    },
    /// Code 11: a SASL challenge.
    SaslContinue(Bytes),
    /// Code 12: SASL outcome data (the server's final message).
    SaslFinal(Bytes),
    /// Any other method (Kerberos 5, SCM credentials, GSSAPI, SSPI, unknown codes); we do
    /// not implement these. The rest of the body is ignored.
    Unsupported {
        /// The request code.
        code: i32,
    },
}

impl Authentication {
    /// The request code on the wire.
    pub fn code(&self) -> i32 {
        match self {
            Authentication::Ok => 0,
            Authentication::CleartextPassword => 3,
            Authentication::Md5Password { .. } => 5,
            Authentication::Sasl { .. } => 10,
            Authentication::SaslContinue(_) => 11,
            Authentication::SaslFinal(_) => 12,
            Authentication::Unsupported { code } => *code,
        }
    }
}

/// Transaction status reported by `ReadyForQuery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block.
    Failed,
}

impl TransactionStatus {
    fn byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InTransaction => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}

/// One column of a `RowDescription`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column name.
    pub name: String,
    /// Table OID, or 0.
    pub table_oid: u32,
    /// Column attribute number, or 0.
    pub column_id: i16,
    /// Data type OID.
    pub type_oid: u32,
    /// Data type size (negative for variable width).
    pub type_size: i16,
    /// Type modifier.
    pub type_modifier: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

/// A `DataRow`: one value per column, `None` for SQL NULL. Values are slices of the
/// received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRow {
    /// Column values in order.
    pub values: Vec<Option<Bytes>>,
}

/// The body of `CopyInResponse`, `CopyOutResponse` and `CopyBothResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResponse {
    /// Overall format: 0 text, 1 binary.
    pub format: u8,
    /// Per-column formats.
    pub column_formats: Vec<i16>,
}

/// A message from the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendMessage {
    /// `'R'`: an authentication request or result.
    Authentication(Authentication),
    /// `'S'`: a run-time parameter's current value.
    ParameterStatus {
        /// Parameter name.
        name: String,
        /// Its value.
        value: String,
    },
    /// `'K'`: cancellation key data.
    BackendKeyData {
        /// Backend process id.
        process_id: i32,
        /// Secret key (4 bytes in protocol 3.0; longer in 3.2).
        secret_key: Bytes,
    },
    /// `'Z'`: ready for a new query.
    ReadyForQuery(TransactionStatus),
    /// `'E'`: an error.
    ErrorResponse(ServerError),
    /// `'N'`: a notice.
    NoticeResponse(Notice),
    /// `'A'`: an asynchronous notification.
    NotificationResponse {
        /// Notifying backend process id.
        process_id: i32,
        /// Channel name.
        channel: String,
        /// Payload.
        payload: String,
    },
    /// `'T'`: the columns of the rows that follow.
    RowDescription(Vec<FieldDescription>),
    /// `'D'`: one row.
    DataRow(DataRow),
    /// `'C'`: a command finished; the tag names it (e.g. `SELECT 1`, `START_STREAMING`).
    CommandComplete {
        /// Command tag.
        tag: String,
    },
    /// `'I'`: the query string was empty.
    EmptyQueryResponse,
    /// `'G'`: COPY FROM STDIN started.
    CopyInResponse(CopyResponse),
    /// `'H'`: COPY TO STDOUT started.
    CopyOutResponse(CopyResponse),
    /// `'W'`: bidirectional copy (streaming replication) started.
    CopyBothResponse(CopyResponse),
    /// `'d'`: copy data.
    CopyData(Bytes),
    /// `'c'`: copy finished.
    CopyDone,
    /// `'v'`: the server does not support the requested protocol minor version or some
    /// `_pq_.` startup options.
    NegotiateProtocolVersion {
        /// Newest minor protocol version the server supports.
        newest_minor: i32,
        /// Protocol options the server did not recognize.
        unrecognized: Vec<String>,
    },
}

impl BackendMessage {
    /// The message's protocol name, for error messages (`"CopyData"`, `"ErrorResponse"`…).
    pub fn name(&self) -> &'static str {
        match self {
            BackendMessage::Authentication(a) => match a {
                Authentication::Ok => "AuthenticationOk",
                Authentication::CleartextPassword => "AuthenticationCleartextPassword",
                Authentication::Md5Password { .. } => "AuthenticationMD5Password",
                Authentication::Sasl { .. } => "AuthenticationSASL",
                Authentication::SaslContinue(_) => "AuthenticationSASLContinue",
                Authentication::SaslFinal(_) => "AuthenticationSASLFinal",
                Authentication::Unsupported { .. } => "Authentication (unsupported method)",
            },
            BackendMessage::ParameterStatus { .. } => "ParameterStatus",
            BackendMessage::BackendKeyData { .. } => "BackendKeyData",
            BackendMessage::ReadyForQuery(_) => "ReadyForQuery",
            BackendMessage::ErrorResponse(_) => "ErrorResponse",
            BackendMessage::NoticeResponse(_) => "NoticeResponse",
            BackendMessage::NotificationResponse { .. } => "NotificationResponse",
            BackendMessage::RowDescription(_) => "RowDescription",
            BackendMessage::DataRow(_) => "DataRow",
            BackendMessage::CommandComplete { .. } => "CommandComplete",
            BackendMessage::EmptyQueryResponse => "EmptyQueryResponse",
            BackendMessage::CopyInResponse(_) => "CopyInResponse",
            BackendMessage::CopyOutResponse(_) => "CopyOutResponse",
            BackendMessage::CopyBothResponse(_) => "CopyBothResponse",
            BackendMessage::CopyData(_) => "CopyData",
            BackendMessage::CopyDone => "CopyDone",
            BackendMessage::NegotiateProtocolVersion { .. } => "NegotiateProtocolVersion",
        }
    }

    /// Splits one complete message off the front of `buf` and decodes it.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole message (it may reserve room
    /// for the rest). Rejects unknown types and bad lengths as soon as the header is in.
    ///
    /// # Errors
    /// [`ProtoError`] for an unknown message type, a length below 4 or above
    /// [`DEFAULT_MAX_MESSAGE_LEN`], or a malformed body (the frame is consumed then).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use pgwalrus_proto::{BackendMessage, TransactionStatus};
    ///
    /// let mut buf = BytesMut::from(&b"Z\x00\x00\x00\x05I"[..3]);
    /// assert_eq!(BackendMessage::parse(&mut buf).unwrap(), None);
    /// buf.extend_from_slice(b"\x00\x05I");
    /// assert_eq!(
    ///     BackendMessage::parse(&mut buf).unwrap(),
    ///     Some(BackendMessage::ReadyForQuery(TransactionStatus::Idle))
    /// );
    /// assert!(buf.is_empty());
    /// ```
    pub fn parse(buf: &mut BytesMut) -> Result<Option<BackendMessage>, ProtoError> {
        Self::parse_with_limit(buf, DEFAULT_MAX_MESSAGE_LEN)
    }

    /// [`parse`](Self::parse) with a caller-chosen maximum message length (length word
    /// included).
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn parse_with_limit(
        buf: &mut BytesMut,
        max_len: usize,
    ) -> Result<Option<BackendMessage>, ProtoError> {
        let Some((tag, len)) = header(buf)? else {
            return Ok(None);
        };
        if !is_known_tag(tag) {
            return Err(ProtoError::UnknownTag { tag: Tag(tag) });
        }
        if len < 4 {
            return Err(ProtoError::BadLength { tag: Tag(tag), len });
        }
        // u32 -> usize cannot truncate on the 32/64-bit targets we build for.
        let len_usize = len as usize;
        if len_usize > max_len {
            return Err(ProtoError::TooLong {
                tag: Tag(tag),
                len,
                max: max_len,
            });
        }
        let total = 1 + len_usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut frame = buf.split_to(total).freeze();
        frame.advance(5);
        decode(tag, frame).map(Some)
    }

    /// Appends this message in wire form (the inverse of [`parse`](Self::parse)).
    ///
    /// # Errors
    /// [`ProtoError::InteriorNul`] when a string field contains a NUL byte,
    /// [`ProtoError::EncodeTooLong`] for a body over 2 GiB.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), ProtoError> {
        let mut w = Writer::new(buf);
        match self {
            BackendMessage::Authentication(auth) => w.message(Some(b'R'), "Authentication", |w| {
                w.i32(auth.code());
                match auth {
                    Authentication::Md5Password { salt } => w.bytes(salt),
                    Authentication::Sasl { mechanisms } => {
                        for m in mechanisms {
                            if m.is_empty() {
                                return Err(ProtoError::invalid(
                                    "AuthenticationSASL.mechanism",
                                    "empty name",
                                ));
                            }
                            w.cstr("AuthenticationSASL.mechanism", m)?;
                        }
                        w.u8(0);
                    }
                    Authentication::SaslContinue(data) | Authentication::SaslFinal(data) => {
                        w.bytes(data)
                    }
                    Authentication::Ok
                    | Authentication::CleartextPassword
                    | Authentication::Unsupported { .. } => {}
                }
                Ok(())
            }),
            BackendMessage::ParameterStatus { name, value } => {
                w.message(Some(b'S'), "ParameterStatus", |w| {
                    w.cstr("ParameterStatus.name", name)?;
                    w.cstr("ParameterStatus.value", value)
                })
            }
            BackendMessage::BackendKeyData {
                process_id,
                secret_key,
            } => w.message(Some(b'K'), "BackendKeyData", |w| {
                w.i32(*process_id);
                w.bytes(secret_key);
                Ok(())
            }),
            BackendMessage::ReadyForQuery(status) => w.message(Some(b'Z'), "ReadyForQuery", |w| {
                w.u8(status.byte());
                Ok(())
            }),
            BackendMessage::ErrorResponse(e) => {
                w.message(Some(b'E'), "ErrorResponse", |w| encode_fields(w, e))
            }
            BackendMessage::NoticeResponse(e) => {
                w.message(Some(b'N'), "NoticeResponse", |w| encode_fields(w, e))
            }
            BackendMessage::NotificationResponse {
                process_id,
                channel,
                payload,
            } => w.message(Some(b'A'), "NotificationResponse", |w| {
                w.i32(*process_id);
                w.cstr("NotificationResponse.channel", channel)?;
                w.cstr("NotificationResponse.payload", payload)
            }),
            BackendMessage::RowDescription(fields) => {
                w.message(Some(b'T'), "RowDescription", |w| {
                    w.i16(count_i16(fields.len(), "RowDescription.field_count")?);
                    for f in fields {
                        w.cstr("RowDescription.name", &f.name)?;
                        w.u32(f.table_oid);
                        w.i16(f.column_id);
                        w.u32(f.type_oid);
                        w.i16(f.type_size);
                        w.i32(f.type_modifier);
                        w.i16(f.format);
                    }
                    Ok(())
                })
            }
            BackendMessage::DataRow(row) => w.message(Some(b'D'), "DataRow", |w| {
                w.i16(count_i16(row.values.len(), "DataRow.column_count")?);
                for v in &row.values {
                    match v {
                        None => w.i32(-1),
                        Some(v) => {
                            let len =
                                i32::try_from(v.len()).map_err(|_| ProtoError::EncodeTooLong {
                                    message: "DataRow",
                                    len: v.len(),
                                })?;
                            w.i32(len);
                            w.bytes(v);
                        }
                    }
                }
                Ok(())
            }),
            BackendMessage::CommandComplete { tag } => {
                w.message(Some(b'C'), "CommandComplete", |w| {
                    w.cstr("CommandComplete.tag", tag)
                })
            }
            BackendMessage::EmptyQueryResponse => {
                w.message(Some(b'I'), "EmptyQueryResponse", |_| Ok(()))
            }
            BackendMessage::CopyInResponse(c) => {
                w.message(Some(b'G'), "CopyInResponse", |w| encode_copy(w, c))
            }
            BackendMessage::CopyOutResponse(c) => {
                w.message(Some(b'H'), "CopyOutResponse", |w| encode_copy(w, c))
            }
            BackendMessage::CopyBothResponse(c) => {
                w.message(Some(b'W'), "CopyBothResponse", |w| encode_copy(w, c))
            }
            BackendMessage::CopyData(data) => w.message(Some(b'd'), "CopyData", |w| {
                w.bytes(data);
                Ok(())
            }),
            BackendMessage::CopyDone => w.message(Some(b'c'), "CopyDone", |_| Ok(())),
            BackendMessage::NegotiateProtocolVersion {
                newest_minor,
                unrecognized,
            } => w.message(Some(b'v'), "NegotiateProtocolVersion", |w| {
                w.i32(*newest_minor);
                let n =
                    i32::try_from(unrecognized.len()).map_err(|_| ProtoError::EncodeTooLong {
                        message: "NegotiateProtocolVersion",
                        len: unrecognized.len(),
                    })?;
                w.i32(n);
                for o in unrecognized {
                    w.cstr("NegotiateProtocolVersion.option", o)?;
                }
                Ok(())
            }),
        }
    }
}

/// Reads the type byte and length word, if all five bytes are there.
fn header(buf: &[u8]) -> Result<Option<(u8, u32)>, ProtoError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let mut r = Reader::new(buf);
    let tag = r.u8("message type")?;
    let len = r.u32("message length")?;
    Ok(Some((tag, len)))
}

fn is_known_tag(tag: u8) -> bool {
    matches!(
        tag,
        b'R' | b'S'
            | b'K'
            | b'Z'
            | b'E'
            | b'N'
            | b'A'
            | b'T'
            | b'D'
            | b'C'
            | b'I'
            | b'G'
            | b'H'
            | b'W'
            | b'd'
            | b'c'
            | b'v'
    )
}

fn count_i16(n: usize, field: &'static str) -> Result<i16, ProtoError> {
    i16::try_from(n).map_err(|_| ProtoError::invalid(field, format!("{n} does not fit in int16")))
}

fn decode(tag: u8, body: Bytes) -> Result<BackendMessage, ProtoError> {
    let mut r = Reader::new(&body);
    let msg = match tag {
        b'R' => {
            let code = r.i32("Authentication.code")?;
            let auth = match code {
                0 => Authentication::Ok,
                3 => Authentication::CleartextPassword,
                5 => Authentication::Md5Password {
                    salt: r.array("AuthenticationMD5Password.salt")?,
                },
                10 => {
                    let mut mechanisms = Vec::new();
                    loop {
                        let m = r.str("AuthenticationSASL.mechanism")?;
                        if m.is_empty() {
                            break;
                        }
                        mechanisms.push(m.to_owned());
                    }
                    Authentication::Sasl { mechanisms }
                }
                11 => Authentication::SaslContinue(body.slice(r.offset()..)),
                12 => Authentication::SaslFinal(body.slice(r.offset()..)),
                code => Authentication::Unsupported { code },
            };
            if matches!(
                auth,
                Authentication::SaslContinue(_)
                    | Authentication::SaslFinal(_)
                    | Authentication::Unsupported { .. }
            ) {
                r.rest();
            }
            r.finish("Authentication")?;
            BackendMessage::Authentication(auth)
        }
        b'S' => {
            let name = r.lossy_string("ParameterStatus.name")?;
            let value = r.lossy_string("ParameterStatus.value")?;
            r.finish("ParameterStatus")?;
            BackendMessage::ParameterStatus { name, value }
        }
        b'K' => {
            let process_id = r.i32("BackendKeyData.process_id")?;
            let secret_key = body.slice(r.offset()..);
            if secret_key.len() < 4 {
                return Err(ProtoError::Short {
                    field: "BackendKeyData.secret_key",
                    needed: 4,
                    available: secret_key.len(),
                });
            }
            BackendMessage::BackendKeyData {
                process_id,
                secret_key,
            }
        }
        b'Z' => {
            let status = match r.u8("ReadyForQuery.status")? {
                b'I' => TransactionStatus::Idle,
                b'T' => TransactionStatus::InTransaction,
                b'E' => TransactionStatus::Failed,
                other => {
                    return Err(ProtoError::invalid(
                        "ReadyForQuery.status",
                        format!("unknown transaction status {}", Tag(other)),
                    ));
                }
            };
            r.finish("ReadyForQuery")?;
            BackendMessage::ReadyForQuery(status)
        }
        b'E' => BackendMessage::ErrorResponse(ServerError::parse(&body)?),
        b'N' => BackendMessage::NoticeResponse(ServerError::parse(&body)?),
        b'A' => {
            let process_id = r.i32("NotificationResponse.process_id")?;
            let channel = r.lossy_string("NotificationResponse.channel")?;
            let payload = r.lossy_string("NotificationResponse.payload")?;
            r.finish("NotificationResponse")?;
            BackendMessage::NotificationResponse {
                process_id,
                channel,
                payload,
            }
        }
        b'T' => {
            let n = r.count16("RowDescription.field_count")?;
            // Each field takes at least 19 bytes; never trust the count for allocation.
            let mut fields = Vec::with_capacity(n.min(r.remaining() / 19));
            for _ in 0..n {
                fields.push(FieldDescription {
                    name: r.lossy_string("RowDescription.name")?,
                    table_oid: r.u32("RowDescription.table_oid")?,
                    column_id: r.i16("RowDescription.column_id")?,
                    type_oid: r.u32("RowDescription.type_oid")?,
                    type_size: r.i16("RowDescription.type_size")?,
                    type_modifier: r.i32("RowDescription.type_modifier")?,
                    format: r.i16("RowDescription.format")?,
                });
            }
            r.finish("RowDescription")?;
            BackendMessage::RowDescription(fields)
        }
        b'D' => {
            let n = r.count16("DataRow.column_count")?;
            let mut values = Vec::with_capacity(n.min(r.remaining() / 4));
            for _ in 0..n {
                let len = r.i32("DataRow.value_length")?;
                if len == -1 {
                    values.push(None);
                    continue;
                }
                let len = usize::try_from(len).map_err(|_| {
                    ProtoError::invalid("DataRow.value_length", format!("negative length {len}"))
                })?;
                let start = r.offset();
                r.bytes(len, "DataRow.value")?;
                values.push(Some(body.slice(start..start + len)));
            }
            r.finish("DataRow")?;
            BackendMessage::DataRow(DataRow { values })
        }
        b'C' => {
            let tag = r.lossy_string("CommandComplete.tag")?;
            r.finish("CommandComplete")?;
            BackendMessage::CommandComplete { tag }
        }
        b'I' => {
            r.finish("EmptyQueryResponse")?;
            BackendMessage::EmptyQueryResponse
        }
        b'G' => BackendMessage::CopyInResponse(decode_copy(&mut r, "CopyInResponse")?),
        b'H' => BackendMessage::CopyOutResponse(decode_copy(&mut r, "CopyOutResponse")?),
        b'W' => BackendMessage::CopyBothResponse(decode_copy(&mut r, "CopyBothResponse")?),
        b'd' => BackendMessage::CopyData(body),
        b'c' => {
            r.finish("CopyDone")?;
            BackendMessage::CopyDone
        }
        b'v' => {
            let newest_minor = r.i32("NegotiateProtocolVersion.newest_minor")?;
            let n = r.i32("NegotiateProtocolVersion.option_count")?;
            let n = usize::try_from(n).map_err(|_| {
                ProtoError::invalid(
                    "NegotiateProtocolVersion.option_count",
                    format!("negative count {n}"),
                )
            })?;
            let mut unrecognized = Vec::with_capacity(n.min(r.remaining()));
            for _ in 0..n {
                unrecognized.push(r.lossy_string("NegotiateProtocolVersion.option")?);
            }
            r.finish("NegotiateProtocolVersion")?;
            BackendMessage::NegotiateProtocolVersion {
                newest_minor,
                unrecognized,
            }
        }
        other => return Err(ProtoError::UnknownTag { tag: Tag(other) }),
    };
    Ok(msg)
}

fn decode_copy(r: &mut Reader<'_>, message: &'static str) -> Result<CopyResponse, ProtoError> {
    let format = r.u8("CopyResponse.format")?;
    let n = r.count16("CopyResponse.column_count")?;
    let mut column_formats = Vec::with_capacity(n.min(r.remaining() / 2));
    for _ in 0..n {
        column_formats.push(r.i16("CopyResponse.column_format")?);
    }
    r.finish(message)?;
    Ok(CopyResponse {
        format,
        column_formats,
    })
}

fn encode_copy(w: &mut Writer<'_>, c: &CopyResponse) -> Result<(), ProtoError> {
    w.u8(c.format);
    w.i16(count_i16(
        c.column_formats.len(),
        "CopyResponse.column_count",
    )?);
    for f in &c.column_formats {
        w.i16(*f);
    }
    Ok(())
}

fn encode_fields(w: &mut Writer<'_>, e: &ServerError) -> Result<(), ProtoError> {
    let nonlocalized = match e.severity {
        Severity::Error => Some("ERROR"),
        Severity::Fatal => Some("FATAL"),
        Severity::Panic => Some("PANIC"),
        Severity::Warning => Some("WARNING"),
        Severity::Notice => Some("NOTICE"),
        Severity::Debug => Some("DEBUG"),
        Severity::Info => Some("INFO"),
        Severity::Log => Some("LOG"),
        Severity::Other => None,
    };
    let field = |w: &mut Writer<'_>, k: u8, v: &str| -> Result<(), ProtoError> {
        w.u8(k);
        w.cstr("ErrorResponse.field_value", v)
    };
    field(w, b'S', &e.localized_severity)?;
    if let Some(v) = nonlocalized {
        field(w, b'V', v)?;
    }
    field(w, b'C', e.code.code())?;
    field(w, b'M', &e.message)?;
    let optional: [(u8, Option<String>); 7] = [
        (b'D', e.detail.clone()),
        (b'H', e.hint.clone()),
        (b'P', e.position.map(|p| p.to_string())),
        (b'W', e.where_.clone()),
        (b'F', e.file.clone()),
        (b'L', e.line.map(|l| l.to_string())),
        (b'R', e.routine.clone()),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            field(w, k, &v)?;
        }
    }
    w.u8(0);
    Ok(())
}

#[cfg(test)]
mod tests;
