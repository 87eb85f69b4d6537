use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::server_error::SqlState;
use crate::testdata::{self, Dir};

fn parse_all(bytes: &[u8]) -> Vec<BackendMessage> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = BackendMessage::parse(&mut buf).unwrap() {
        out.push(m);
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    out
}

fn encoded(m: &BackendMessage) -> Vec<u8> {
    let mut buf = BytesMut::new();
    m.encode(&mut buf).unwrap();
    buf.to_vec()
}

#[test]
fn every_captured_server_frame_parses_and_reencodes_identically() {
    for capture in [
        testdata::SCRAM_REPLICATION_COMMANDS,
        testdata::MD5,
        testdata::SCRAM_WRONG_PASSWORD,
        testdata::COPYBOTH,
    ] {
        for (dir, frame) in testdata::frames(capture) {
            if dir != Dir::Server {
                continue;
            }
            let msgs = parse_all(&frame);
            assert_eq!(msgs.len(), 1);
            // ErrorResponse drops fields we do not keep (none in these captures).
            assert_eq!(encoded(&msgs[0]), frame, "{:?}", msgs[0]);
        }
    }
}

#[test]
fn captured_login_sequence() {
    let server: Vec<BackendMessage> = testdata::frames(testdata::SCRAM_REPLICATION_COMMANDS)
        .into_iter()
        .filter(|(d, _)| *d == Dir::Server)
        .flat_map(|(_, f)| parse_all(&f))
        .collect();
    assert_eq!(
        server[0],
        BackendMessage::Authentication(Authentication::Sasl {
            mechanisms: vec!["SCRAM-SHA-256".into()]
        })
    );
    assert!(
        matches!(&server[1], BackendMessage::Authentication(Authentication::SaslContinue(d)) if d.starts_with(b"r="))
    );
    assert!(
        matches!(&server[2], BackendMessage::Authentication(Authentication::SaslFinal(d)) if d.starts_with(b"v="))
    );
    assert_eq!(
        server[3],
        BackendMessage::Authentication(Authentication::Ok)
    );
    assert!(server.contains(&BackendMessage::ParameterStatus {
        name: "in_hot_standby".into(),
        value: "off".into()
    }));
    let key = server.iter().find_map(|m| match m {
        BackendMessage::BackendKeyData {
            process_id,
            secret_key,
        } => Some((*process_id, secret_key.len())),
        _ => None,
    });
    assert_eq!(key, Some((0x26b6, 4)));
    // IDENTIFY_SYSTEM's row: systemid, timeline, xlogpos, NULL dbname.
    let row = server
        .iter()
        .find_map(|m| match m {
            BackendMessage::DataRow(r) if r.values.len() == 4 => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(row.values[0].as_deref(), Some(&b"7710560888511722991"[..]));
    assert_eq!(row.values[2].as_deref(), Some(&b"0/1501480"[..]));
    assert_eq!(row.values[3], None);
    // The failing TIMELINE_HISTORY 1.
    let err = server
        .iter()
        .find_map(|m| match m {
            BackendMessage::ErrorResponse(e) => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(err.code(), SqlState::UNDEFINED_FILE);
    assert_eq!(err.routine.as_deref(), Some("SendTimeLineHistory"));
}

#[test]
fn captured_wrong_password() {
    let last = testdata::frames(testdata::SCRAM_WRONG_PASSWORD)
        .pop()
        .unwrap()
        .1;
    let BackendMessage::ErrorResponse(e) = parse_all(&last).remove(0) else {
        panic!()
    };
    assert!(e.is_auth_failure());
    assert_eq!(
        e.to_string(),
        "FATAL:  password authentication failed for user \"walrus\""
    );
}

#[test]
fn byte_at_a_time_needs_more_then_parses() {
    let frames: Vec<u8> = testdata::frames(testdata::SCRAM_REPLICATION_COMMANDS)
        .into_iter()
        .filter(|(d, _)| *d == Dir::Server)
        .flat_map(|(_, f)| f)
        .collect();
    let whole = parse_all(&frames);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in frames {
        buf.extend_from_slice(&[b]);
        while let Some(m) = BackendMessage::parse(&mut buf).unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, whole);
}

#[test]
fn copy_data_is_a_slice_of_the_read_buffer() {
    let mut buf = BytesMut::new();
    BackendMessage::CopyData(Bytes::from_static(b"wxyz"))
        .encode(&mut buf)
        .unwrap();
    let base = buf.as_ptr() as usize;
    let Some(BackendMessage::CopyData(data)) = BackendMessage::parse(&mut buf).unwrap() else {
        panic!()
    };
    assert_eq!(&data[..], b"wxyz");
    assert_eq!(
        data.as_ptr() as usize,
        base + 5,
        "payload must not be copied"
    );
}

#[test]
fn header_errors() {
    let mut buf = BytesMut::from(&b"Q\x00\x00\x00\x04"[..]);
    assert_eq!(
        BackendMessage::parse(&mut buf).unwrap_err(),
        ProtoError::UnknownTag { tag: Tag(b'Q') }
    );
    let mut buf = BytesMut::from(&b"Z\x00\x00\x00\x03"[..]);
    assert_eq!(
        BackendMessage::parse(&mut buf).unwrap_err(),
        ProtoError::BadLength {
            tag: Tag(b'Z'),
            len: 3
        }
    );
    let mut buf = BytesMut::from(&b"d\x7f\xff\xff\xff"[..]);
    assert!(matches!(
        BackendMessage::parse(&mut buf),
        Err(ProtoError::TooLong { .. })
    ));
    let mut buf = BytesMut::from(&b"d\x00\x00\x01\x00"[..]);
    assert_eq!(
        BackendMessage::parse_with_limit(&mut buf, 1 << 20).unwrap(),
        None
    );
    assert!(matches!(
        BackendMessage::parse_with_limit(&mut buf, 16),
        Err(ProtoError::TooLong { max: 16, .. })
    ));
}

#[test]
fn body_errors_name_the_field() {
    let mut buf = BytesMut::from(&b"Z\x00\x00\x00\x05Q"[..]);
    assert!(matches!(
        BackendMessage::parse(&mut buf),
        Err(ProtoError::Invalid {
            field: "ReadyForQuery.status",
            ..
        })
    ));
    let mut buf = BytesMut::from(&b"R\x00\x00\x00\x0a\x00\x00\x00\x05ab"[..]);
    assert_eq!(
        BackendMessage::parse(&mut buf).unwrap_err(),
        ProtoError::Short {
            field: "AuthenticationMD5Password.salt",
            needed: 4,
            available: 2
        }
    );
    let mut buf = BytesMut::from(&b"D\x00\x00\x00\x0a\x00\x01\x00\x00\x00\x09"[..]);
    assert!(matches!(
        BackendMessage::parse(&mut buf),
        Err(ProtoError::Short {
            field: "DataRow.value",
            ..
        })
    ));
    let mut buf = BytesMut::from(&b"D\x00\x00\x00\x0a\x00\x01\xff\xff\xff\xfe"[..]);
    assert!(matches!(
        BackendMessage::parse(&mut buf),
        Err(ProtoError::Invalid {
            field: "DataRow.value_length",
            ..
        })
    ));
    let mut buf = BytesMut::from(&b"c\x00\x00\x00\x05x"[..]);
    assert_eq!(
        BackendMessage::parse(&mut buf).unwrap_err(),
        ProtoError::TrailingBytes {
            message: "CopyDone",
            count: 1
        }
    );
}

#[test]
fn unsupported_auth_methods_keep_their_code() {
    // GSSAPI (7) with no body, SSPI (9), and an unknown code with a body.
    for (code, extra) in [(7i32, &b""[..]), (9, b""), (99, b"xyz")] {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"R");
        buf.extend_from_slice(&(8 + extra.len() as u32).to_be_bytes());
        buf.extend_from_slice(&code.to_be_bytes());
        buf.extend_from_slice(extra);
        assert_eq!(
            BackendMessage::parse(&mut buf).unwrap(),
            Some(BackendMessage::Authentication(
                Authentication::Unsupported { code }
            ))
        );
    }
}

#[test]
fn negotiate_protocol_version_and_copy_both() {
    let m = BackendMessage::NegotiateProtocolVersion {
        newest_minor: 0,
        unrecognized: vec!["_pq_.x".into()],
    };
    assert_eq!(parse_all(&encoded(&m)), vec![m]);
    // The walsender's CopyBothResponse: format 0, no columns.
    assert_eq!(
        parse_all(b"W\x00\x00\x00\x07\x00\x00\x00"),
        vec![BackendMessage::CopyBothResponse(CopyResponse {
            format: 0,
            column_formats: vec![]
        })]
    );
}

fn arb_string() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}"
}

fn arb_bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn arb_server_error() -> impl Strategy<Value = ServerError> {
    (
        prop_oneof![
            Just(Severity::Error),
            Just(Severity::Fatal),
            Just(Severity::Notice),
            Just(Severity::Log)
        ],
        "[A-Z]{1,8}",
        "[0-9A-Z]{5}",
        arb_string(),
        proptest::option::of(arb_string()),
        proptest::option::of(arb_string()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(arb_string()),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(
            |(severity, localized, code, message, detail, hint, position, file, line)| {
                ServerError {
                    severity,
                    localized_severity: localized,
                    code: SqlState::from_code(&code).unwrap(),
                    message,
                    detail,
                    hint,
                    position,
                    where_: None,
                    file,
                    line,
                    routine: None,
                }
            },
        )
}

fn arb_message() -> impl Strategy<Value = BackendMessage> {
    let auth = prop_oneof![
        Just(Authentication::Ok),
        Just(Authentication::CleartextPassword),
        any::<[u8; 4]>().prop_map(|salt| Authentication::Md5Password { salt }),
        proptest::collection::vec("[A-Z0-9-]{1,20}", 0..3)
            .prop_map(|mechanisms| Authentication::Sasl { mechanisms }),
        arb_bytes().prop_map(Authentication::SaslContinue),
        arb_bytes().prop_map(Authentication::SaslFinal),
        prop_oneof![Just(2), Just(6), Just(7), Just(9), 13..1000i32]
            .prop_map(|code| Authentication::Unsupported { code }),
    ];
    let field = (
        arb_string(),
        any::<u32>(),
        any::<i16>(),
        any::<u32>(),
        any::<i16>(),
        any::<i32>(),
        any::<i16>(),
    )
        .prop_map(
            |(name, table_oid, column_id, type_oid, type_size, type_modifier, format)| {
                FieldDescription {
                    name,
                    table_oid,
                    column_id,
                    type_oid,
                    type_size,
                    type_modifier,
                    format,
                }
            },
        );
    let copy = (any::<u8>(), proptest::collection::vec(any::<i16>(), 0..4)).prop_map(
        |(format, column_formats)| CopyResponse {
            format,
            column_formats,
        },
    );
    prop_oneof![
        auth.prop_map(BackendMessage::Authentication),
        (arb_string(), arb_string())
            .prop_map(|(name, value)| BackendMessage::ParameterStatus { name, value }),
        (any::<i32>(), proptest::collection::vec(any::<u8>(), 4..40)).prop_map(
            |(process_id, k)| BackendMessage::BackendKeyData {
                process_id,
                secret_key: k.into()
            }
        ),
        prop_oneof![
            Just(TransactionStatus::Idle),
            Just(TransactionStatus::InTransaction),
            Just(TransactionStatus::Failed)
        ]
        .prop_map(BackendMessage::ReadyForQuery),
        arb_server_error().prop_map(BackendMessage::ErrorResponse),
        arb_server_error().prop_map(BackendMessage::NoticeResponse),
        (any::<i32>(), arb_string(), arb_string()).prop_map(|(process_id, channel, payload)| {
            BackendMessage::NotificationResponse {
                process_id,
                channel,
                payload,
            }
        }),
        proptest::collection::vec(field, 0..4).prop_map(BackendMessage::RowDescription),
        proptest::collection::vec(proptest::option::of(arb_bytes()), 0..5)
            .prop_map(|values| BackendMessage::DataRow(DataRow { values })),
        arb_string().prop_map(|tag| BackendMessage::CommandComplete { tag }),
        Just(BackendMessage::EmptyQueryResponse),
        copy.clone().prop_map(BackendMessage::CopyInResponse),
        copy.clone().prop_map(BackendMessage::CopyOutResponse),
        copy.prop_map(BackendMessage::CopyBothResponse),
        arb_bytes().prop_map(BackendMessage::CopyData),
        Just(BackendMessage::CopyDone),
        (any::<i32>(), proptest::collection::vec(arb_string(), 0..3)).prop_map(
            |(newest_minor, unrecognized)| BackendMessage::NegotiateProtocolVersion {
                newest_minor,
                unrecognized
            }
        ),
    ]
}

proptest! {
    #[test]
    fn encode_then_parse_is_identity(msgs in proptest::collection::vec(arb_message(), 1..6), split in any::<usize>()) {
        let mut wire = Vec::new();
        for m in &msgs {
            wire.extend(encoded(m));
        }
        // Feed in two pieces at an arbitrary point.
        let split = split % (wire.len() + 1);
        let mut buf = BytesMut::from(&wire[..split]);
        let mut got = Vec::new();
        while let Some(m) = BackendMessage::parse(&mut buf).unwrap() {
            got.push(m);
        }
        buf.extend_from_slice(&wire[split..]);
        while let Some(m) = BackendMessage::parse(&mut buf).unwrap() {
            got.push(m);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = BackendMessage::parse(&mut buf) {}
    }

    #[test]
    fn arbitrary_bodies_never_panic(tag in prop::sample::select(b"RSKZENATDCIGHWdcv".to_vec()), body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[tag]);
        buf.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        buf.extend_from_slice(&body);
        let _ = BackendMessage::parse(&mut buf);
    }
}
